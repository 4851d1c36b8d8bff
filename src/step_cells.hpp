// Step cells (cpp/include/rnnkit/cell_step.hpp) built from the arguments a
// Python cell passes to its sequence kernel, checked by the same code as
// that kernel's binding: each factory lives in its cell's binding file.
#pragma once

#include "bind_util.hpp"
#include "rnnkit/cell_step.hpp"

#include <memory>

namespace rnnkit_py {

// args: LSTMCell._weight_args(): (kernel, bias, forget_bias, activation,
// w_i_diag, w_f_diag, w_o_diag, projection, cell_clip, proj_clip).
template <typename T>
std::unique_ptr<rnnkit::StepCell<T>> lstm_step_cell(const py::tuple& args);

// args: (gates/kernel, gates/bias, candidate/kernel, candidate/bias, activation), or for
// reset_after (gates/kernel, gates/bias, candidate/input/kernel, candidate/input/bias,
// candidate/hidden/kernel, candidate/hidden/bias, activation).
template <typename T>
std::unique_ptr<rnnkit::StepCell<T>> gru_step_cell(const py::tuple& args, bool reset_after);

// args: (kernel, bias, activation).
template <typename T>
std::unique_ptr<rnnkit::StepCell<T>> basic_rnn_step_cell(const py::tuple& args);

}  // namespace rnnkit_py
