// Bindings for the GRU kernels: TF1's GRUCell and the "reset after" variant.
#include "bind_util.hpp"
#include "step_cells.hpp"
#include "rnnkit/gru.hpp"

namespace rnnkit_py {
namespace {

using namespace rnnkit;

// H from gates/bias [2H], D from gates/kernel [D + H, 2H]; both variants
// share these two variables. The other shapes follow and are checked by take.
GruConfig gru_config(const py::object& gates_kernel, const py::object& gates_bias,
                     const std::string& activation) {
  py::array bias = as_array(gates_bias, "gates/bias");
  if (bias.ndim() != 1 || bias.shape(0) == 0 || bias.shape(0) % 2 != 0)
    throw py::value_error("gates/bias must have shape [2H] with H > 0, got " + shape_str(shape_of(bias)));
  GruConfig cfg;
  cfg.H = bias.shape(0) / 2;
  py::array k = as_array(gates_kernel, "gates/kernel");
  if (k.ndim() != 2 || k.shape(1) != 2 * cfg.H || k.shape(0) < cfg.H)
    throw py::value_error("gates/kernel must have shape [D + " + std::to_string(cfg.H) + ", " +
                          std::to_string(2 * cfg.H) + "], got " + shape_str(shape_of(k)));
  cfg.D = k.shape(0) - cfg.H;
  cfg.activation = parse_activation(activation);
  return cfg;
}

// The sequence-side arguments of a forward call, checked by name.
template <typename T>
struct ForwardIo {
  InputArg<T> input;
  Array<T> h0, outputs, h_final;
  SeqLayout seq;
  py::object keep_lengths, mask_obj;
  const int32_t* lengths = nullptr;
  StateMask<T> mask;
};

template <typename T>
ForwardIo<T> forward_io(const GruConfig& cfg, const py::object& x_obj, const py::object& h0_obj,
                        const py::object& lengths_obj, const py::object& mask_obj, bool time_major) {
  ForwardIo<T> io;
  io.input = take_inputs<T>(x_obj, "inputs", cfg.D, time_major);
  io.seq = io.input.seq;
  io.h0 = take<T>(h0_obj, "initial_state", {io.seq.B, cfg.H});
  io.lengths = take_lengths(lengths_obj, io.seq.B, io.seq.T, io.keep_lengths);
  io.mask = take_state_mask<T>(mask_obj, io.seq, cfg.H);
  io.mask_obj = mask_obj;
  io.outputs = empty<T>(io.input.shape(cfg.H));
  io.h_final = empty<T>({io.seq.B, cfg.H});
  return io;
}

// Records what backward reads besides the buffers: inputs, lengths, layout.
template <typename T>
void record(py::dict& tape, ForwardIo<T>& io) {
  record_inputs(tape, io.input, io.lengths, io.keep_lengths, io.mask_obj);
}

// The sequence-side arguments of a backward call, read back from the tape.
template <typename T>
struct BackwardIo {
  InputArg<T> input;
  Array<T> d_out, dh, dh0;
  py::object dx;  // None for token ids
  T* dx_data = nullptr;
  SeqLayout seq;
  py::object keep_lengths, mask_obj;
  const int32_t* lengths = nullptr;
  StateMask<T> mask;
};

template <typename T>
BackwardIo<T> backward_io(const GruConfig& cfg, const py::dict& tape, const py::object& d_out_obj,
                          const py::object& dh_obj, bool input_grad) {
  BackwardIo<T> io;
  io.input = recorded_inputs<T>(tape, cfg.D);
  io.seq = io.input.seq;
  io.lengths = take_lengths(tape_get(tape, "sequence_length"), io.seq.B, io.seq.T, io.keep_lengths);
  io.mask_obj = tape_get(tape, "state_mask");
  io.mask = take_state_mask<T>(io.mask_obj, io.seq, cfg.H);
  io.d_out = take<T>(d_out_obj, "d_outputs", io.input.shape(cfg.H));
  io.dh = take<T>(dh_obj, "d_final_state", {io.seq.B, cfg.H});
  io.dx = input_grad_array(io.input, input_grad, &io.dx_data);
  io.dh0 = empty<T>({io.seq.B, cfg.H});
  return io;
}

// ---- TF1's GRUCell --------------------------------------------------------------

struct GruArgs {
  GruConfig cfg;
  py::object gates_kernel, gates_bias, candidate_kernel, candidate_bias;
};

template <typename T>
GruWeights<T> weights_of(const GruArgs& a) {
  const Index D = a.cfg.D, H = a.cfg.H;
  GruWeights<T> w;
  w.gates_kernel = take<T>(a.gates_kernel, "gates/kernel", {D + H, 2 * H}).data();
  w.gates_bias = take<T>(a.gates_bias, "gates/bias", {2 * H}).data();
  w.candidate_kernel = take<T>(a.candidate_kernel, "candidate/kernel", {D + H, H}).data();
  w.candidate_bias = take<T>(a.candidate_bias, "candidate/bias", {H}).data();
  return w;
}

template <typename T>
py::tuple forward_impl(const GruArgs& a, py::object x_obj, py::object h0_obj, py::object lengths_obj,
                       py::object mask_obj, bool time_major, py::object tape_obj) {
  const Index H = a.cfg.H;
  const GruWeights<T> w = weights_of<T>(a);
  ForwardIo<T> io = forward_io<T>(a.cfg, x_obj, h0_obj, lengths_obj, mask_obj, time_major);
  const Index rows = io.seq.rows();
  GruTape<T> tape;
  HeldBuffers held;
  T* ws = nullptr;
  py::object tape_d = begin_tape(tape_obj);
  if (!tape_d.is_none()) {
    py::dict d = tape_d;
    tape.gates = held.hold(tape_buffer<T>(d, "gates", {rows, 3 * H}));
    tape.h_prev = held.hold(tape_buffer<T>(d, "h_prev", {rows, H}));
    tape.rh = held.hold(tape_buffer<T>(d, "rh", {rows, H}));
    record(d, io);
  } else {
    ws = scratch<T>(static_cast<size_t>(rows * 3 * H));
  }
  {
    py::gil_scoped_release release;
    gru_forward<T>(a.cfg, w, io.seq, io.input.in, io.lengths, io.mask, io.h0.data(), io.outputs.mutable_data(),
                   io.h_final.mutable_data(), tape, ws);
  }
  end_tape(tape_d);
  return py::make_tuple(io.outputs, io.h_final);
}

template <typename T>
py::tuple backward_impl(const GruArgs& a, py::dict tape_d, py::object d_out_obj, py::object dh_obj,
                        bool input_grad) {
  const Index D = a.cfg.D, H = a.cfg.H;
  const GruWeights<T> w = weights_of<T>(a);
  BackwardIo<T> io = backward_io<T>(a.cfg, tape_d, d_out_obj, dh_obj, input_grad);
  const Index rows = io.seq.rows();
  GruTape<T> tape;
  HeldBuffers held;
  tape.gates = held.hold(tape_entry<T>(tape_d, "gates", {rows, 3 * H}));
  tape.h_prev = held.hold(tape_entry<T>(tape_d, "h_prev", {rows, H}));
  tape.rh = held.hold(tape_entry<T>(tape_d, "rh", {rows, H}));
  Array<T> dgk = empty<T>({D + H, 2 * H}), dgb = empty<T>({2 * H});
  Array<T> dck = empty<T>({D + H, H}), dcb = empty<T>({H});
  GruGrads<T> g;
  g.gates_kernel = dgk.mutable_data();
  g.gates_bias = dgb.mutable_data();
  g.candidate_kernel = dck.mutable_data();
  g.candidate_bias = dcb.mutable_data();
  {
    py::gil_scoped_release release;
    gru_backward<T>(a.cfg, w, io.seq, io.input.in, io.lengths, io.mask, tape, io.d_out.data(), io.dh.data(),
                    io.dx_data, io.dh0.mutable_data(), g);
  }
  spend_tape(tape_d);  // the gate buffer now holds gradients
  py::dict grads;
  grads["gates/kernel"] = dgk;
  grads["gates/bias"] = dgb;
  grads["candidate/kernel"] = dck;
  grads["candidate/bias"] = dcb;
  return py::make_tuple(io.dx, io.dh0, grads);
}

// ---- reset after ------------------------------------------------------------------

struct ResetAfterArgs {
  GruConfig cfg;
  py::object gates_kernel, gates_bias, input_kernel, input_bias, hidden_kernel, hidden_bias;
};

template <typename T>
GruResetAfterWeights<T> weights_of(const ResetAfterArgs& a) {
  const Index D = a.cfg.D, H = a.cfg.H;
  GruResetAfterWeights<T> w;
  w.gates_kernel = take<T>(a.gates_kernel, "gates/kernel", {D + H, 2 * H}).data();
  w.gates_bias = take<T>(a.gates_bias, "gates/bias", {2 * H}).data();
  w.candidate_input_kernel = take<T>(a.input_kernel, "candidate/input/kernel", {D, H}).data();
  w.candidate_input_bias = take<T>(a.input_bias, "candidate/input/bias", {H}).data();
  w.candidate_hidden_kernel = take<T>(a.hidden_kernel, "candidate/hidden/kernel", {H, H}).data();
  w.candidate_hidden_bias = take<T>(a.hidden_bias, "candidate/hidden/bias", {H}).data();
  return w;
}

template <typename T>
py::tuple forward_impl(const ResetAfterArgs& a, py::object x_obj, py::object h0_obj,
                       py::object lengths_obj, py::object mask_obj, bool time_major,
                       py::object tape_obj) {
  const Index H = a.cfg.H;
  const GruResetAfterWeights<T> w = weights_of<T>(a);
  ForwardIo<T> io = forward_io<T>(a.cfg, x_obj, h0_obj, lengths_obj, mask_obj, time_major);
  const Index rows = io.seq.rows();
  GruResetAfterTape<T> tape;
  HeldBuffers held;
  T* ws = nullptr;
  py::object tape_d = begin_tape(tape_obj);
  if (!tape_d.is_none()) {
    py::dict d = tape_d;
    tape.gates = held.hold(tape_buffer<T>(d, "gates", {rows, 4 * H}));
    tape.h_prev = held.hold(tape_buffer<T>(d, "h_prev", {rows, H}));
    record(d, io);
  } else {
    ws = scratch<T>(static_cast<size_t>(rows * 4 * H));
  }
  {
    py::gil_scoped_release release;
    gru_reset_after_forward<T>(a.cfg, w, io.seq, io.input.in, io.lengths, io.mask, io.h0.data(),
                               io.outputs.mutable_data(), io.h_final.mutable_data(), tape, ws);
  }
  end_tape(tape_d);
  return py::make_tuple(io.outputs, io.h_final);
}

template <typename T>
py::tuple backward_impl(const ResetAfterArgs& a, py::dict tape_d, py::object d_out_obj,
                        py::object dh_obj, bool input_grad) {
  const Index D = a.cfg.D, H = a.cfg.H;
  const GruResetAfterWeights<T> w = weights_of<T>(a);
  BackwardIo<T> io = backward_io<T>(a.cfg, tape_d, d_out_obj, dh_obj, input_grad);
  const Index rows = io.seq.rows();
  GruResetAfterTape<T> tape;
  HeldBuffers held;
  tape.gates = held.hold(tape_entry<T>(tape_d, "gates", {rows, 4 * H}));
  tape.h_prev = held.hold(tape_entry<T>(tape_d, "h_prev", {rows, H}));
  Array<T> dgk = empty<T>({D + H, 2 * H}), dgb = empty<T>({2 * H});
  Array<T> dik = empty<T>({D, H}), dib = empty<T>({H});
  Array<T> dhk = empty<T>({H, H}), dhb = empty<T>({H});
  GruResetAfterGrads<T> g;
  g.gates_kernel = dgk.mutable_data();
  g.gates_bias = dgb.mutable_data();
  g.candidate_input_kernel = dik.mutable_data();
  g.candidate_input_bias = dib.mutable_data();
  g.candidate_hidden_kernel = dhk.mutable_data();
  g.candidate_hidden_bias = dhb.mutable_data();
  {
    py::gil_scoped_release release;
    gru_reset_after_backward<T>(a.cfg, w, io.seq, io.input.in, io.lengths, io.mask, tape, io.d_out.data(),
                                io.dh.data(), io.dx_data, io.dh0.mutable_data(), g);
  }
  spend_tape(tape_d);  // the gate buffer now holds gradients
  py::dict grads;
  grads["gates/kernel"] = dgk;
  grads["gates/bias"] = dgb;
  grads["candidate/input/kernel"] = dik;
  grads["candidate/input/bias"] = dib;
  grads["candidate/hidden/kernel"] = dhk;
  grads["candidate/hidden/bias"] = dhb;
  return py::make_tuple(io.dx, io.dh0, grads);
}

}  // namespace

void init_gru(py::module_& m) {
  m.def(
      "gru_forward",
      [](py::object x, py::object gates_kernel, py::object gates_bias, py::object candidate_kernel,
         py::object candidate_bias, py::object h0, py::object sequence_length, bool time_major,
         const std::string& activation, py::object state_mask, py::object tape) {
        GruArgs a{gru_config(gates_kernel, gates_bias, activation), gates_kernel, gates_bias,
                  candidate_kernel, candidate_bias};
        return dispatch_float(gates_kernel, "gates/kernel", [&](auto zero) {
          return forward_impl<decltype(zero)>(a, x, h0, sequence_length, state_mask, time_major, tape);
        });
      },
      "TF1's GRUCell over a sequence. x: [B, T, D] ([T, B, D] when time_major); h0: [B, H]. "
      "Returns (outputs, h_final); fills `tape` (a dict) when given.",
      py::arg("x"), py::arg("gates_kernel"), py::arg("gates_bias"), py::arg("candidate_kernel"),
      py::arg("candidate_bias"), py::arg("h0"), py::arg("sequence_length") = py::none(),
      py::arg("time_major") = false, py::arg("activation") = "tanh",
      py::arg("state_mask") = py::none(), py::arg("tape") = py::none());
  m.def(
      "gru_backward",
      [](py::dict tape, py::object d_outputs, py::object dh_final, py::object gates_kernel,
         py::object gates_bias, py::object candidate_kernel, py::object candidate_bias,
         const std::string& activation, bool input_grad) {
        GruArgs a{gru_config(gates_kernel, gates_bias, activation), gates_kernel, gates_bias,
                  candidate_kernel, candidate_bias};
        return dispatch_float(gates_kernel, "gates/kernel", [&](auto zero) {
          return backward_impl<decltype(zero)>(a, tape, d_outputs, dh_final, input_grad);
        });
      },
      "BPTT through the gru_forward that filled `tape`. Returns (dx, dh0, grads) with grads "
      "keyed by variable name (dx: None for token ids or with input_grad=False); the tape is spent "
      "until the next forward.",
      py::arg("tape"), py::arg("d_outputs"), py::arg("dh_final"), py::arg("gates_kernel"),
      py::arg("gates_bias"), py::arg("candidate_kernel"), py::arg("candidate_bias"),
      py::arg("activation") = "tanh", py::arg("input_grad") = true);
  m.def(
      "gru_reset_after_forward",
      [](py::object x, py::object gates_kernel, py::object gates_bias, py::object candidate_input_kernel,
         py::object candidate_input_bias, py::object candidate_hidden_kernel,
         py::object candidate_hidden_bias, py::object h0, py::object sequence_length, bool time_major,
         const std::string& activation, py::object state_mask, py::object tape) {
        ResetAfterArgs a{gru_config(gates_kernel, gates_bias, activation), gates_kernel, gates_bias,
                         candidate_input_kernel, candidate_input_bias, candidate_hidden_kernel,
                         candidate_hidden_bias};
        return dispatch_float(gates_kernel, "gates/kernel", [&](auto zero) {
          return forward_impl<decltype(zero)>(a, x, h0, sequence_length, state_mask, time_major, tape);
        });
      },
      "The 'reset after' GRU (PyTorch / Keras 3 / cuDNN) over a sequence. x: [B, T, D] "
      "([T, B, D] when time_major); h0: [B, H]. Returns (outputs, h_final); fills `tape` when given.",
      py::arg("x"), py::arg("gates_kernel"), py::arg("gates_bias"), py::arg("candidate_input_kernel"),
      py::arg("candidate_input_bias"), py::arg("candidate_hidden_kernel"),
      py::arg("candidate_hidden_bias"), py::arg("h0"), py::arg("sequence_length") = py::none(),
      py::arg("time_major") = false, py::arg("activation") = "tanh",
      py::arg("state_mask") = py::none(), py::arg("tape") = py::none());
  m.def(
      "gru_reset_after_backward",
      [](py::dict tape, py::object d_outputs, py::object dh_final, py::object gates_kernel,
         py::object gates_bias, py::object candidate_input_kernel, py::object candidate_input_bias,
         py::object candidate_hidden_kernel, py::object candidate_hidden_bias,
         const std::string& activation, bool input_grad) {
        ResetAfterArgs a{gru_config(gates_kernel, gates_bias, activation), gates_kernel, gates_bias,
                         candidate_input_kernel, candidate_input_bias, candidate_hidden_kernel,
                         candidate_hidden_bias};
        return dispatch_float(gates_kernel, "gates/kernel", [&](auto zero) {
          return backward_impl<decltype(zero)>(a, tape, d_outputs, dh_final, input_grad);
        });
      },
      "BPTT through the gru_reset_after_forward that filled `tape`. Returns (dx, dh0, grads) with "
      "grads keyed by variable name (dx: None for token ids or with input_grad=False); the tape is "
      "spent until the next forward.",
      py::arg("tape"), py::arg("d_outputs"), py::arg("dh_final"), py::arg("gates_kernel"),
      py::arg("gates_bias"), py::arg("candidate_input_kernel"), py::arg("candidate_input_bias"),
      py::arg("candidate_hidden_kernel"), py::arg("candidate_hidden_bias"),
      py::arg("activation") = "tanh", py::arg("input_grad") = true);
}

template <typename T>
std::unique_ptr<StepCell<T>> gru_step_cell(const py::tuple& args, bool reset_after) {
  if (reset_after) {
    if (args.size() != 7)
      throw py::value_error("GRU (reset_after) step cell: expected 7 weight arguments, got " + std::to_string(args.size()));
    const ResetAfterArgs a{gru_config(args[0], args[1], args[6].cast<std::string>()), args[0], args[1], args[2],
                           args[3], args[4], args[5]};
    return std::make_unique<GruResetAfterStepCell<T>>(a.cfg, weights_of<T>(a));
  }
  if (args.size() != 5)
    throw py::value_error("GRU step cell: expected 5 weight arguments, got " + std::to_string(args.size()));
  const GruArgs a{gru_config(args[0], args[1], args[4].cast<std::string>()), args[0], args[1], args[2], args[3]};
  return std::make_unique<GruStepCell<T>>(a.cfg, weights_of<T>(a));
}
template std::unique_ptr<StepCell<float>> gru_step_cell<float>(const py::tuple&, bool);
template std::unique_ptr<StepCell<double>> gru_step_cell<double>(const py::tuple&, bool);

}  // namespace rnnkit_py
