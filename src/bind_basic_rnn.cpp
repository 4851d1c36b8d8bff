// Bindings for the BasicRNNCell kernels.
#include "bind_util.hpp"
#include "step_cells.hpp"
#include "rnnkit/basic_rnn.hpp"

namespace rnnkit_py {
namespace {

using namespace rnnkit;

BasicRnnConfig rnn_config(const py::object& kernel, const py::object& bias,
                          const std::string& activation) {
  py::array b = as_array(bias, "bias");
  if (b.ndim() != 1) throw py::value_error("bias must be a rank-1 array [H], got shape " + shape_str(shape_of(b)));
  BasicRnnConfig cfg;
  cfg.H = b.shape(0);
  py::array k = as_array(kernel, "kernel");
  if (k.ndim() != 2 || k.shape(1) != cfg.H || k.shape(0) < cfg.H)
    throw py::value_error("kernel must have shape [D + " + std::to_string(cfg.H) + ", " +
                          std::to_string(cfg.H) + "], got " + shape_str(shape_of(k)));
  cfg.D = k.shape(0) - cfg.H;
  cfg.activation = parse_activation(activation);
  return cfg;
}

template <typename T>
py::tuple forward_impl(const BasicRnnConfig& cfg, py::object kernel_obj, py::object bias_obj,
                       py::object x_obj, py::object h0_obj, py::object lengths_obj,
                       py::object mask_obj, bool time_major, py::object tape_obj) {
  const Index D = cfg.D, H = cfg.H;
  Array<T> kernel = take<T>(kernel_obj, "kernel", {D + H, H});
  Array<T> bias = take<T>(bias_obj, "bias", {H});
  InputArg<T> input = take_inputs<T>(x_obj, "inputs", D, time_major);
  const SeqLayout& seq = input.seq;
  const Index B = seq.B, rows = seq.rows();
  Array<T> h0 = take<T>(h0_obj, "initial_state", {B, H});
  py::object keep_lengths;
  const int32_t* lengths = take_lengths(lengths_obj, B, seq.T, keep_lengths);
  const StateMask<T> state_mask = take_state_mask<T>(mask_obj, seq, H);
  Array<T> outputs = empty<T>(input.shape(H));
  Array<T> h_final = empty<T>({B, H});
  BasicRnnTape<T> tape;
  HeldBuffers held;
  T* ws = nullptr;
  py::object tape_d = begin_tape(tape_obj);
  if (!tape_d.is_none()) {
    py::dict d = tape_d;
    tape.h = held.hold(tape_buffer<T>(d, "h", {rows, H}));
    tape.h_prev = held.hold(tape_buffer<T>(d, "h_prev", {rows, H}));
    record_inputs(d, input, lengths, keep_lengths, mask_obj);
  } else {
    ws = scratch<T>(static_cast<size_t>(rows * H));
  }
  {
    py::gil_scoped_release release;
    basic_rnn_forward<T>(cfg, kernel.data(), bias.data(), seq, input.in, lengths, state_mask, h0.data(),
                         outputs.mutable_data(), h_final.mutable_data(), tape, ws);
  }
  end_tape(tape_d);
  return py::make_tuple(outputs, h_final);
}

template <typename T>
py::tuple backward_impl(const BasicRnnConfig& cfg, py::object kernel_obj, py::dict tape_d,
                        py::object d_out_obj, py::object dh_obj, bool input_grad) {
  const Index D = cfg.D, H = cfg.H;
  Array<T> kernel = take<T>(kernel_obj, "kernel", {D + H, H});
  const InputArg<T> input = recorded_inputs<T>(tape_d, D);
  const SeqLayout& seq = input.seq;
  const Index B = seq.B, rows = seq.rows();
  py::object keep_lengths;
  const int32_t* lengths = take_lengths(tape_get(tape_d, "sequence_length"), B, seq.T, keep_lengths);
  const py::object mask_obj = tape_get(tape_d, "state_mask");
  const StateMask<T> state_mask = take_state_mask<T>(mask_obj, seq, H);
  BasicRnnTape<T> tape;
  HeldBuffers held;
  tape.h = held.hold(tape_entry<T>(tape_d, "h", {rows, H}));
  tape.h_prev = held.hold(tape_entry<T>(tape_d, "h_prev", {rows, H}));
  Array<T> d_out = take<T>(d_out_obj, "d_outputs", input.shape(H));
  Array<T> dh = take<T>(dh_obj, "d_final_state", {B, H});
  T* dx_data = nullptr;
  py::object dx = input_grad_array(input, input_grad, &dx_data);
  Array<T> dh0 = empty<T>({B, H});
  Array<T> dk = empty<T>({D + H, H}), db = empty<T>({H});
  {
    py::gil_scoped_release release;
    basic_rnn_backward<T>(cfg, kernel.data(), seq, input.in, lengths, state_mask, tape, d_out.data(), dh.data(),
                          dx_data, dh0.mutable_data(), dk.mutable_data(),
                          db.mutable_data());
  }
  spend_tape(tape_d);  // the h buffer now holds gradients
  py::dict grads;
  grads["kernel"] = dk;
  grads["bias"] = db;
  return py::make_tuple(dx, dh0, grads);
}

}  // namespace

void init_basic_rnn(py::module_& m) {
  m.def(
      "basic_rnn_forward",
      [](py::object x, py::object kernel, py::object bias, py::object h0,
         py::object sequence_length, bool time_major, const std::string& activation,
         py::object state_mask, py::object tape) {
        BasicRnnConfig cfg = rnn_config(kernel, bias, activation);
        return dispatch_float(kernel, "kernel", [&](auto zero) {
          return forward_impl<decltype(zero)>(cfg, kernel, bias, x, h0, sequence_length,
                                              state_mask, time_major, tape);
        });
      },
      "BasicRNNCell over a sequence. Returns (outputs, h_final); fills `tape` when given.",
      py::arg("x"), py::arg("kernel"), py::arg("bias"), py::arg("h0"),
      py::arg("sequence_length") = py::none(), py::arg("time_major") = false,
      py::arg("activation") = "tanh", py::arg("state_mask") = py::none(),
      py::arg("tape") = py::none());
  m.def(
      "basic_rnn_backward",
      [](py::dict tape, py::object d_outputs, py::object dh_final, py::object kernel,
         py::object bias, const std::string& activation, bool input_grad) {
        BasicRnnConfig cfg = rnn_config(kernel, bias, activation);
        return dispatch_float(kernel, "kernel", [&](auto zero) {
          return backward_impl<decltype(zero)>(cfg, kernel, tape, d_outputs, dh_final, input_grad);
        });
      },
      "BPTT through the BasicRNNCell forward that filled `tape`. Returns (dx, dh0, grads); "
      "dx is None for token ids or with input_grad=False.",
      py::arg("tape"), py::arg("d_outputs"), py::arg("dh_final"), py::arg("kernel"),
      py::arg("bias"), py::arg("activation") = "tanh", py::arg("input_grad") = true);
}

template <typename T>
std::unique_ptr<StepCell<T>> basic_rnn_step_cell(const py::tuple& args) {
  if (args.size() != 3)
    throw py::value_error("BasicRNN step cell: expected 3 weight arguments, got " + std::to_string(args.size()));
  const BasicRnnConfig cfg = rnn_config(args[0], args[1], args[2].cast<std::string>());
  const T* kernel = take<T>(args[0], "kernel", {cfg.D + cfg.H, cfg.H}).data();
  const T* bias = take<T>(args[1], "bias", {cfg.H}).data();
  return std::make_unique<BasicRnnStepCell<T>>(cfg, kernel, bias);
}
template std::unique_ptr<StepCell<float>> basic_rnn_step_cell<float>(const py::tuple&);
template std::unique_ptr<StepCell<double>> basic_rnn_step_cell<double>(const py::tuple&);

}  // namespace rnnkit_py
