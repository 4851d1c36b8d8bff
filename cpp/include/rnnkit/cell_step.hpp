// A recurrent cell seen one time step at a time, behind one interface: its
// weights (held by the concrete type), the widths of its state parts and a
// step function. A stack of cells (MultiRNNCell, several RNN layers) is a
// list of these, and a loop that must run step by step — generation, where
// step t's input is drawn from step t - 1's output — walks the list without
// knowing which cells it holds.
//
// Every step runs the cell's own sequence kernel (lstm_forward, gru_forward,
// gru_reset_after_forward, basic_rnn_forward) on one step of B rows, so a
// step gives the same bits as `cell(x, state)` from Python.
#pragma once

#include "rnnkit/basic_rnn.hpp"
#include "rnnkit/gru.hpp"
#include "rnnkit/lstm.hpp"

#include <memory>
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

template <typename T>
class LstmStepCell final : public StepCell<T> {
 public:
  LstmStepCell(const LstmConfig& cfg, const LstmWeights<T>& w) : cfg_(cfg), w_(w) {}
  Index input_depth() const override { return cfg_.D; }
  Index output_width() const override { return cfg_.R(); }
  std::vector<Index> state_widths() const override { return {cfg_.H, cfg_.R()}; }

 private:
  Index workspace_width() const override { return cfg_.G(); }
  void run(const SeqLayout& seq, const SeqInput<T>& in, T* const* state, T* out, T* ws) override {
    // Many rows: W_h is packed on the first step and reused by every later one.
    if (!W_h_packed_ && seq.rows() >= 16)
      W_h_packed_ = std::make_unique<PackedRhs<T>>(
          CMatMap<T>(w_.kernel, cfg_.D + cfg_.R(), cfg_.G()).bottomRows(cfg_.R()), seq.rows());
    lstm_forward<T>(cfg_, w_, seq, in, nullptr, StateMask<T>{}, state[0], state[1], out, state[0], state[1],
                    LstmTape<T>{}, ws, W_h_packed_.get());
  }
  LstmConfig cfg_;
  LstmWeights<T> w_;
  std::unique_ptr<PackedRhs<T>> W_h_packed_;
};

template <typename T>
class GruStepCell final : public StepCell<T> {
 public:
  GruStepCell(const GruConfig& cfg, const GruWeights<T>& w) : cfg_(cfg), w_(w) {}
  Index input_depth() const override { return cfg_.D; }
  Index output_width() const override { return cfg_.H; }
  std::vector<Index> state_widths() const override { return {cfg_.H}; }

 private:
  Index workspace_width() const override { return 3 * cfg_.H; }
  void run(const SeqLayout& seq, const SeqInput<T>& in, T* const* state, T* out, T* ws) override {
    gru_forward<T>(cfg_, w_, seq, in, nullptr, StateMask<T>{}, state[0], out, state[0], GruTape<T>{}, ws);
  }
  GruConfig cfg_;
  GruWeights<T> w_;
};

template <typename T>
class GruResetAfterStepCell final : public StepCell<T> {
 public:
  GruResetAfterStepCell(const GruConfig& cfg, const GruResetAfterWeights<T>& w) : cfg_(cfg), w_(w) {}
  Index input_depth() const override { return cfg_.D; }
  Index output_width() const override { return cfg_.H; }
  std::vector<Index> state_widths() const override { return {cfg_.H}; }

 private:
  Index workspace_width() const override { return 4 * cfg_.H; }
  void run(const SeqLayout& seq, const SeqInput<T>& in, T* const* state, T* out, T* ws) override {
    gru_reset_after_forward<T>(cfg_, w_, seq, in, nullptr, StateMask<T>{}, state[0], out, state[0],
                               GruResetAfterTape<T>{}, ws);
  }
  GruConfig cfg_;
  GruResetAfterWeights<T> w_;
};

template <typename T>
class BasicRnnStepCell final : public StepCell<T> {
 public:
  BasicRnnStepCell(const BasicRnnConfig& cfg, const T* kernel, const T* bias)
      : cfg_(cfg), kernel_(kernel), bias_(bias) {}
  Index input_depth() const override { return cfg_.D; }
  Index output_width() const override { return cfg_.H; }
  std::vector<Index> state_widths() const override { return {cfg_.H}; }

 private:
  Index workspace_width() const override { return cfg_.H; }
  void run(const SeqLayout& seq, const SeqInput<T>& in, T* const* state, T* out, T* ws) override {
    basic_rnn_forward<T>(cfg_, kernel_, bias_, seq, in, nullptr, StateMask<T>{}, state[0], out, state[0],
                         BasicRnnTape<T>{}, ws);
  }
  BasicRnnConfig cfg_;
  const T* kernel_;
  const T* bias_;
};

// One layer of a stack: a cell, and whether its input is added to its output
// (ResidualWrapper; the widths must match).
template <typename T>
struct StackLayer {
  std::unique_ptr<StepCell<T>> cell;
  bool residual = false;
};

}  // namespace rnnkit
