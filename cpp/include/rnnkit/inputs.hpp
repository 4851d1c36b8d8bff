// The input side of a recurrent layer: dense inputs x [rows, D], and/or token
// ids [rows] that stand for one_hot(ids, D). With ids the input projection is
// a row gather from W_x and the input-weight gradient a row scatter-add. Dense
// inputs that are one-hot rows carry both (see one_hot_rows): the ids for
// those two, x for the input gradient. Ids alone have no input gradient.
#pragma once

#include "rnnkit/gemm.hpp"

namespace rnnkit {

template <typename T>
struct SeqInput {
  const T* x = nullptr;          // [rows, D] dense inputs, and/or
  const int32_t* ids = nullptr;  // [rows] token ids, each in [0, D)
  Index D = 0;

  // The same inputs from row r0 on.
  SeqInput from_row(Index r0) const {
    return {x ? x + r0 * D : nullptr, ids ? ids + r0 : nullptr, D};
  }
};

// If every row of x [rows, D] is one-hot (a single 1, zeros elsewhere), writes
// the position of each row's 1 to ids and returns true. Multiplying such a row
// by W_x in order over k adds zeros and one exact 1·w, so the gather and the
// scatter-add that the ids allow give the product's bits — at a cost of one
// pass over x (which stops at the first row that is not one-hot) instead of
// 2·rows·D·G FLOPs. The tutorials' char-RNNs feed exactly such inputs.
template <typename T>
bool one_hot_rows(const T* x, Index rows, Index D, int32_t* ids) {
  for (Index r = 0; r < rows; ++r) {
    const T* row = x + r * D;
    // Counted without branches, so that the loop vectorises. NaN counts as
    // a non-zero that is not 1.
    int32_t nonzero = 0, ones = 0, hot = 0;
    for (int32_t k = 0; k < static_cast<int32_t>(D); ++k) {
      nonzero += row[k] != T(0);
      ones += row[k] == T(1);
      hot += row[k] == T(1) ? k : 0;
    }
    if (nonzero != 1 || ones != 1) return false;
    ids[r] = hot;
  }
  return true;
}

// dst [rows, G] = inputs · W_x [D, G] + bias [G]; for ids one pass of
// gather-and-add, for dense inputs the GEMM and then one pass adding the bias.
template <typename T, typename Dst, typename W, typename Bias>
void project_inputs(Dst&& dst, const SeqInput<T>& in, Index rows, const W& W_x, const Bias& bias) {
  const bool parallel = worth_parallel(rows, dst.cols());
  if (in.ids == nullptr) {
    gemm(dst, CMatMap<T>(in.x, rows, in.D), W_x);
    parallel_for(rows, parallel, [&](Index r) { dst.row(r) += bias; });
    return;
  }
  parallel_for(rows, parallel, [&](Index r) { dst.row(r) = W_x.row(in.ids[r]) + bias; });
}

// The gather of project_inputs for the batch rows [b0, b0 + z.rows()) of
// step t only: a recurrence over token ids fills each step's rows right
// before its product adds onto them, while they are in cache, instead of
// writing all T·B rows first (memory-bound) and reading them back per step.
template <typename T, typename Dst, typename W, typename Bias>
void gather_step_inputs(Dst&& z, const SeqInput<T>& in, const SeqLayout& seq, Index t, Index b0, const W& W_x,
                        const Bias& bias) {
  parallel_for(z.rows(), worth_parallel(z.rows(), z.cols()),
               [&](Index i) { z.row(i) = W_x.row(in.ids[seq.row(t, b0 + i)]) + bias; });
}

// d_bias [G] = the column sums of dZ [rows, G], rows in order (as
// column_sums), which needs dZ's rows contiguous.
template <typename T, typename Src>
void bias_grad(const Src& dZ, Index rows, T* d_bias) {
  eigen_assert(rows < 2 || dZ.outerStride() == dZ.cols());
  column_sums(dZ.data(), rows, dZ.cols(), d_bias);
}

// dW_x [D, G] = inputs^T · dZ [rows, G], and with d_bias also d_bias [G]
// (bias_grad). For token ids both come from one pass over dZ (any row
// stride), which comes from beyond the L2 in a long tape.
template <typename T, typename Dst, typename Src>
void input_weight_grad(Dst&& dW_x, const SeqInput<T>& in, Index rows, const Src& dZ, T* d_bias = nullptr) {
  const Index G = dZ.cols();
  if (in.ids == nullptr) {
    gemm(dW_x, CMatMap<T>(in.x, rows, in.D).transpose(), dZ);
    if (d_bias != nullptr) bias_grad(dZ, rows, d_bias);
    return;
  }
  dW_x.setZero();
  if (d_bias != nullptr) std::fill(d_bias, d_bias + G, T(0));
  if (G == 0) return;
  // Rows are added in their own order, whatever the thread count; threads
  // split the columns. Where no region opens (one thread, or a thread's own
  // gradient group) the one block is every column, so each row of dZ is
  // read once.
  const Index split = G >= 256 ? 128 : G;
  const bool parallel = G > split && rows * G >= 16384;
  const Index block = opens_region((G + split - 1) / split, parallel) ? split : G;
  const Index blocks = (G + block - 1) / block;
  parallel_for(blocks, parallel, [&](Index i) {
    const Index start = i * block, size = std::min(block, G - start);
    for (Index r = 0; r < rows; ++r) {
      dW_x.row(in.ids[r]).segment(start, size) += dZ.row(r).segment(start, size);
      if (d_bias != nullptr) RowMap<T>(d_bias + start, size) += dZ.row(r).segment(start, size);
    }
  });
}

// The gradient dW [D + R, G] of a kernel that multiplies [x, state], and
// with d_bias d_bias [G]: the input rows as input_weight_grad, the state
// rows as states^T · dZ (states: [rows, R]). For dense inputs both halves
// are products by dZ, which gemm_shared_rhs packs once for the two.
template <typename T, typename Dst, typename Src>
void kernel_grad(Dst&& dW, const SeqInput<T>& in, Index rows, const T* states, const Src& dZ, T* d_bias) {
  const Index D = in.D, R = dW.rows() - D;
  const auto states_t = CMatMap<T>(states, rows, R).transpose();
  if (in.ids != nullptr) {
    input_weight_grad(dW.topRows(D), in, rows, dZ, d_bias);
    gemm(dW.bottomRows(R), states_t, dZ);
    return;
  }
  gemm_shared_rhs(dW.topRows(D), CMatMap<T>(in.x, rows, D).transpose(), dW.bottomRows(R), states_t, dZ);
  if (d_bias != nullptr) bias_grad(dZ, rows, d_bias);
}

// dx [rows, D] = dZ · W_x^T (dense inputs only; ids alone have no gradient)
template <typename T, typename Src, typename W>
void input_grad(T* dx, const SeqInput<T>& in, Index rows, const Src& dZ, const W& W_x, bool accumulate = false) {
  if (dx == nullptr || in.x == nullptr) return;
  gemm(MatMap<T>(dx, rows, in.D), dZ, W_x.transpose(), accumulate);
}

}  // namespace rnnkit
