// Bindings for ops.hpp: softmax, the softmax cross-entropies, TF1's
// SUM_BY_NONZERO_WEIGHTS reduction, mean squared error, embedding lookup and
// the last valid output. Arrays of any leading shape are flattened to rows
// here; the functions keep no state (a forward returns what its backward
// takes).
#include <type_traits>

#include "bind_util.hpp"
#include "rnnkit/ops.hpp"

namespace rnnkit_py {
namespace {

using namespace rnnkit;

// An array [..., C] (rank >= 1, C >= 1: every row has a class to read): its
// shape, the product N of its leading axes and C.
struct Rows {
  std::vector<Index> shape, lead;
  Index N = 1, C = 0;
};

Rows rows_of(const py::handle& obj, const char* name) {
  py::array a = as_array(obj, name);
  if (a.ndim() < 1) throw py::value_error(std::string(name) + " must have rank >= 1 [..., C], got a scalar");
  if (a.shape(a.ndim() - 1) < 1)
    throw py::value_error(std::string(name) + " must have a non-empty last axis [..., C], got shape " +
                          shape_str(shape_of(a)));
  Rows r;
  r.shape = shape_of(a);
  r.lead.assign(r.shape.begin(), r.shape.end() - 1);
  for (Index s : r.lead) r.N *= s;
  r.C = r.shape.back();
  return r;
}

// Every integer label or id in [0, limit): the kernels index rows with them.
template <typename Label>
void check_range(const Label* values, Index n, Index limit, const char* name) {
  for (Index i = 0; i < n; ++i)
    if (values[i] < 0 || values[i] >= limit)
      throw py::value_error(std::string(name) + " must lie in [0, " + std::to_string(limit) + "), got " +
                            std::to_string(values[i]) + " at flat index " + std::to_string(i));
}

template <typename T>
T scalar_of(const py::array& a) {
  return *static_cast<const T*>(a.data());
}

template <typename T>
Array<T> scalar_array(T value) {
  Array<T> out(std::vector<py::ssize_t>{});
  *out.mutable_data() = value;
  return out;
}

// The 0-d (or 1-element) gradient of a scalar loss.
template <typename T>
T take_scalar(const py::handle& obj, const char* name) {
  py::array a = as_array(obj, name);
  if (a.size() != 1) throw py::value_error(std::string(name) + " must be a scalar, got shape " + shape_str(shape_of(a)));
  if (!is_dtype<T>(a.dtype()))
    throw py::type_error(std::string(name) + " must have dtype " + dtype_name<T>() + ", got " +
                         std::string(py::str(a.dtype())));
  return scalar_of<T>(a);
}

// A cross-entropy's forward: run(loss [N], probs [N, C] or null) without the
// GIL; returns the loss [...], or (loss, probs) when with_probs.
template <typename T, typename F>
py::object per_row_loss(const Rows& r, bool with_probs, F&& run) {
  Array<T> loss = empty<T>(r.lead);
  py::object probs = py::none();
  T* p = nullptr;
  if (with_probs) {
    Array<T> a = empty<T>(r.shape);
    p = a.mutable_data();
    probs = a;
  }
  {
    py::gil_scoped_release release;
    run(loss.mutable_data(), p);
  }
  if (!with_probs) return std::move(loss);
  return py::make_tuple(loss, probs);
}

// A cross-entropy's labels, taken and passed to f: class distributions
// [..., C] in the logits' dtype T (dense), or int32/int64 classes [...],
// each in [0, C) (sparse).
template <typename T, typename F>
py::object with_labels(const py::object& labels, const Rows& r, bool sparse, F&& f) {
  if (!sparse) return f(take<T>(labels, "labels", r.shape));
  return dispatch_int(labels, "labels", [&](auto label) -> py::object {
    using Label = decltype(label);
    Array<Label> y = take<Label>(labels, "labels", r.lead);
    check_range(y.data(), r.N, r.C, "labels");
    return f(y);
  });
}

// The dense (labels of type T) or the sparse (integer labels) kernel.
template <typename T, typename Label>
void cross_entropy_forward(const Rows& r, const T* logits, const Label* labels, T* loss, T* probs) {
  if constexpr (std::is_integral_v<Label>)
    sparse_softmax_cross_entropy_forward<T, Label>(r.N, r.C, logits, labels, loss, probs);
  else
    softmax_cross_entropy_forward<T>(r.N, r.C, logits, labels, loss, probs);
}

template <typename T, typename Label>
void cross_entropy_backward(const Rows& r, const Label* labels, const T* probs, const T* d_loss, T* d_logits) {
  if constexpr (std::is_integral_v<Label>)
    sparse_softmax_cross_entropy_backward<T, Label>(r.N, r.C, labels, probs, d_loss, d_logits);
  else
    softmax_cross_entropy_backward<T>(r.N, r.C, labels, probs, d_loss, d_logits);
}

// Binds `name` (logits, labels, with_probs) and `name`_backward (labels,
// probs, d_loss) of a softmax cross-entropy with dense or sparse labels.
void def_cross_entropy(py::module_& m, const std::string& name, bool sparse, const char* doc,
                       const char* backward_doc) {
  m.def(
      name.c_str(),
      [sparse](py::object logits, py::object labels, bool with_probs) {
        const Rows r = rows_of(logits, "logits");
        return dispatch_float(logits, "logits", [&](auto zero) -> py::object {
          using T = decltype(zero);
          Array<T> x = take<T>(logits, "logits", r.shape);
          return with_labels<T>(labels, r, sparse, [&](const auto& y) {
            return per_row_loss<T>(r, with_probs, [&](T* loss, T* probs) {
              cross_entropy_forward<T>(r, x.data(), y.data(), loss, probs);
            });
          });
        });
      },
      doc, py::arg("logits"), py::arg("labels"), py::arg("with_probs") = false);
  m.def(
      (name + "_backward").c_str(),
      [sparse](py::object labels, py::object probs_obj, py::object d_loss_obj) {
        const Rows r = rows_of(probs_obj, "probs");
        return dispatch_float(probs_obj, "probs", [&](auto zero) -> py::object {
          using T = decltype(zero);
          Array<T> probs = take<T>(probs_obj, "probs", r.shape);
          return with_labels<T>(labels, r, sparse, [&](const auto& y) -> py::object {
            Array<T> d_loss = take<T>(d_loss_obj, "d_loss", r.lead);
            Array<T> d_logits = empty<T>(r.shape);
            py::gil_scoped_release release;
            cross_entropy_backward<T>(r, y.data(), probs.data(), d_loss.data(), d_logits.mutable_data());
            return std::move(d_logits);
          });
        });
      },
      backward_doc, py::arg("labels"), py::arg("probs"), py::arg("d_loss"));
}

// The rank-3 sequence `outputs` ([B, T, H] or [T, B, H]) and its layout.
template <typename T>
std::pair<Array<T>, SeqLayout> take_outputs(const py::handle& obj, bool time_major) {
  py::array a = as_array(obj, "outputs");
  if (a.ndim() != 3)
    throw py::value_error(std::string("outputs must have rank 3 ") + (time_major ? "[T, B, H]" : "[B, T, H]") +
                          ", got shape " + shape_str(shape_of(a)));
  Array<T> x = take<T>(obj, "outputs", {-1, -1, -1});
  return {x, layout_of(x, "outputs", x.shape(2), time_major)};
}

}  // namespace

void init_ops(py::module_& m) {
  m.def(
      "softmax",
      [](py::object logits) {
        const Rows r = rows_of(logits, "logits");
        return dispatch_float(logits, "logits", [&](auto zero) -> py::object {
          using T = decltype(zero);
          Array<T> x = take<T>(logits, "logits", r.shape);
          Array<T> y = empty<T>(r.shape);
          py::gil_scoped_release release;
          softmax_forward<T>(r.N, r.C, x.data(), y.mutable_data());
          return std::move(y);
        });
      },
      "Softmax over the last axis. logits: [..., C] -> [..., C].", py::arg("logits"));
  m.def(
      "softmax_backward",
      [](py::object y_obj, py::object dy_obj) {
        const Rows r = rows_of(y_obj, "y");
        return dispatch_float(y_obj, "y", [&](auto zero) -> py::object {
          using T = decltype(zero);
          Array<T> y = take<T>(y_obj, "y", r.shape);
          Array<T> dy = take<T>(dy_obj, "dy", r.shape);
          Array<T> dx = empty<T>(r.shape);
          py::gil_scoped_release release;
          softmax_backward<T>(r.N, r.C, y.data(), dy.data(), dx.mutable_data());
          return std::move(dx);
        });
      },
      "Gradient of softmax: y (softmax's result) and dy: [..., C] -> d_logits [..., C].", py::arg("y"),
      py::arg("dy"));
  def_cross_entropy(
      m, "softmax_cross_entropy", false,
      "TF1's softmax_cross_entropy_with_logits_v2 over the last axis. logits, labels: [..., C] -> "
      "loss [...]; with with_probs, (loss, softmax probabilities [..., C]) for the backward.",
      "d loss / d logits of softmax_cross_entropy: labels, probs: [..., C]; d_loss: [...] -> [..., C].");
  def_cross_entropy(
      m, "sparse_softmax_cross_entropy", true,
      "TF1's sparse_softmax_cross_entropy_with_logits. logits: [..., C]; labels: int32/int64 [...] in "
      "[0, C) -> loss [...]; with with_probs, (loss, softmax probabilities [..., C]).",
      "d loss / d logits of sparse_softmax_cross_entropy: labels: [...]; probs: [..., C]; d_loss: [...].");
  m.def(
      "sum_by_nonzero_weights",
      [](py::object values_obj, py::object weights_obj) {
        return dispatch_float(values_obj, "values", [&](auto zero) -> py::object {
          using T = decltype(zero);
          const std::vector<Index> shape = shape_of(as_array(values_obj, "values"));
          Array<T> values = take<T>(values_obj, "values", shape);
          Array<T> weights = take<T>(weights_obj, "weights", shape);
          T loss;
          {
            py::gil_scoped_release release;
            loss = sum_by_nonzero_weights<T>(values.size(), values.data(), weights.data());
          }
          return scalar_array<T>(loss);
        });
      },
      "TF1's SUM_BY_NONZERO_WEIGHTS: Σ weights·values / count(weights != 0), 0 when none (0-d array). "
      "values and weights have one shape.",
      py::arg("values"), py::arg("weights"));
  m.def(
      "sum_by_nonzero_weights_backward",
      [](py::object weights_obj, py::object d_loss) {
        return dispatch_float(weights_obj, "weights", [&](auto zero) -> py::object {
          using T = decltype(zero);
          const std::vector<Index> shape = shape_of(as_array(weights_obj, "weights"));
          Array<T> weights = take<T>(weights_obj, "weights", shape);
          const T d = take_scalar<T>(d_loss, "d_loss");
          Array<T> d_values = empty<T>(shape);
          py::gil_scoped_release release;
          sum_by_nonzero_weights_backward<T>(weights.size(), weights.data(), d, d_values.mutable_data());
          return std::move(d_values);
        });
      },
      "Gradient of sum_by_nonzero_weights with respect to values: d_loss · weights / count(weights != 0).",
      py::arg("weights"), py::arg("d_loss"));
  m.def(
      "mean_squared_error",
      [](py::object predictions_obj, py::object labels_obj, py::object weights_obj) {
        return dispatch_float(predictions_obj, "predictions", [&](auto zero) -> py::object {
          using T = decltype(zero);
          const std::vector<Index> shape = shape_of(as_array(predictions_obj, "predictions"));
          Array<T> p = take<T>(predictions_obj, "predictions", shape);
          Array<T> y = take<T>(labels_obj, "labels", shape);
          Array<T> w = take<T>(weights_obj, "weights", shape);
          T loss;
          {
            py::gil_scoped_release release;
            loss = mean_squared_error_forward<T>(p.size(), p.data(), y.data(), w.data());
          }
          return scalar_array<T>(loss);
        });
      },
      "tf.losses.mean_squared_error (SUM_BY_NONZERO_WEIGHTS): Σ w (p - y)² / count(w != 0), 0 when none. "
      "predictions, labels, weights: one shape (weights broadcast by the caller) -> 0-d array.",
      py::arg("predictions"), py::arg("labels"), py::arg("weights"));
  m.def(
      "mean_squared_error_backward",
      [](py::object predictions_obj, py::object labels_obj, py::object weights_obj, py::object d_loss) {
        return dispatch_float(predictions_obj, "predictions", [&](auto zero) -> py::object {
          using T = decltype(zero);
          const std::vector<Index> shape = shape_of(as_array(predictions_obj, "predictions"));
          Array<T> p = take<T>(predictions_obj, "predictions", shape);
          Array<T> y = take<T>(labels_obj, "labels", shape);
          Array<T> w = take<T>(weights_obj, "weights", shape);
          const T d = take_scalar<T>(d_loss, "d_loss");
          Array<T> d_p = empty<T>(shape);
          py::gil_scoped_release release;
          mean_squared_error_backward<T>(p.size(), p.data(), y.data(), w.data(), d, d_p.mutable_data());
          return std::move(d_p);
        });
      },
      "d loss / d predictions of mean_squared_error (d labels is its negation).", py::arg("predictions"),
      py::arg("labels"), py::arg("weights"), py::arg("d_loss"));
  m.def(
      "embedding_lookup",
      [](py::object params_obj, py::object ids_obj) {
        py::array params_a = as_array(params_obj, "params");
        if (params_a.ndim() != 2)
          throw py::value_error("params must have rank 2 [V, E], got shape " + shape_str(shape_of(params_a)));
        const Index V = params_a.shape(0), E = params_a.shape(1);
        return dispatch_float(params_obj, "params", [&](auto zero) -> py::object {
          using T = decltype(zero);
          return dispatch_int(ids_obj, "ids", [&](auto id) -> py::object {
            using Id = decltype(id);
            Array<T> params = take<T>(params_obj, "params", {V, E});
            const std::vector<Index> lead = shape_of(as_array(ids_obj, "ids"));
            Array<Id> ids = take<Id>(ids_obj, "ids", lead);
            check_range(ids.data(), ids.size(), V, "ids");
            std::vector<Index> shape = lead;
            shape.push_back(E);
            Array<T> out = empty<T>(shape);
            py::gil_scoped_release release;
            embedding_lookup_forward<T, Id>(ids.size(), E, params.data(), ids.data(), out.mutable_data());
            return std::move(out);
          });
        });
      },
      "params[ids]: params [V, E]; ids int32/int64 [...] in [0, V) -> [..., E].", py::arg("params"),
      py::arg("ids"));
  m.def(
      "embedding_lookup_backward",
      [](py::object ids_obj, py::object dy_obj, Index vocab_size) {
        if (vocab_size < 0) throw py::value_error("vocab_size must be >= 0, got " + std::to_string(vocab_size));
        const Rows r = rows_of(dy_obj, "dy");
        return dispatch_float(dy_obj, "dy", [&](auto zero) -> py::object {
          using T = decltype(zero);
          return dispatch_int(ids_obj, "ids", [&](auto id) -> py::object {
            using Id = decltype(id);
            Array<Id> ids = take<Id>(ids_obj, "ids", r.lead);
            check_range(ids.data(), r.N, vocab_size, "ids");
            Array<T> dy = take<T>(dy_obj, "dy", r.shape);
            Array<T> d_params = empty<T>({vocab_size, r.C});
            py::gil_scoped_release release;
            embedding_lookup_backward<T, Id>(r.N, vocab_size, r.C, ids.data(), dy.data(), d_params.mutable_data());
            return std::move(d_params);
          });
        });
      },
      "The dense gradient of embedding_lookup: ids [...]; dy [..., E] -> d_params [vocab_size, E], "
      "dy's rows added into the rows of their ids in order.",
      py::arg("ids"), py::arg("dy"), py::arg("vocab_size"));
  m.def(
      "last_output",
      [](py::object outputs, py::object sequence_length, bool time_major) {
        return dispatch_float(outputs, "outputs", [&](auto zero) -> py::object {
          using T = decltype(zero);
          auto [x, seq] = take_outputs<T>(outputs, time_major);
          py::object keep;
          const int32_t* lengths = take_lengths(sequence_length, seq.B, seq.T, keep);
          const Index H = x.shape(2);
          Array<T> last = empty<T>({seq.B, H});
          py::gil_scoped_release release;
          last_output_forward<T>(seq, H, x.data(), lengths, last.mutable_data());
          return std::move(last);
        });
      },
      "Each row's output at its last valid step (sequence_length - 1, or T - 1), zeros for length 0. "
      "outputs: [B, T, H] ([T, B, H] when time_major) -> [B, H].",
      py::arg("outputs"), py::arg("sequence_length") = py::none(), py::arg("time_major") = false);
  m.def(
      "last_output_backward",
      [](py::object d_last_obj, py::object sequence_length, Index steps, bool time_major) {
        if (steps < 0) throw py::value_error("steps must be >= 0, got " + std::to_string(steps));
        return dispatch_float(d_last_obj, "d_last", [&](auto zero) -> py::object {
          using T = decltype(zero);
          Array<T> d_last = take<T>(d_last_obj, "d_last", {-1, -1});
          SeqLayout seq;
          seq.B = d_last.shape(0);
          seq.T = steps;
          seq.time_major = time_major;
          py::object keep;
          const int32_t* lengths = take_lengths(sequence_length, seq.B, seq.T, keep);
          const Index H = d_last.shape(1);
          Array<T> d_outputs = empty<T>(seq_shape(seq, H));
          py::gil_scoped_release release;
          last_output_backward<T>(seq, H, d_last.data(), lengths, d_outputs.mutable_data());
          return std::move(d_outputs);
        });
      },
      "Gradient of last_output: d_last [B, H] -> d_outputs [B, steps, H] ([steps, B, H] when time_major), "
      "zero but at each row's last valid step.",
      py::arg("d_last"), py::arg("sequence_length") = py::none(), py::arg("steps") = 0,
      py::arg("time_major") = false);
}

}  // namespace rnnkit_py
