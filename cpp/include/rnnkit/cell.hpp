// One description of a recurrent cell, and the one time loop that runs any
// described cell over a sequence, forward and backward.
//
// A cell is a type (basic_rnn.hpp, gru.hpp, lstm.hpp, layer_norm_lstm.hpp)
// that says what it is:
//   kName         its kernel pair in rnnkit._core: <kName>_forward / <kName>_backward
//   kVariables    its variables, in the kernels' argument order (TF's creation order)
//   kState        its state parts. The last is the recurrent one: the step's
//                 output, the input of the recurrent products, the part a
//                 state mask drops; the others (an LSTM's c) are carried by
//                 the cell's own row math.
//   kOptions      its options (activation, ...), after the variables
//   kTape         what forward saves for backward; kTape[0] is the gate buffer
//   kStateGradAdds  whether the recurrent part reaches the next step other
//                 than through the products (then the products' gradient
//                 adds to what the cell's backward step leaves)
//   Cell(shapes, options)  D, H, ... read from the variables' Shapes and the
//                 OptionValues (arrays in kVariables / kOptions order); a
//                 std::invalid_argument names the variable that disagrees
//   variable_shape(i) ({} for an absent optional variable), state_width(p),
//   gate_width(), input_columns() (the gate columns the input projection
//   fills), scratch_width(), recurrent_bytes<T>() (what a step's products read)
//   Forward<T>, Backward<T>  its weights as the steps use them (fused,
//                 packed): made once per call, once per StepCell
// and what it computes, which is all its header holds:
//   forward_step(w, ForwardRows&)   its products and row passes for one
//                                   block of batch rows of one step
//   backward_step(w, BackwardRows&) the same, backward
//   weight_grads(w, in, r0, n, tape, d)  its variables' gradients over tape
//                                   rows [r0, r0 + n)
// The rest is written once, here: the input projection (or the token id
// gather at each step), the step loop over batch blocks (batch_blocks), the
// rows past sequence_length (output zero, state carried), the state saved
// for backward, the recurrent gradient carried between steps, the weight
// gradients summed over row groups (sum_row_groups) and the input gradient.
//
// The calling convention of every cell's kernels (cell_forward /
// cell_backward): the variables as pointers in kVariables order (null: an
// absent optional variable), the state as one [B, w] array per part, the
// tape as one buffer per kTape part (null: inference).
#pragma once

#include "rnnkit/inputs.hpp"
#include "rnnkit/rowmath.hpp"

#include <initializer_list>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>

namespace rnnkit {

// ---- the description's vocabulary -----------------------------------------

struct VariableSpec {
  const char* name;       // TF's name, "gates/kernel"
  const char* arg;        // the kernels' argument name, "gates_kernel"
  bool optional = false;  // may be None (absent: the cell's options leave it out)
};

struct StatePart {
  const char* name;        // "h"; with several parts, messages say "initial_state.<name>"
  const char* initial;     // the forward's argument, "h0"
  const char* final_grad;  // the backward's argument, "dh_final"
};

enum class OptionKind {
  Activation,      // a name: "tanh", "relu", "sigmoid", "linear"
  Number,          // a number, with a default
  OptionalNumber,  // a number or None
};

struct OptionSpec {
  const char* name;
  OptionKind kind;
  double default_number = 0.0;  // Number only
};

// An option's value: a number (an Activation as its enum value), or nothing
// for an OptionalNumber given as None.
using OptionValue = std::optional<double>;

// A variable's shape: up to four sizes, or absent (an optional variable
// given as None, or left out by the cell's options). Held in place: a
// single step checks every variable's shape and allocates nothing.
struct Shape {
  Index rank = -1;  // -1: absent
  Index dims[4] = {};

  Shape() = default;
  Shape(std::initializer_list<Index> sizes) : rank(static_cast<Index>(sizes.size())) {
    std::copy(sizes.begin(), sizes.begin() + std::min<size_t>(sizes.size(), 4), dims);
  }
  template <typename It>
  Shape(It begin, Index n) : rank(n) {
    std::copy(begin, begin + std::min<Index>(n, 4), dims);
  }
  bool absent() const { return rank < 0; }
  size_t size() const { return rank < 0 ? 0 : static_cast<size_t>(rank); }
  Index operator[](size_t i) const { return dims[i]; }
  Index count() const {
    Index n = rank < 0 ? 0 : 1;
    for (size_t i = 0; i < size(); ++i) n *= dims[i];
    return n;
  }
  std::vector<Index> vector() const { return std::vector<Index>(dims, dims + std::min<size_t>(size(), 4)); }
};

// What a tape part holds: [rows, width] unless said otherwise.
enum class Saved {
  Gates,       // the gate buffer: what forward_step leaves in z; backward: the gradients
  StatePrev,   // the recurrent state part entering the step
  StateAfter,  // state part `part` after the step (carried past a row's length)
  Scratch,     // the cell's per-step scratch, as the step's last pass finds it
  Initial,     // [B, width]: state part `part` as the sequence starts
  Own,         // the cell's own buffer of own_tape_width(k) columns (a cell with its own loop)
};

struct TapePart {
  const char* name;
  Saved what;
  size_t part = 0;  // StateAfter and Initial
};

// "[2, 3]" ("*" for a size that is free): shapes in messages. Messages are
// built from plain strings, never iostreams: an extension that links
// libstdc++ statically holds a second copy of the runtime beside the one
// numpy loads, and there an ostringstream can crash the process on the
// first bad argument instead of raising (tests/test_bad_input.py guards this).
inline std::string shape_str(const std::vector<Index>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += shape[i] < 0 ? std::string("*") : std::to_string(shape[i]);
  }
  return s + "]";
}
inline std::string shape_str(const Shape& shape) { return shape_str(shape.vector()); }

// Does the cell save `what` for backward?
template <typename Cell>
constexpr bool saves(Saved what) {
  for (const TapePart& part : Cell::kTape)
    if (part.what == what) return true;
  return false;
}

// The width of a tape part's rows.
template <typename Cell>
Index tape_width(const Cell& cell, size_t k) {
  const TapePart& part = Cell::kTape[k];
  switch (part.what) {
    case Saved::Gates: return cell.gate_width();
    case Saved::StatePrev: return cell.state_width(Cell::kState.size() - 1);
    case Saved::Scratch:
      if constexpr (saves<Cell>(Saved::Scratch)) return cell.scratch_width();
      return 0;
    case Saved::StateAfter:
    case Saved::Initial: return cell.state_width(part.part);
    case Saved::Own:
      if constexpr (saves<Cell>(Saved::Own)) return cell.own_tape_width(k);
      return 0;
  }
  return 0;
}

// A cell whose steps run in a loop of its own (kOwnLoop true; its header
// says why) still enters C++ through its description: cell_forward,
// cell_backward and StepCell call its forward and backward instead of the
// loop below.
template <typename Cell, typename = void>
struct own_loop : std::false_type {};
template <typename Cell>
struct own_loop<Cell, std::void_t<decltype(Cell::kOwnLoop)>> : std::bool_constant<Cell::kOwnLoop> {};

// What every call of a cell's kernels shares besides weights and state.
template <typename T>
struct CellIo {
  SeqLayout seq;
  SeqInput<T> in;
  const int32_t* sequence_length = nullptr;  // [B] or null
  StateMask<T> state_mask;                   // on the recurrent part
};

// ---- one step, as the cell sees it ----------------------------------------

// A live row's new recurrent state, one chunk at a time: the step's output,
// and the state carried to the next step (times the state mask, if any).
template <typename T>
struct NewState {
  T* out;
  T* state;
  const T* mask;
  void store(const RowChunk<T>& at, const Chunk<T>& y) const {
    at.store(y, out);
    at.store(mask ? Chunk<T>(y * at.load(mask)) : y, state);
  }
};

// A tape part the loop writes row by row.
template <typename T>
struct SavedRows {
  Saved what;
  size_t part;
  T* data;
  Index width;
};

// Batch rows [b0, b0 + n) of step t: what a forward and a backward step share.
template <typename T>
struct StepRows {
  const SeqLayout& seq;
  const int32_t* sequence_length;
  const StateMask<T>& state_mask;
  Index t, b0, n;
  Index R;  // the recurrent state part's width

  template <typename M>
  auto rows(M&& m) const {
    return m.middleRows(b0, n);
  }
  bool live(Index b) const { return active(sequence_length, t, b); }
  // Row b's state mask (on the recurrent part), or null.
  const T* mask(Index b) const { return state_mask.data ? state_mask.row(seq, t, b, R) : nullptr; }
  // live_row(b) for each live row of the block, dead_row(b) for the others;
  // split over threads when `width` (a row's work) makes it worth it.
  template <typename Live, typename Dead>
  void pass(Index width, Live&& live_row, Dead&& dead_row) const {
    parallel_for(n, worth_parallel(n, width), [&](Index i) {
      const Index b = b0 + i;
      if (live(b))
        live_row(b);
      else
        dead_row(b);
    });
  }
  template <typename Live>
  void pass(Index width, Live&& live_row) const {
    pass(width, live_row, [](Index) {});
  }
};

// Batch rows [b0, b0 + n) of forward step t.
template <typename T>
struct ForwardRows : StepRows<T> {
  StepMap<T> z;      // [B, G] the gate buffer of step t: the input part in, the cell's values out
  StepMap<T> out;    // [B, R] the step's outputs
  MatMap<T>* state;  // one [B, w] per part: entering the step, until the last pass moves them on
  MatMap<T>& h;      // the recurrent part (the last)
  Mat<T>& scratch;   // [B, scratch_width] the cell's own per-step values
  const std::vector<SavedRows<T>>& saved;  // empty at inference

  // C += A · W over the block's rows.
  template <typename Dst, typename Src, typename W>
  void multiply(Dst&& C, Src&& A, const W& W_packed) const {
    gemm(this->rows(C), this->rows(A), W_packed, /*accumulate=*/true);
  }
  // The step's last pass: saves what backward reads of the step, zeroes the
  // output of each row past its length (whose state carries over), and
  // moves each live row's state on: row(b, NewState) writes the parts
  // before the recurrent one itself, the recurrent one through NewState.
  template <typename Live>
  void last_pass(Index width, Live&& row) {
    const SeqLayout& seq = this->seq;
    const Index t = this->t;
    parallel_for(this->n, worth_parallel(this->n, width), [&](Index i) {
      const Index b = this->b0 + i;
      for (const SavedRows<T>& s : saved) {
        if (s.what == Saved::StatePrev) seq.step(s.data, t, s.width).row(b) = h.row(b);
        if (s.what == Saved::Scratch) seq.step(s.data, t, s.width).row(b) = scratch.row(b);
      }
      if (this->live(b))
        row(b, NewState<T>{&out(b, 0), &h(b, 0), this->mask(b)});
      else
        out.row(b).setZero();
      for (const SavedRows<T>& s : saved)
        if (s.what == Saved::StateAfter) seq.step(s.data, t, s.width).row(b) = state[s.part].row(b);
    });
  }
};

// Step t_next's recurrent product dh_rec reaches row b of dh, the gradient
// of the recurrent state entering step t_next, when the row is still live
// at t_next: added to what the cell's step left there (kStateGradAdds), or
// in its place.
template <typename T>
void carry_recurrent_grad(const SeqLayout& seq, const int32_t* sequence_length, bool adds, MatMap<T>& dh,
                          const Mat<T>& dh_rec, Index t_next, Index b) {
  if (t_next >= seq.T || !active(sequence_length, t_next, b)) return;
  if (adds)
    dh.row(b) += dh_rec.row(b);
  else
    dh.row(b) = dh_rec.row(b);
}

// Batch rows [b0, b0 + n) of backward step t.
template <typename T>
struct BackwardRows : StepRows<T> {
  StepMap<T> dz;       // [B, G] forward's gate values in, their pre-activations' gradients out
  CStepMap<T> d_out;   // [B, R]
  CStepMap<T> h_prev;  // [B, R] the recurrent state that entered the step
  MatMap<T>* d_state;  // one [B, w] per part: d of the state leaving the step in, entering it out
  MatMap<T>& dh;       // the recurrent part's
  Mat<T>& dh_rec;      // [B, R] the recurrent products' part of dh, which the loop adds
  Mat<T>& d_scratch;   // [B, scratch_width]
  bool adds_recurrent;      // the cell's kStateGradAdds
  const T* const* after;    // per part: its StateAfter tape rows, or null
  const T* const* initial;  // per part: its Initial tape entry, or null

  // Row b of state part p after step t, and as step t found it.
  const T* state_after(size_t p, Index b) const { return after[p] + this->seq.row(this->t, b) * d_state[p].cols(); }
  const T* state_before(size_t p, Index b) const {
    const Index w = d_state[p].cols();
    return this->t == 0 ? initial[p] + b * w : after[p] + this->seq.row(this->t - 1, b) * w;
  }

  // C = A · W over the block's rows.
  template <typename Dst, typename Src, typename W>
  void multiply(Dst&& C, Src&& A, const W& W_packed) const {
    gemm(this->rows(C), this->rows(A), W_packed);
  }
  // The step's first pass: each row first takes the gradient that the next
  // step's recurrent products sent it; the gate gradients of a row past its
  // length are zero (its state gradients pass through); row(b) for the
  // live rows.
  template <typename Live>
  void first_pass(Index width, Live&& row) {
    const Index G = dz.cols();
    parallel_for(this->n, worth_parallel(this->n, width), [&](Index i) {
      const Index b = this->b0 + i;
      carry_recurrent_grad(this->seq, this->sequence_length, adds_recurrent, dh, dh_rec, this->t + 1, b);
      if (!this->live(b)) {
        T* zb = &dz(b, 0);
        std::fill(zb, zb + G, T(0));
        return;
      }
      row(b);
    });
  }
};

// ---- the time loop ----------------------------------------------------------

namespace detail {
template <typename Cell, typename T>
void loop_forward(const Cell& cell, const typename Cell::template Forward<T>& w, const CellIo<T>& io,
                  const T* const* state0, T* outputs, T* const* state, T* const* tape, T* gates_ws) {
  constexpr size_t S = Cell::kState.size();
  const SeqLayout& seq = io.seq;
  const Index G = cell.gate_width(), R = cell.state_width(S - 1), X = cell.input_columns(), B = seq.B,
              rows = seq.rows();
  T* gates = tape ? tape[0] : gates_ws;
  const bool gather_per_step = io.in.ids != nullptr;  // token ids: see gather_step_inputs
  if (!gather_per_step) {
    MatMap<T> z(gates, rows, G);
    if (X == G) {
      project_inputs(z, io.in, rows, w.W_x, w.x_bias);
    } else {  // the columns past the input's start at tail_bias
      project_inputs(z.leftCols(X), io.in, rows, w.W_x, w.x_bias);
      z.rightCols(G - X) = w.tail_bias.replicate(rows, 1);
    }
  }
  std::vector<MatMap<T>> parts;
  parts.reserve(S);
  for (size_t p = 0; p < S; ++p) {
    parts.emplace_back(state[p], B, cell.state_width(p));
    parts[p] = CMatMap<T>(state0[p], B, cell.state_width(p));
  }
  Mat<T> scratch(B, cell.scratch_width());
  std::vector<SavedRows<T>> saved;
  for (size_t k = 0; tape && k < Cell::kTape.size(); ++k) {
    const TapePart& part = Cell::kTape[k];
    if (part.what != Saved::Gates && part.what != Saved::Initial)
      saved.push_back({part.what, part.part, tape[k], tape_width(cell, k)});
  }

  // Batch rows [b0, b0 + n) through every step (see batch_blocks).
  auto run_rows = [&](Index b0, Index n) {
    for (Index t = 0; t < seq.T; ++t) {
      ForwardRows<T> s{{seq, io.sequence_length, io.state_mask, t, b0, n, R},
                       seq.step(gates, t, G),
                       seq.step(outputs, t, R),
                       parts.data(),
                       parts[S - 1],
                       scratch,
                       saved};
      if (gather_per_step) {
        if (X == G) {
          gather_step_inputs(s.rows(s.z), io.in, seq, t, b0, w.W_x, w.x_bias);
        } else {
          gather_step_inputs(s.rows(s.z.leftCols(X)), io.in, seq, t, b0, w.W_x, w.x_bias);
          s.rows(s.z.rightCols(G - X)) = w.tail_bias.replicate(n, 1);
        }
      }
      cell.forward_step(w, s);
    }
  };
  const BatchBlocks blocks = batch_blocks(B, cell.template recurrent_bytes<T>());
  parallel_for(blocks.count, blocks.count > 1, [&](Index i) { run_rows(blocks.begin(i), blocks.rows(i)); });
}

template <typename Cell, typename T>
void loop_backward(const Cell& cell, const T* const* vars, const CellIo<T>& io, T* const* tape,
                   const T* d_outputs, const T* const* d_final, T* dx, T* const* d_state0, T* const* grads) {
  static_assert(saves<Cell>(Saved::StatePrev), "backward reads the recurrent state entering each step");
  constexpr size_t S = Cell::kState.size(), V = Cell::kVariables.size();
  size_t state_prev = 0;
  std::array<const T*, S> after{}, initial{};
  for (size_t k = 0; k < Cell::kTape.size(); ++k) {
    const TapePart& part = Cell::kTape[k];
    if (part.what == Saved::StatePrev) state_prev = k;
    if (part.what == Saved::StateAfter) after[part.part] = tape[k];
    if (part.what == Saved::Initial) initial[part.part] = tape[k];
  }
  const SeqLayout& seq = io.seq;
  const Index G = cell.gate_width(), R = cell.state_width(S - 1), X = cell.input_columns(), B = seq.B;
  const typename Cell::template Backward<T> w(cell, vars, seq.rows(), dx != nullptr);

  std::vector<MatMap<T>> d_parts;
  d_parts.reserve(S);
  for (size_t p = 0; p < S; ++p) {
    d_parts.emplace_back(d_state0[p], B, cell.state_width(p));
    d_parts[p] = CMatMap<T>(d_final[p], B, cell.state_width(p));
  }
  MatMap<T>& dh = d_parts[S - 1];
  Mat<T> dh_rec(B, R), d_scratch(B, cell.scratch_width());

  // Batch rows [b0, b0 + n) back through every step (see batch_blocks).
  auto run_rows = [&](Index b0, Index n) {
    for (Index t = seq.T - 1; t >= 0; --t) {
      BackwardRows<T> s{{seq, io.sequence_length, io.state_mask, t, b0, n, R},
                        seq.step(tape[0], t, G),
                        seq.step(d_outputs, t, R),
                        seq.step(static_cast<const T*>(tape[state_prev]), t, R),
                        d_parts.data(),
                        dh,
                        dh_rec,
                        d_scratch,
                        Cell::kStateGradAdds,
                        after.data(),
                        initial.data()};
      cell.backward_step(w, s);
    }
    for (Index b = b0; b < b0 + n; ++b)
      carry_recurrent_grad(seq, io.sequence_length, Cell::kStateGradAdds, dh, dh_rec, 0, b);
  };
  const Index weight_bytes = cell.template recurrent_bytes<T>();
  const BatchBlocks blocks = batch_blocks(B, weight_bytes);
  parallel_for(blocks.count, blocks.count > 1, [&](Index i) { run_rows(blocks.begin(i), blocks.rows(i)); });

  // Weight gradients: the cell's products over the rows of each group (see
  // grad_blocks), and the input gradient of those rows.
  std::array<T*, V> g{};
  std::array<Index, V> sizes{};
  for (size_t i = 0; i < V; ++i) {
    g[i] = grads[i];
    sizes[i] = cell.variable_shape(i).count();
  }
  sum_row_groups<T, V>(grad_blocks(seq, weight_bytes), seq.T, g, sizes,
                       [&](Index r0, Index n, const std::array<T*, V>& d) {
                         const SeqInput<T> in_g = io.in.from_row(r0);
                         cell.weight_grads(w, in_g, r0, n, tape, d);
                         T* dx_g = dx ? dx + r0 * io.in.D : nullptr;
                         CMatMap<T> d_z(tape[0] + r0 * G, n, G);
                         if (X == G)
                           input_grad(dx_g, in_g, n, d_z, w.W_x);
                         else
                           input_grad(dx_g, in_g, n, d_z.leftCols(X), w.W_x);
                       });
}

}  // namespace detail

// The cell over a sequence with weights made beforehand (a StepCell's).
// w: the cell's Forward<T>; state0, state: one [B, w] per part (state0[p]
// may be state[p]); outputs: [rows, R] (zero on padded steps); tape: one
// buffer per kTape part, or null (inference) with gates_ws [rows, G] as the
// gate buffer.
template <typename Cell, typename T>
void run_forward(const Cell& cell, const typename Cell::template Forward<T>& w, const CellIo<T>& io,
                 const T* const* state0, T* outputs, T* const* state, T* const* tape, T* gates_ws) {
  if constexpr (own_loop<Cell>::value)
    cell.forward(w.w, w.W_h.get(), io, state0, outputs, state, tape, gates_ws);
  else
    detail::loop_forward(cell, w, io, state0, outputs, state, tape, gates_ws);
}

// The cell over a sequence: vars in kVariables order; the rest as run_forward.
template <typename Cell, typename T>
void cell_forward(const Cell& cell, const T* const* vars, const CellIo<T>& io, const T* const* state0,
                  T* outputs, T* const* state, T* const* tape, T* gates_ws) {
  if constexpr (own_loop<Cell>::value) {
    cell.forward(cell.weights(vars), static_cast<const PackedRhs<T>*>(nullptr), io, state0, outputs, state, tape,
                 gates_ws);
  } else {
    const typename Cell::template Forward<T> w(cell, vars, io.seq.rows());
    detail::loop_forward(cell, w, io, state0, outputs, state, tape, gates_ws);
  }
}

// Back through the cell_forward that filled `tape`. d_outputs: [rows, R];
// d_final: one [B, w] per part -> dx: [rows, D] (null: not wanted; never set
// for token ids); d_state0: one [B, w] per part; grads: one per variable in
// kVariables order (null for an absent one). The tape is spent afterwards
// (its gate buffer holds gradients).
template <typename Cell, typename T>
void cell_backward(const Cell& cell, const T* const* vars, const CellIo<T>& io, T* const* tape,
                   const T* d_outputs, const T* const* d_final, T* dx, T* const* d_state0, T* const* grads) {
  if constexpr (own_loop<Cell>::value)
    cell.backward(vars, io, tape, d_outputs, d_final, dx, d_state0, grads);
  else
    detail::loop_backward(cell, vars, io, tape, d_outputs, d_final, dx, d_state0, grads);
}

}  // namespace rnnkit
