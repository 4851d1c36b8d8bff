// A recurrent cell seen one time step at a time, behind one interface: its
// weights (held by the concrete type), the widths of its state parts and a
// step function. A stack of cells (MultiRNNCell, several RNN layers) is a
// list of these, and a loop that must run step by step — generation, where
// step t's input is drawn from step t - 1's output — walks the list without
// knowing which cells it holds.
//
// Every step runs the cell's own sequence kernel on one step of B rows, so a
// step gives the same bits as `cell(x, state)` from Python. A cell described
// for cell.hpp's loop steps as CellStep<Cell, T>, whose weights are prepared
// (fused, packed) once, on its first step, and reused by every later one.
#pragma once

#include "rnnkit/cell.hpp"
#include "rnnkit/lstm.hpp"

#include <memory>
#include <optional>
#include <vector>

namespace rnnkit {

template <typename T>
class StepCell {
 public:
  virtual ~StepCell() = default;
  // D: the depth of a dense input (token ids lie in [0, D)).
  virtual Index input_depth() const = 0;
  // The width of the step's output.
  virtual Index output_width() const = 0;
  // The widths of the state parts, in the cell's flat order (LSTM: c, h).
  virtual std::vector<Index> state_widths() const = 0;
  // One step of B rows. in: x [B, D] or ids [B]; state: one [B, w] array per
  // part, read and overwritten with the new state; out: [B, output_width].
  void step(Index B, const SeqInput<T>& in, T* const* state, T* out) {
    if (workspace_.size() < static_cast<size_t>(B * workspace_width())) workspace_.resize(B * workspace_width());
    run(one_step(B), in, state, out, workspace_.data());
  }

 protected:
  static SeqLayout one_step(Index B) {
    SeqLayout s;
    s.time_major = true;
    s.T = 1;
    s.B = B;
    return s;
  }
  // Scratch columns per row that the kernel needs (its gate buffer).
  virtual Index workspace_width() const = 0;
  // The kernel on one step; `state` is both its initial and its final state
  // (each kernel copies the initial state into the final one before it steps).
  virtual void run(const SeqLayout& seq, const SeqInput<T>& in, T* const* state, T* out, T* ws) = 0;

 private:
  std::vector<T, Eigen::aligned_allocator<T>> workspace_;
};

template <typename Cell, typename T>
class CellStep final : public StepCell<T> {
 public:
  // vars: the cell's variables in kVariables order, alive as long as this.
  CellStep(const Cell& cell, std::vector<const T*> vars) : cell_(cell), vars_(std::move(vars)) {}
  Index input_depth() const override { return cell_.D; }
  Index output_width() const override { return cell_.state_width(Cell::kState.size() - 1); }
  std::vector<Index> state_widths() const override {
    std::vector<Index> widths;
    for (size_t p = 0; p < Cell::kState.size(); ++p) widths.push_back(cell_.state_width(p));
    return widths;
  }

 private:
  Index workspace_width() const override { return cell_.gate_width(); }
  void run(const SeqLayout& seq, const SeqInput<T>& in, T* const* state, T* out, T* ws) override {
    if (!weights_ || weights_rows_ != seq.rows()) {  // packed for as many rows as a step has
      weights_.reset();
      weights_.emplace(cell_, vars_.data(), seq.rows());
      weights_rows_ = seq.rows();
    }
    CellIo<T> io;
    io.seq = seq;
    io.in = in;
    run_forward<Cell, T>(cell_, *weights_, io, state, out, state, nullptr, ws);
  }
  Cell cell_;
  std::vector<const T*> vars_;
  std::optional<typename Cell::template Forward<T>> weights_;
  Index weights_rows_ = -1;
};

// One layer of a stack: a cell, and whether its input is added to its output
// (ResidualWrapper; the widths must match).
template <typename T>
struct StackLayer {
  std::unique_ptr<StepCell<T>> cell;
  bool residual = false;
};

}  // namespace rnnkit
