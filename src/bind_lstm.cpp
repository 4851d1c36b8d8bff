// Bindings for the LSTM kernels (BasicLSTMCell and LSTMCell share them).
#include "bind_util.hpp"
#include "step_cells.hpp"
#include "rnnkit/lstm.hpp"

namespace rnnkit_py {
namespace {

using namespace rnnkit;

// Weights and options as the cell holds them; shapes are checked against
// each other here, once, for forward and backward alike.
struct LstmArgs {
  LstmConfig cfg;
  py::object kernel, bias, w_i_diag, w_f_diag, w_o_diag, projection;
};

LstmArgs lstm_args(py::object kernel, py::object bias, py::object w_i_diag, py::object w_f_diag,
                   py::object w_o_diag, py::object projection, double forget_bias,
                   const std::string& activation, py::object cell_clip, py::object proj_clip) {
  LstmArgs a{};
  py::array b = as_array(bias, "bias");
  if (b.ndim() != 1) throw py::value_error("bias must be a rank-1 array [4H], got shape " + shape_str(shape_of(b)));
  const Index G = b.shape(0);
  if (G % 4 != 0 || G == 0)
    throw py::value_error("bias must have shape [4H], got [" + std::to_string(G) + "]");
  a.cfg.H = G / 4;
  if (!projection.is_none()) {
    py::array p = as_array(projection, "projection/kernel");
    if (p.ndim() != 2 || p.shape(0) != a.cfg.H)
      throw py::value_error("projection/kernel must have shape [" + std::to_string(a.cfg.H) +
                            ", P], got " + shape_str(shape_of(p)));
    a.cfg.P = p.shape(1);
  }
  py::array k = as_array(kernel, "kernel");
  if (k.ndim() != 2 || k.shape(1) != G || k.shape(0) < a.cfg.R())
    throw py::value_error("kernel must have shape [D + " + std::to_string(a.cfg.R()) + ", " +
                          std::to_string(G) + "], got " + shape_str(shape_of(k)));
  a.cfg.D = k.shape(0) - a.cfg.R();
  a.cfg.forget_bias = forget_bias;
  a.cfg.activation = parse_activation(activation);
  a.cfg.cell_clip = optional_number(cell_clip, "cell_clip", 0.0);
  a.cfg.proj_clip = optional_number(proj_clip, "proj_clip", 0.0);
  if (!cell_clip.is_none() && a.cfg.cell_clip <= 0) throw py::value_error("cell_clip must be > 0");
  if (!proj_clip.is_none() && a.cfg.proj_clip <= 0) throw py::value_error("proj_clip must be > 0");
  const int n_peep = !w_i_diag.is_none() + !w_f_diag.is_none() + !w_o_diag.is_none();
  if (n_peep != 0 && n_peep != 3)
    throw py::value_error("peepholes need all of w_i_diag, w_f_diag and w_o_diag");
  a.cfg.peepholes = n_peep == 3;
  a.kernel = kernel;
  a.bias = bias;
  a.w_i_diag = w_i_diag;
  a.w_f_diag = w_f_diag;
  a.w_o_diag = w_o_diag;
  a.projection = projection;
  return a;
}

template <typename T>
LstmWeights<T> weights_of(const LstmArgs& a) {
  const Index H = a.cfg.H;
  LstmWeights<T> w;
  w.kernel = take<T>(a.kernel, "kernel", {a.cfg.D + a.cfg.R(), 4 * H}).data();
  w.bias = take<T>(a.bias, "bias", {4 * H}).data();
  if (a.cfg.peepholes) {
    w.w_i_diag = take<T>(a.w_i_diag, "w_i_diag", {H}).data();
    w.w_f_diag = take<T>(a.w_f_diag, "w_f_diag", {H}).data();
    w.w_o_diag = take<T>(a.w_o_diag, "w_o_diag", {H}).data();
  }
  if (a.cfg.P > 0) w.projection = take<T>(a.projection, "projection/kernel", {H, a.cfg.P}).data();
  return w;
}

template <typename T>
py::tuple forward_impl(const LstmArgs& a, py::object x_obj, py::object c0_obj, py::object m0_obj,
                       py::object lengths_obj, py::object mask_obj, bool time_major,
                       py::object tape_obj) {
  const LstmConfig& cfg = a.cfg;
  const Index H = cfg.H, R = cfg.R(), G = cfg.G();
  const LstmWeights<T> w = weights_of<T>(a);
  InputArg<T> input = take_inputs<T>(x_obj, "inputs", cfg.D, time_major);
  const SeqLayout& seq = input.seq;
  const Index B = seq.B, rows = seq.rows();
  Array<T> c0 = take<T>(c0_obj, "initial_state.c", {B, H});
  Array<T> m0 = take<T>(m0_obj, "initial_state.h", {B, R});
  py::object keep_lengths;
  const int32_t* lengths = take_lengths(lengths_obj, B, seq.T, keep_lengths);
  const StateMask<T> state_mask = take_state_mask<T>(mask_obj, seq, R);

  Array<T> outputs = empty<T>(input.shape(R));
  Array<T> c_final = empty<T>({B, H});
  Array<T> m_final = empty<T>({B, R});
  LstmTape<T> tape;
  HeldBuffers held;
  T* ws = nullptr;
  py::object tape_d = begin_tape(tape_obj);
  if (!tape_d.is_none()) {
    py::dict d = tape_d;
    tape.gates = held.hold(tape_buffer<T>(d, "gates", {rows, G}));
    tape.c = held.hold(tape_buffer<T>(d, "c", {rows, H}));
    tape.m_prev = held.hold(tape_buffer<T>(d, "m_prev", {rows, R}));
    if (cfg.P > 0) {
      tape.m_pre = held.hold(tape_buffer<T>(d, "m_pre", {rows, H}));
      tape.m_raw = held.hold(tape_buffer<T>(d, "m_raw", {rows, cfg.P}));
    }
    record_inputs(d, input, lengths, keep_lengths, mask_obj);
    c0 = tape_copy<T>(d, "c0", c0);
  } else {
    ws = scratch<T>(static_cast<size_t>(rows * G));
  }
  {
    py::gil_scoped_release release;
    lstm_forward<T>(cfg, w, seq, input.in, lengths, state_mask, c0.data(), m0.data(), outputs.mutable_data(),
                    c_final.mutable_data(), m_final.mutable_data(), tape, ws);
  }
  end_tape(tape_d);
  return py::make_tuple(outputs, c_final, m_final);
}

template <typename T>
py::tuple backward_impl(const LstmArgs& a, py::dict tape_d, py::object d_out_obj,
                        py::object dc_obj, py::object dm_obj, bool input_grad) {
  const LstmConfig& cfg = a.cfg;
  const Index D = cfg.D, H = cfg.H, R = cfg.R(), G = cfg.G(), P = cfg.P;
  const LstmWeights<T> w = weights_of<T>(a);
  const InputArg<T> input = recorded_inputs<T>(tape_d, D);
  const SeqLayout& seq = input.seq;
  const Index B = seq.B, rows = seq.rows();
  Array<T> c0 = tape_entry<T>(tape_d, "c0", {B, H});
  py::object keep_lengths;
  const int32_t* lengths = take_lengths(tape_get(tape_d, "sequence_length"), B, seq.T, keep_lengths);
  const py::object mask_obj = tape_get(tape_d, "state_mask");
  const StateMask<T> state_mask = take_state_mask<T>(mask_obj, seq, R);
  LstmTape<T> tape;
  HeldBuffers held;
  tape.gates = held.hold(tape_entry<T>(tape_d, "gates", {rows, G}));
  tape.c = held.hold(tape_entry<T>(tape_d, "c", {rows, H}));
  tape.m_prev = held.hold(tape_entry<T>(tape_d, "m_prev", {rows, R}));
  if (P > 0) {
    tape.m_pre = held.hold(tape_entry<T>(tape_d, "m_pre", {rows, H}));
    tape.m_raw = held.hold(tape_entry<T>(tape_d, "m_raw", {rows, P}));
  }
  Array<T> d_out = take<T>(d_out_obj, "d_outputs", input.shape(R));
  Array<T> dc = take<T>(dc_obj, "d_final_state.c", {B, H});
  Array<T> dm = take<T>(dm_obj, "d_final_state.h", {B, R});

  T* dx_data = nullptr;
  py::object dx = input_grad_array(input, input_grad, &dx_data);
  Array<T> dc0 = empty<T>({B, H});
  Array<T> dm0 = empty<T>({B, R});
  py::dict grads;
  LstmGrads<T> g;
  Array<T> dk = empty<T>({D + R, G}), db = empty<T>({G});
  g.kernel = dk.mutable_data();
  g.bias = db.mutable_data();
  grads["kernel"] = dk;
  grads["bias"] = db;
  if (cfg.peepholes) {
    Array<T> wi = empty<T>({H}), wf = empty<T>({H}), wo = empty<T>({H});
    g.w_i_diag = wi.mutable_data();
    g.w_f_diag = wf.mutable_data();
    g.w_o_diag = wo.mutable_data();
    grads["w_i_diag"] = wi;
    grads["w_f_diag"] = wf;
    grads["w_o_diag"] = wo;
  }
  if (P > 0) {
    Array<T> dp = empty<T>({H, P});
    g.projection = dp.mutable_data();
    grads["projection/kernel"] = dp;
  }
  {
    py::gil_scoped_release release;
    lstm_backward<T>(cfg, w, seq, input.in, lengths, state_mask, c0.data(), tape, d_out.data(), dc.data(),
                     dm.data(), dx_data, dc0.mutable_data(), dm0.mutable_data(), g);
  }
  // The gate buffer now holds gradients: one backward per forward.
  spend_tape(tape_d);
  return py::make_tuple(dx, dc0, dm0, grads);
}

// args: LSTMCell._weight_args(): (kernel, bias, forget_bias, activation,
// w_i_diag, w_f_diag, w_o_diag, projection, cell_clip, proj_clip).
template <typename T>
std::unique_ptr<StepCell<T>> lstm_step_cell(const py::tuple& args) {
  if (args.size() != 10)
    throw py::value_error("LSTM step cell: expected 10 weight arguments, got " + std::to_string(args.size()));
  const LstmArgs a = lstm_args(args[0], args[1], args[4], args[5], args[6], args[7], args[2].cast<double>(),
                              args[3].cast<std::string>(), args[8], args[9]);
  return std::make_unique<LstmStepCell<T>>(a.cfg, weights_of<T>(a));
}

}  // namespace

void init_lstm(py::module_& m) {
  register_step_cell("lstm", &lstm_step_cell<float>, &lstm_step_cell<double>);
  // Arguments are ordered so that the cell passes its weights and options as
  // one cached tuple, positionally: a single step from Python pays for as
  // little argument matching as possible.
  m.def(
      "lstm_forward",
      [](py::object x, py::object c0, py::object m0, py::object sequence_length, bool time_major,
         py::object state_mask, py::object tape, py::object kernel, py::object bias,
         double forget_bias, const std::string& activation, py::object w_i_diag,
         py::object w_f_diag, py::object w_o_diag, py::object projection, py::object cell_clip,
         py::object proj_clip) {
        LstmArgs a = lstm_args(kernel, bias, w_i_diag, w_f_diag, w_o_diag, projection, forget_bias,
                               activation, cell_clip, proj_clip);
        return dispatch_float(kernel, "kernel", [&](auto zero) {
          return forward_impl<decltype(zero)>(a, x, c0, m0, sequence_length, state_mask, time_major,
                                              tape);
        });
      },
      "LSTM over a sequence. Returns (outputs, c_final, m_final); fills `tape` (a dict) when given.",
      py::arg("x"), py::arg("c0"), py::arg("m0"), py::arg("sequence_length"), py::arg("time_major"),
      py::arg("state_mask"), py::arg("tape"), py::arg("kernel"), py::arg("bias"),
      py::arg("forget_bias") = 1.0, py::arg("activation") = "tanh",
      py::arg("w_i_diag") = py::none(), py::arg("w_f_diag") = py::none(),
      py::arg("w_o_diag") = py::none(), py::arg("projection") = py::none(),
      py::arg("cell_clip") = py::none(), py::arg("proj_clip") = py::none());
  m.def(
      "lstm_backward",
      [](py::dict tape, py::object d_outputs, py::object dc_final, py::object dm_final,
         py::object kernel, py::object bias, double forget_bias, const std::string& activation,
         py::object w_i_diag, py::object w_f_diag, py::object w_o_diag, py::object projection,
         py::object cell_clip, py::object proj_clip, bool input_grad) {
        LstmArgs a = lstm_args(kernel, bias, w_i_diag, w_f_diag, w_o_diag, projection, forget_bias,
                               activation, cell_clip, proj_clip);
        return dispatch_float(kernel, "kernel", [&](auto zero) {
          return backward_impl<decltype(zero)>(a, tape, d_outputs, dc_final, dm_final, input_grad);
        });
      },
      "BPTT through the LSTM forward that filled `tape`. Returns (dx, dc0, dm0, grads) "
      "(dx: None for token ids or with input_grad=False); "
      "the tape is spent until the next forward.",
      py::arg("tape"), py::arg("d_outputs"), py::arg("dc_final"), py::arg("dm_final"),
      py::arg("kernel"), py::arg("bias"), py::arg("forget_bias") = 1.0,
      py::arg("activation") = "tanh", py::arg("w_i_diag") = py::none(),
      py::arg("w_f_diag") = py::none(), py::arg("w_o_diag") = py::none(),
      py::arg("projection") = py::none(), py::arg("cell_clip") = py::none(),
      py::arg("proj_clip") = py::none(), py::arg("input_grad") = true);
}

}  // namespace rnnkit_py
