// The one binding of every cell described for cell.hpp's time loop:
// bind_cell<Cell>(m) defines rnnkit._core.<kName>_forward and
// <kName>_backward and registers the cell's step for generation. Adding a
// cell adds one bind_cell line, nothing else.
//
// The calling convention, the same for every cell:
//   <kName>_forward(x, *variables, *initial state, sequence_length=None,
//                   time_major=False, *options, state_mask=None, tape=None)
//     -> (outputs, *final state)
//   <kName>_backward(tape, d_outputs, *d final state, *variables, *options,
//                    input_grad=True) -> (dx, *d initial state, grads)
// Variables in kVariables order, options in kOptions order, state parts in
// kState order. Every argument is positional-or-keyword (a single step
// passes them positionally: keywords cost the binding a microsecond each);
// the tape, the arrays and the state have no default.
#pragma once

#include "bind_util.hpp"
#include "step_cells.hpp"
#include "rnnkit/cell_step.hpp"

#include <array>
#include <utility>

namespace rnnkit_py {
namespace cell_binding {

using namespace rnnkit;

// A bool argument, accepted as pybind11 accepts a bool parameter.
inline bool as_bool(const py::handle& obj, const char* name) {
  py::detail::make_caster<bool> caster;
  if (!caster.load(obj, true)) throw py::type_error(std::string(name) + " must be a bool, got " + type_name(obj));
  return static_cast<bool>(caster);
}

// "initial_state" for a one-part state, "initial_state.c" for a part of several.
template <typename Cell>
std::string part_name(const char* what, size_t part) {
  return Cell::kState.size() == 1 ? std::string(what) : std::string(what) + "." + Cell::kState[part].name;
}

// The cell (its sizes and options) from its variables' shapes and its
// option arguments; nothing is taken yet.
template <typename Cell>
Cell configure(const py::object* vars, const py::object* options) {
  std::array<Shape, Cell::kVariables.size()> shapes;
  for (size_t i = 0; i < shapes.size(); ++i) {
    if (Cell::kVariables[i].optional && vars[i].is_none()) continue;
    const py::array a = as_array(vars[i], Cell::kVariables[i].name);
    shapes[i] = Shape(a.shape(), a.ndim());
  }
  std::array<OptionValue, Cell::kOptions.size()> values;
  for (size_t j = 0; j < values.size(); ++j) {
    const OptionSpec& o = Cell::kOptions[j];
    const py::object& v = options[j];
    switch (o.kind) {
      case OptionKind::Activation:
        if (!py::isinstance<py::str>(v))
          throw py::type_error(std::string(o.name) + " must be a str, got " + type_name(v));
        values[j] = static_cast<double>(static_cast<int>(parse_activation(v.cast<std::string>())));
        break;
      case OptionKind::Number:
        if (v.is_none()) throw py::type_error(std::string(o.name) + " must be a number, got NoneType");
        values[j] = optional_number(v, o.name, 0.0);
        break;
      case OptionKind::OptionalNumber:
        if (!v.is_none()) values[j] = optional_number(v, o.name, 0.0);
        break;
    }
  }
  return Cell(shapes.data(), values.data());
}

// The variables, each checked against the shape the cell gives it (null
// for one the cell leaves out).
template <typename Cell, typename T>
std::array<const T*, Cell::kVariables.size()> take_variables(const Cell& cell, const py::object* vars) {
  std::array<const T*, Cell::kVariables.size()> ptrs{};
  for (size_t i = 0; i < ptrs.size(); ++i) {
    const Shape shape = cell.variable_shape(i);
    if (!shape.absent()) ptrs[i] = take<T>(vars[i], Cell::kVariables[i].name, shape).data();
  }
  return ptrs;
}

// The shape of tape part k for a sequence of `seq`'s rows.
template <typename Cell>
std::vector<Index> tape_shape(const Cell& cell, size_t k, const SeqLayout& seq) {
  return {Cell::kTape[k].what == Saved::Initial ? seq.B : seq.rows(), tape_width(cell, k)};
}

// The width of the recurrent state part: the outputs' and the state mask's.
template <typename Cell>
Index recurrent_width(const Cell& cell) {
  return cell.state_width(Cell::kState.size() - 1);
}

template <typename Cell, typename T>
py::tuple forward_impl(const Cell& cell, const py::object* vars, const py::object& x_obj,
                       const py::object* state_objs, const py::object& lengths_obj, bool time_major,
                       const py::object& mask_obj, const py::object& tape_obj) {
  constexpr size_t S = Cell::kState.size(), K = Cell::kTape.size();
  const auto w = take_variables<Cell, T>(cell, vars);
  InputArg<T> input = take_inputs<T>(x_obj, "inputs", cell.D, time_major);
  const SeqLayout& seq = input.seq;
  const Index B = seq.B, rows = seq.rows();
  std::array<py::object, S> state;
  std::array<const T*, S> state0_ptrs{};
  std::array<T*, S> state_ptrs{};
  for (size_t p = 0; p < S; ++p) {
    const Index width = cell.state_width(p);
    state0_ptrs[p] = take<T>(state_objs[p], part_name<Cell>("initial_state", p).c_str(), {B, width}).data();
    Array<T> final_part = empty<T>({B, width});
    state_ptrs[p] = final_part.mutable_data();
    state[p] = std::move(final_part);
  }
  CellIo<T> io;
  py::object keep_lengths;
  io.sequence_length = take_lengths(lengths_obj, B, seq.T, keep_lengths);
  io.state_mask = take_state_mask<T>(mask_obj, seq, recurrent_width(cell));
  Array<T> outputs = empty<T>(input.shape(recurrent_width(cell)));
  HeldBuffers held;
  std::array<T*, K> tape{};
  T* ws = nullptr;
  py::object tape_d = begin_tape(tape_obj);
  if (!tape_d.is_none()) {
    py::dict d = tape_d;
    for (size_t k = 0; k < K; ++k) {
      const TapePart& part = Cell::kTape[k];
      if (part.what == Saved::Initial) {  // the kernel reads the copy: what backward reads is what forward saw
        const size_t p = part.part;
        Array<T> copy = tape_copy<T>(d, part.name, take<T>(state_objs[p], "initial_state", {B, cell.state_width(p)}));
        state0_ptrs[p] = copy.data();
        tape[k] = held.hold(std::move(copy));
      } else {
        tape[k] = held.hold(tape_buffer<T>(d, part.name, tape_shape(cell, k, seq)));
      }
    }
    record_inputs(d, input, io.sequence_length, keep_lengths, mask_obj);
  } else {
    ws = scratch<T>(static_cast<size_t>(rows * cell.gate_width()));
  }
  io.seq = seq;
  io.in = input.in;
  {
    py::gil_scoped_release release;
    cell_forward<Cell, T>(cell, w.data(), io, state0_ptrs.data(), outputs.mutable_data(), state_ptrs.data(),
                          tape_d.is_none() ? nullptr : tape.data(), ws);
  }
  end_tape(tape_d);
  py::tuple result(1 + S);
  result[0] = outputs;
  for (size_t p = 0; p < S; ++p) result[1 + p] = state[p];
  return result;
}

template <typename Cell, typename T>
py::tuple backward_impl(const Cell& cell, const py::object* vars, const py::dict& tape_d,
                        const py::object& d_out_obj, const py::object* d_final_objs, bool input_grad) {
  constexpr size_t V = Cell::kVariables.size(), S = Cell::kState.size(), K = Cell::kTape.size();
  const auto w = take_variables<Cell, T>(cell, vars);
  const InputArg<T> input = recorded_inputs<T>(tape_d, cell.D);
  const SeqLayout& seq = input.seq;
  const Index B = seq.B;
  CellIo<T> io;
  io.seq = seq;
  io.in = input.in;
  py::object keep_lengths;
  io.sequence_length = take_lengths(tape_get(tape_d, "sequence_length"), B, seq.T, keep_lengths);
  const py::object mask_obj = tape_get(tape_d, "state_mask");
  io.state_mask = take_state_mask<T>(mask_obj, seq, recurrent_width(cell));
  HeldBuffers held;
  std::array<T*, K> tape{};
  for (size_t k = 0; k < K; ++k)
    tape[k] = held.hold(tape_entry<T>(tape_d, Cell::kTape[k].name, tape_shape(cell, k, seq)));
  Array<T> d_out = take<T>(d_out_obj, "d_outputs", input.shape(recurrent_width(cell)));
  std::array<py::object, S> d_state0;
  std::array<const T*, S> d_final_ptrs{};
  std::array<T*, S> d_state0_ptrs{};
  for (size_t p = 0; p < S; ++p) {
    const Index width = cell.state_width(p);
    d_final_ptrs[p] = take<T>(d_final_objs[p], part_name<Cell>("d_final_state", p).c_str(), {B, width}).data();
    Array<T> d_part = empty<T>({B, width});
    d_state0_ptrs[p] = d_part.mutable_data();
    d_state0[p] = std::move(d_part);
  }
  T* dx_data = nullptr;
  py::object dx = input_grad_array(input, input_grad, &dx_data);
  std::array<py::object, V> grads;
  std::array<T*, V> grad_ptrs{};
  for (size_t i = 0; i < V; ++i) {
    const Shape shape = cell.variable_shape(i);
    if (shape.absent()) continue;  // left out
    Array<T> grad = empty<T>(shape.vector());
    grad_ptrs[i] = grad.mutable_data();
    grads[i] = std::move(grad);
  }
  {
    py::gil_scoped_release release;
    cell_backward<Cell, T>(cell, w.data(), io, tape.data(), d_out.data(), d_final_ptrs.data(), dx_data,
                           d_state0_ptrs.data(), grad_ptrs.data());
  }
  py::dict tape_dict = tape_d;
  spend_tape(tape_dict);  // the gate buffer now holds gradients: one backward per forward
  py::dict by_name;
  for (size_t i = 0; i < V; ++i)
    if (grad_ptrs[i]) by_name[Cell::kVariables[i].name] = grads[i];
  py::tuple result(2 + S);
  result[0] = dx;
  for (size_t p = 0; p < S; ++p) result[1 + p] = d_state0[p];
  result[1 + S] = by_name;
  return result;
}

// The cell's step for generation; args: (*variables, *options), as the
// kernels take them.
template <typename Cell, typename T>
std::unique_ptr<StepCell<T>> step_cell(const py::tuple& args) {
  constexpr size_t V = Cell::kVariables.size(), O = Cell::kOptions.size();
  if (args.size() != V + O)
    throw py::value_error(std::string(Cell::kName) + " step cell: expected " + std::to_string(V + O) +
                          " arguments (variables, then options), got " + std::to_string(args.size()));
  std::vector<py::object> a;
  for (const py::handle item : args) a.push_back(py::reinterpret_borrow<py::object>(item));
  const Cell cell = configure<Cell>(a.data(), a.data() + V);
  const auto w = take_variables<Cell, T>(cell, a.data());
  return std::make_unique<CellStep<Cell, T>>(cell, std::vector<const T*>(w.begin(), w.end()));
}

template <size_t I>
using Object = py::object;

// A named argument: required, or with its default.
template <bool Required>
auto argument(const char* name, const py::object& default_value) {
  if constexpr (Required)
    return py::arg(name);
  else
    return py::arg_v(name, default_value);
}

// m.def(name, f) for f taking N py::objects as one array, each argument
// named; the first `Required` have no default.
template <size_t N, size_t Required, typename F, size_t... I>
void def_objects(py::module_& m, const std::string& name, F f, const char* doc,
                 const std::array<const char*, N>& names, const std::array<py::object, N>& defaults,
                 std::index_sequence<I...>) {
  m.def(
      name.c_str(), [f](Object<I>... a) { return f(std::array<py::object, N>{std::move(a)...}); }, doc,
      argument<(I < Required)>(names[I], defaults[I])...);
}

inline py::object option_default(const OptionSpec& o) {
  switch (o.kind) {
    case OptionKind::Activation: return py::str("tanh");
    case OptionKind::Number: return py::float_(o.default_number);
    case OptionKind::OptionalNumber: return py::none();
  }
  return py::none();
}

}  // namespace cell_binding

template <typename Cell>
void bind_cell(py::module_& m, const char* forward_doc, const char* backward_doc) {
  using namespace cell_binding;
  constexpr size_t V = Cell::kVariables.size(), S = Cell::kState.size(), O = Cell::kOptions.size();

  constexpr size_t NF = 1 + V + S + 2 + O + 2;
  std::array<const char*, NF> f_names{};
  std::array<py::object, NF> f_defaults;
  size_t i = 0;
  f_names[i++] = "x";
  for (const auto& v : Cell::kVariables) f_names[i++] = v.arg;
  for (const auto& p : Cell::kState) f_names[i++] = p.initial;
  f_names[i] = "sequence_length";
  f_defaults[i++] = py::none();
  f_names[i] = "time_major";
  f_defaults[i++] = py::bool_(false);
  for (const auto& o : Cell::kOptions) {
    f_names[i] = o.name;
    f_defaults[i++] = option_default(o);
  }
  f_names[i] = "state_mask";
  f_defaults[i++] = py::none();
  f_names[i] = "tape";
  f_defaults[i++] = py::none();
  for (auto& d : f_defaults)
    if (!d) d = py::none();
  def_objects<NF, 1 + V + S>(
      m, std::string(Cell::kName) + "_forward",
      [](const std::array<py::object, NF>& a) {
        const py::object* vars = &a[1];
        const py::object* state = &a[1 + V];
        const bool time_major = as_bool(a[2 + V + S], "time_major");
        const Cell cell = configure<Cell>(vars, &a[3 + V + S]);
        return dispatch_float(vars[0], Cell::kVariables[0].name, [&](auto zero) {
          return forward_impl<Cell, decltype(zero)>(cell, vars, a[0], state, a[1 + V + S], time_major,
                                                    a[3 + V + S + O], a[4 + V + S + O]);
        });
      },
      forward_doc, f_names, f_defaults, std::make_index_sequence<NF>());

  constexpr size_t NB = 2 + S + V + O + 1;
  std::array<const char*, NB> b_names{};
  std::array<py::object, NB> b_defaults;
  i = 0;
  b_names[i++] = "tape";
  b_names[i++] = "d_outputs";
  for (const auto& p : Cell::kState) b_names[i++] = p.final_grad;
  for (const auto& v : Cell::kVariables) b_names[i++] = v.arg;
  for (const auto& o : Cell::kOptions) {
    b_names[i] = o.name;
    b_defaults[i++] = option_default(o);
  }
  b_names[i] = "input_grad";
  b_defaults[i++] = py::bool_(true);
  for (auto& d : b_defaults)
    if (!d) d = py::none();
  def_objects<NB, 2 + S + V>(
      m, std::string(Cell::kName) + "_backward",
      [](const std::array<py::object, NB>& a) {
        const py::dict tape = as_tape(a[0]);
        const py::object* vars = &a[2 + S];
        const bool input_grad = as_bool(a[2 + S + V + O], "input_grad");
        const Cell cell = configure<Cell>(vars, &a[2 + S + V]);
        return dispatch_float(vars[0], Cell::kVariables[0].name, [&](auto zero) {
          return backward_impl<Cell, decltype(zero)>(cell, vars, tape, a[1], &a[2], input_grad);
        });
      },
      backward_doc, b_names, b_defaults, std::make_index_sequence<NB>());

  register_step_cell(Cell::kName, &step_cell<Cell, float>, &step_cell<Cell, double>);
}

}  // namespace rnnkit_py
