// Bindings for the LayerNormBasicLSTMCell kernels.
#include "bind_util.hpp"
#include "rnnkit/layer_norm_lstm.hpp"

namespace rnnkit_py {
namespace {

using namespace rnnkit;

// The layer norms' variables as LayerNormBasicLSTMCell creates them: gamma
// then beta of input, transform, forget, output and state.
constexpr const char* kNormNames[kLayerNorms][2] = {
    {"input/gamma", "input/beta"},   {"transform/gamma", "transform/beta"}, {"forget/gamma", "forget/beta"},
    {"output/gamma", "output/beta"}, {"state/gamma", "state/beta"}};

// Weights and options as the cell holds them: kernel [D + H, 4H], and bias
// [4H] without layer norm or `norms` (the ten [H] arrays above, in that
// order) with it.
struct LayerNormLstmArgs {
  LayerNormLstmConfig cfg;
  py::object kernel, bias;
  py::tuple norms;
};

LayerNormLstmArgs layer_norm_lstm_args(py::object kernel, py::object bias, py::object norms, double forget_bias,
                                       const std::string& activation) {
  LayerNormLstmArgs a;
  if (bias.is_none() == norms.is_none())
    throw py::value_error("give either bias (layer_norm=False) or norms (layer_norm=True), not both or neither");
  py::array k = as_array(kernel, "kernel");
  if (k.ndim() != 2 || k.shape(1) == 0 || k.shape(1) % 4 != 0 || k.shape(0) <= k.shape(1) / 4)
    throw py::value_error("kernel must have shape [D + H, 4H] with D, H > 0, got " + shape_str(shape_of(k)));
  a.cfg.H = k.shape(1) / 4;
  a.cfg.D = k.shape(0) - a.cfg.H;
  a.cfg.forget_bias = forget_bias;
  a.cfg.activation = parse_activation(activation);
  a.cfg.layer_norm = !norms.is_none();
  if (a.cfg.layer_norm) {
    if (!py::isinstance<py::tuple>(norms) || py::len(norms) != 2 * kLayerNorms)
      throw py::type_error("norms must be a tuple of " + std::to_string(2 * kLayerNorms) +
                           " arrays (gamma and beta of input, transform, forget, output, state), got " +
                           type_name(norms));
    a.norms = norms;
  }
  a.kernel = kernel;
  a.bias = bias;
  return a;
}

template <typename T>
LayerNormLstmWeights<T> weights_of(const LayerNormLstmArgs& a) {
  const Index H = a.cfg.H;
  LayerNormLstmWeights<T> w;
  w.kernel = take<T>(a.kernel, "kernel", {a.cfg.D + H, 4 * H}).data();
  if (!a.cfg.layer_norm) {
    w.bias = take<T>(a.bias, "bias", {4 * H}).data();
    return w;
  }
  for (int q = 0; q < kLayerNorms; ++q) {
    w.gamma[q] = take<T>(a.norms[2 * q], kNormNames[q][0], {H}).data();
    w.beta[q] = take<T>(a.norms[2 * q + 1], kNormNames[q][1], {H}).data();
  }
  return w;
}

// The tape's layer-norm buffers, when the cell has layer norms.
template <typename T, typename Get>
void norm_buffers(const LayerNormLstmConfig& cfg, Index rows, LayerNormLstmTape<T>& tape, HeldBuffers& held,
                  Get&& get) {
  if (!cfg.layer_norm) return;
  tape.norm = held.hold(get("norm", std::vector<Index>{rows, kLayerNorms * cfg.H}));
  tape.rstd = held.hold(get("rstd", std::vector<Index>{rows, Index(kLayerNorms)}));
}

template <typename T>
py::tuple forward_impl(const LayerNormLstmArgs& a, py::object x_obj, py::object c0_obj, py::object h0_obj,
                       py::object lengths_obj, bool time_major, py::object mask_obj, py::object dropout_obj,
                       py::object tape_obj) {
  const LayerNormLstmConfig& cfg = a.cfg;
  const Index H = cfg.H, G = cfg.G();
  const LayerNormLstmWeights<T> w = weights_of<T>(a);
  InputArg<T> input = take_inputs<T>(x_obj, "inputs", cfg.D, time_major);
  const SeqLayout& seq = input.seq;
  const Index B = seq.B, rows = seq.rows();
  Array<T> c0 = take<T>(c0_obj, "initial_state.c", {B, H});
  Array<T> h0 = take<T>(h0_obj, "initial_state.h", {B, H});
  py::object keep_lengths;
  const int32_t* lengths = take_lengths(lengths_obj, B, seq.T, keep_lengths);
  const StateMask<T> state_mask = take_state_mask<T>(mask_obj, seq, H);
  Array<T> dropout;
  if (!dropout_obj.is_none()) dropout = take<T>(dropout_obj, "dropout_mask", input.shape(H));

  Array<T> outputs = empty<T>(input.shape(H));
  Array<T> c_final = empty<T>({B, H});
  Array<T> h_final = empty<T>({B, H});
  LayerNormLstmTape<T> tape;
  HeldBuffers held;
  py::object tape_d = begin_tape(tape_obj);
  if (!tape_d.is_none()) {
    py::dict d = tape_d;
    auto get = [&](const char* key, const std::vector<Index>& shape) { return tape_buffer<T>(d, key, shape); };
    tape.gates = held.hold(get("gates", {rows, G}));
    norm_buffers(cfg, rows, tape, held, get);
    tape.c = held.hold(get("c", {rows, H}));
    tape.h_prev = held.hold(get("h_prev", {rows, H}));
    record_inputs(d, input, lengths, keep_lengths, mask_obj);
    d["dropout_mask"] = dropout_obj;
    c0 = tape_copy<T>(d, "c0", c0);
  } else {  // scratch: gates, then the layer norms' values and 1/std
    const Index norm_width = cfg.layer_norm ? kLayerNorms * (H + 1) : 0;
    tape.gates = scratch<T>(static_cast<size_t>(rows * (G + norm_width)));
    if (cfg.layer_norm) {
      tape.norm = tape.gates + rows * G;
      tape.rstd = tape.norm + rows * kLayerNorms * H;
    }
  }
  {
    py::gil_scoped_release release;
    layer_norm_lstm_forward<T>(cfg, w, seq, input.in, lengths, state_mask,
                               dropout_obj.is_none() ? nullptr : dropout.data(), c0.data(), h0.data(),
                               outputs.mutable_data(), c_final.mutable_data(), h_final.mutable_data(), tape);
  }
  end_tape(tape_d);
  return py::make_tuple(outputs, c_final, h_final);
}

template <typename T>
py::tuple backward_impl(const LayerNormLstmArgs& a, py::dict tape_d, py::object d_out_obj, py::object dc_obj,
                        py::object dh_obj, bool input_grad) {
  const LayerNormLstmConfig& cfg = a.cfg;
  const Index D = cfg.D, H = cfg.H, G = cfg.G();
  const LayerNormLstmWeights<T> w = weights_of<T>(a);
  const InputArg<T> input = recorded_inputs<T>(tape_d, D);
  const SeqLayout& seq = input.seq;
  const Index B = seq.B, rows = seq.rows();
  Array<T> c0 = tape_entry<T>(tape_d, "c0", {B, H});
  py::object keep_lengths;
  const int32_t* lengths = take_lengths(tape_get(tape_d, "sequence_length"), B, seq.T, keep_lengths);
  const StateMask<T> state_mask = take_state_mask<T>(tape_get(tape_d, "state_mask"), seq, H);
  const py::object dropout_obj = tape_get(tape_d, "dropout_mask");
  Array<T> dropout;
  if (!dropout_obj.is_none()) dropout = take<T>(dropout_obj, "tape dropout_mask", input.shape(H));
  LayerNormLstmTape<T> tape;
  HeldBuffers held;
  auto get = [&](const char* key, const std::vector<Index>& shape) { return tape_entry<T>(tape_d, key, shape); };
  tape.gates = held.hold(get("gates", {rows, G}));
  norm_buffers(cfg, rows, tape, held, get);
  tape.c = held.hold(get("c", {rows, H}));
  tape.h_prev = held.hold(get("h_prev", {rows, H}));
  Array<T> d_out = take<T>(d_out_obj, "d_outputs", input.shape(H));
  Array<T> dc = take<T>(dc_obj, "d_final_state.c", {B, H});
  Array<T> dh = take<T>(dh_obj, "d_final_state.h", {B, H});

  T* dx_data = nullptr;
  py::object dx = input_grad_array(input, input_grad, &dx_data);
  Array<T> dc0 = empty<T>({B, H});
  Array<T> dh0 = empty<T>({B, H});
  py::dict grads;
  LayerNormLstmGrads<T> g;
  Array<T> dk = empty<T>({D + H, G});
  g.kernel = dk.mutable_data();
  grads["kernel"] = dk;
  T* d_norm = nullptr;
  if (cfg.layer_norm) {
    for (int q = 0; q < kLayerNorms; ++q) {
      Array<T> d_gamma = empty<T>({H}), d_beta = empty<T>({H});
      g.gamma[q] = d_gamma.mutable_data();
      g.beta[q] = d_beta.mutable_data();
      grads[kNormNames[q][0]] = d_gamma;
      grads[kNormNames[q][1]] = d_beta;
    }
    d_norm = held.hold(tape_buffer<T>(tape_d, "d_norm", {rows, kLayerNorms * H}));
  } else {
    Array<T> db = empty<T>({G});
    g.bias = db.mutable_data();
    grads["bias"] = db;
  }
  {
    py::gil_scoped_release release;
    layer_norm_lstm_backward<T>(cfg, w, seq, input.in, lengths, state_mask,
                                dropout_obj.is_none() ? nullptr : dropout.data(), c0.data(), tape, d_out.data(),
                                dc.data(), dh.data(), dx_data, dc0.mutable_data(), dh0.mutable_data(), g, d_norm);
  }
  // The gate buffer now holds gradients: one backward per forward.
  spend_tape(tape_d);
  return py::make_tuple(dx, dc0, dh0, grads);
}

}  // namespace

void init_layer_norm_lstm(py::module_& m) {
  // The cell passes its weights and options as one cached tuple, last.
  m.def(
      "layer_norm_lstm_forward",
      [](py::object x, py::object c0, py::object h0, py::object sequence_length, bool time_major,
         py::object state_mask, py::object dropout_mask, py::object tape, py::object kernel, py::object bias,
         py::object norms, double forget_bias, const std::string& activation) {
        const LayerNormLstmArgs a = layer_norm_lstm_args(kernel, bias, norms, forget_bias, activation);
        return dispatch_float(kernel, "kernel", [&](auto zero) {
          return forward_impl<decltype(zero)>(a, x, c0, h0, sequence_length, time_major, state_mask, dropout_mask,
                                              tape);
        });
      },
      "LayerNormBasicLSTMCell over a sequence. Returns (outputs, c_final, h_final); fills `tape` (a dict) "
      "when given. dropout_mask: [B, T, H] (time major [T, B, H]) multiplier of the candidate g, or None.",
      py::arg("x"), py::arg("c0"), py::arg("h0"), py::arg("sequence_length"), py::arg("time_major"),
      py::arg("state_mask"), py::arg("dropout_mask"), py::arg("tape"), py::arg("kernel"), py::arg("bias"),
      py::arg("norms"), py::arg("forget_bias") = 1.0, py::arg("activation") = "tanh");
  m.def(
      "layer_norm_lstm_backward",
      [](py::dict tape, py::object d_outputs, py::object dc_final, py::object dh_final, py::object kernel,
         py::object bias, py::object norms, double forget_bias, const std::string& activation, bool input_grad) {
        const LayerNormLstmArgs a = layer_norm_lstm_args(kernel, bias, norms, forget_bias, activation);
        return dispatch_float(kernel, "kernel", [&](auto zero) {
          return backward_impl<decltype(zero)>(a, tape, d_outputs, dc_final, dh_final, input_grad);
        });
      },
      "BPTT through the LayerNormBasicLSTMCell forward that filled `tape`. Returns (dx, dc0, dh0, grads) "
      "(dx: None for token ids or with input_grad=False); the tape is spent until the next forward.",
      py::arg("tape"), py::arg("d_outputs"), py::arg("dc_final"), py::arg("dh_final"), py::arg("kernel"),
      py::arg("bias"), py::arg("norms"), py::arg("forget_bias") = 1.0, py::arg("activation") = "tanh",
      py::arg("input_grad") = true);
}

}  // namespace rnnkit_py
