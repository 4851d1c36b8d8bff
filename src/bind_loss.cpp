// Bindings for sequence_loss: the forward (with the reduction resolved from
// TF's four flags) and the gradient with respect to the logits.
#include "bind_util.hpp"
#include "rnnkit/loss.hpp"

namespace rnnkit_py {
namespace {

using namespace rnnkit;

// Reads B, T, C from logits [B, T, C] (rank checked first).
SequenceLossConfig loss_config(const py::object& logits_obj, bool avg_t, bool avg_b, bool sum_t, bool sum_b) {
  SequenceLossConfig cfg = sequence_loss_reduction(avg_t, avg_b, sum_t, sum_b);
  py::array logits = as_array(logits_obj, "logits");
  if (logits.ndim() != 3)
    throw py::value_error("logits must have rank 3 [B, T, C], got shape " + shape_str(shape_of(logits)));
  cfg.B = logits.shape(0);
  cfg.T = logits.shape(1);
  cfg.C = logits.shape(2);
  return cfg;
}

std::vector<Index> loss_shape(const SequenceLossConfig& cfg) {
  if (cfg.reduce_batch && cfg.reduce_time) return {};
  if (cfg.reduce_time) return {cfg.B};
  if (cfg.reduce_batch) return {cfg.T};
  return {cfg.B, cfg.T};
}

// targets [B, T] of int32 or int64, every value in [0, C).
template <typename Label>
Array<Label> take_targets(const py::object& obj, const SequenceLossConfig& cfg) {
  Array<Label> a = take<Label>(obj, "targets", {cfg.B, cfg.T});
  const Label* p = a.data();
  for (Index r = 0; r < cfg.rows(); ++r)
    if (p[r] < 0 || p[r] >= cfg.C)
      throw py::value_error("targets values must lie in [0, " + std::to_string(cfg.C) + "), got " +
                            std::to_string(p[r]) + " at index (" + std::to_string(r / cfg.T) + ", " +
                            std::to_string(r % cfg.T) + ")");
  return a;
}

template <typename T, typename Label>
py::array forward_impl(const SequenceLossConfig& cfg, py::object logits_obj, py::object targets_obj,
                        py::object weights_obj, const py::object& tape_obj) {
  Array<T> logits = take<T>(logits_obj, "logits", {cfg.B, cfg.T, cfg.C});
  Array<Label> targets = take_targets<Label>(targets_obj, cfg);
  Array<T> weights = take<T>(weights_obj, "weights", {cfg.B, cfg.T});
  Array<T> loss = empty<T>(loss_shape(cfg));
  HeldBuffers held;
  T* probs = nullptr;
  py::object tape_d = begin_tape(tape_obj);
  if (!tape_d.is_none()) {
    py::dict tape = tape_d;
    probs = held.hold(tape_buffer<T>(tape, "probs", {cfg.B, cfg.T, cfg.C}));
    targets = tape_copy<Label>(tape, "targets", targets);
    weights = tape_copy<T>(tape, "weights", weights);
    tape["reduction"] = py::make_tuple(cfg.reduce_batch, cfg.reduce_time, cfg.count_nonzero);
  }
  T* ce_ws = scratch<T>(static_cast<size_t>(cfg.rows()));
  {
    py::gil_scoped_release release;
    sequence_loss_forward<T, Label>(cfg, logits.data(), targets.data(), weights.data(), loss.mutable_data(),
                                    probs, ce_ws);
  }
  end_tape(tape_d);
  return loss;
}

template <typename T, typename Label>
py::array backward_impl(const SequenceLossConfig& cfg, const py::dict& tape, py::object d_loss_obj) {
  Array<T> probs = tape_entry<T>(tape, "probs", {cfg.B, cfg.T, cfg.C});
  Array<Label> targets = take_targets<Label>(tape_get(tape, "targets"), cfg);
  Array<T> weights = take<T>(tape_get(tape, "weights"), "tape weights", {cfg.B, cfg.T});
  Array<T> d_loss = take<T>(d_loss_obj, "d_loss", loss_shape(cfg));
  Array<T> d_logits = empty<T>({cfg.B, cfg.T, cfg.C});
  {
    py::gil_scoped_release release;
    sequence_loss_backward<T, Label>(cfg, targets.data(), weights.data(), probs.data(), d_loss.data(),
                                     d_logits.mutable_data());
  }
  return d_logits;
}

}  // namespace

void init_loss(py::module_& m) {
  m.def(
      "sequence_loss_forward",
      [](py::object logits, py::object targets, py::object weights, bool average_across_timesteps,
         bool average_across_batch, bool sum_over_timesteps, bool sum_over_batch, py::object tape) {
        SequenceLossConfig cfg = loss_config(logits, average_across_timesteps, average_across_batch,
                                             sum_over_timesteps, sum_over_batch);
        return dispatch_float(logits, "logits", [&](auto zero) {
          return dispatch_int(targets, "targets", [&](auto label) {
            return forward_impl<decltype(zero), decltype(label)>(cfg, logits, targets, weights, tape);
          });
        });
      },
      "TF 1.15 sequence_loss. logits: [B, T, C]; targets: int32/int64 [B, T] in [0, C); weights: "
      "[B, T]. Returns the loss ([], [B], [T] or [B, T] by the flags); fills `tape` (softmax "
      "probabilities, targets, weights) for sequence_loss_backward when given.",
      py::arg("logits"), py::arg("targets"), py::arg("weights"), py::arg("average_across_timesteps") = true,
      py::arg("average_across_batch") = true, py::arg("sum_over_timesteps") = false,
      py::arg("sum_over_batch") = false, py::arg("tape") = py::none());
  m.def(
      "sequence_loss_backward",
      [](py::dict tape, py::object d_loss) {
        py::array probs = as_array(tape_get(tape, "probs"), "tape probs");
        py::object reduction = tape_get(tape, "reduction");
        if (!py::isinstance<py::tuple>(reduction) || py::len(reduction) != 3)
          throw py::type_error("tape reduction must be a tuple of 3 bools, got " + type_name(reduction));
        SequenceLossConfig cfg;
        if (probs.ndim() != 3)
          throw py::value_error("tape probs must have rank 3, got " + shape_str(shape_of(probs)));
        cfg.B = probs.shape(0);
        cfg.T = probs.shape(1);
        cfg.C = probs.shape(2);
        bool* flags[3] = {&cfg.reduce_batch, &cfg.reduce_time, &cfg.count_nonzero};
        for (size_t i = 0; i < 3; ++i) {
          py::object flag = reduction.cast<py::tuple>()[i];
          if (!py::isinstance<py::bool_>(flag))
            throw py::type_error("tape reduction must be a tuple of 3 bools, got " + type_name(flag) + " in it");
          *flags[i] = flag.cast<bool>();
        }
        py::object targets = tape_get(tape, "targets");
        return dispatch_float(probs, "tape probs", [&](auto zero) {
          return dispatch_int(targets, "tape targets", [&](auto label) {
            return backward_impl<decltype(zero), decltype(label)>(cfg, tape, d_loss);
          });
        });
      },
      "d loss / d logits [B, T, C] for the sequence_loss_forward that filled `tape`; d_loss has "
      "the loss's shape.",
      py::arg("tape"), py::arg("d_loss"));
}

}  // namespace rnnkit_py
