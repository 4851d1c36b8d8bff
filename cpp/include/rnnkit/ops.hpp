// The ops of TF1 programs beyond the cells: softmax, the two softmax
// cross-entropies, mean squared error and TF1's SUM_BY_NONZERO_WEIGHTS
// reduction, embedding lookup, and the last valid output of a sequence.
// Each comes as a forward / backward pair.
// Letters: N rows (the product of the leading axes), C classes (last axis),
// V vocabulary, E embedding width; B, T, H as in common.hpp.
// Every sum runs in a fixed order (in double where a whole array is
// reduced), so no result depends on the thread count.
#pragma once

#include "rnnkit/rowmath.hpp"

#include <cmath>
#include <cstdint>

namespace rnnkit {

// ---- softmax ----------------------------------------------------------------
// x: [N, C] -> y: [N, C] = softmax over the last axis
template <typename T>
void softmax_forward(Index N, Index C, const T* x, T* y) {
  parallel_for(N, worth_parallel(N, C), [&](Index r) { softmax_row(x + r * C, C, y + r * C); });
}

// y: [N, C] (forward's result); dy: [N, C] -> dx: [N, C] = y ⊙ (dy - Σ_c dy ⊙ y)
template <typename T>
void softmax_backward(Index N, Index C, const T* y, const T* dy, T* dx) {
  parallel_for(N, worth_parallel(N, C), [&](Index r) {
    const T* yr = y + r * C;
    const T* dyr = dy + r * C;
    T dot = T(0);
    for (Index c = 0; c < C; ++c) dot += dyr[c] * yr[c];
    T* d = dx + r * C;
    for (Index c = 0; c < C; ++c) d[c] = yr[c] * (dyr[c] - dot);
  });
}

// ---- softmax cross-entropy (TF1's softmax_cross_entropy_with_logits_v2) ------
// logits, labels: [N, C] (labels: a distribution per row, not checked)
//   -> loss: [N] = Σ_c labels · (logsumexp(logits) - logits);
//      probs: [N, C] softmax, kept for backward (null: inference)
template <typename T>
void softmax_cross_entropy_forward(Index N, Index C, const T* logits, const T* labels, T* loss, T* probs) {
  parallel_for(N, worth_parallel(N, C), [&](Index r) {
    const T* x = logits + r * C;
    const T* y = labels + r * C;
    const auto [m, s] = softmax_row(x, C, probs != nullptr ? probs + r * C : nullptr);
    const T log_s = std::log(s);
    T sum = T(0);
    for (Index c = 0; c < C; ++c) sum += y[c] * (log_s - (x[c] - m));
    loss[r] = sum;
  });
}

// labels: [N, C]; probs: [N, C] from forward; d_loss: [N]
//   -> d_logits: [N, C] = d_loss · (probs · Σ_c labels - labels)
template <typename T>
void softmax_cross_entropy_backward(Index N, Index C, const T* labels, const T* probs, const T* d_loss,
                                    T* d_logits) {
  parallel_for(N, worth_parallel(N, C), [&](Index r) {
    const T* y = labels + r * C;
    const T* p = probs + r * C;
    T total = T(0);
    for (Index c = 0; c < C; ++c) total += y[c];
    const T g = d_loss[r];
    T* d = d_logits + r * C;
    for (Index c = 0; c < C; ++c) d[c] = g * (p[c] * total - y[c]);
  });
}

// ---- sparse softmax cross-entropy ---------------------------------------------
// logits: [N, C]; labels: [N], each in [0, C) (checked by the caller)
//   -> loss: [N] = logsumexp(logits) - logits[label]; probs: [N, C] or null
template <typename T, typename Label>
void sparse_softmax_cross_entropy_forward(Index N, Index C, const T* logits, const Label* labels, T* loss,
                                          T* probs) {
  parallel_for(N, worth_parallel(N, C), [&](Index r) {
    const T* x = logits + r * C;
    const auto [m, s] = softmax_row(x, C, probs != nullptr ? probs + r * C : nullptr);
    loss[r] = std::log(s) - (x[labels[r]] - m);
  });
}

// labels: [N]; probs: [N, C] from forward; d_loss: [N]
//   -> d_logits: [N, C] = d_loss · (probs - onehot(label))
template <typename T, typename Label>
void sparse_softmax_cross_entropy_backward(Index N, Index C, const Label* labels, const T* probs,
                                           const T* d_loss, T* d_logits) {
  parallel_for(N, worth_parallel(N, C), [&](Index r) {
    const T* p = probs + r * C;
    const T g = d_loss[r];
    const Index y = static_cast<Index>(labels[r]);
    T* d = d_logits + r * C;
    for (Index c = 0; c < C; ++c) d[c] = g * (c == y ? p[c] - T(1) : p[c]);
  });
}

// ---- TF1's SUM_BY_NONZERO_WEIGHTS reduction -------------------------------------
// values, weights: [N] -> Σ weights · values / count(weights != 0), 0 when no
// weight is non-zero (TF's div_no_nan). The products are rounded in T (TF's
// `losses * weights`), the sum and the division run in double.
template <typename T>
T sum_by_nonzero_weights(Index N, const T* values, const T* weights) {
  double total = 0.0;
  Index count = 0;
  for (Index i = 0; i < N; ++i) {
    total += static_cast<double>(values[i] * weights[i]);
    count += weights[i] != T(0);
  }
  return count == 0 ? T(0) : static_cast<T>(total / static_cast<double>(count));
}

// weights: [N]; d_loss: the scalar's gradient -> d_values: [N] = d_loss · weights / count
template <typename T>
void sum_by_nonzero_weights_backward(Index N, const T* weights, T d_loss, T* d_values) {
  Index count = 0;
  for (Index i = 0; i < N; ++i) count += weights[i] != T(0);
  const T scale = count == 0 ? T(0) : static_cast<T>(static_cast<double>(d_loss) / static_cast<double>(count));
  for (Index i = 0; i < N; ++i) d_values[i] = scale * weights[i];
}

// ---- mean squared error (tf.losses.mean_squared_error) ---------------------------
// predictions, labels, weights: [N] (weights already broadcast)
//   -> Σ w (p - y)² / count(w != 0), 0 when no weight is non-zero
template <typename T>
T mean_squared_error_forward(Index N, const T* predictions, const T* labels, const T* weights) {
  double total = 0.0;
  Index count = 0;
  for (Index i = 0; i < N; ++i) {
    const T diff = predictions[i] - labels[i];
    total += static_cast<double>(diff * diff * weights[i]);
    count += weights[i] != T(0);
  }
  return count == 0 ? T(0) : static_cast<T>(total / static_cast<double>(count));
}

// -> d_predictions: [N] = d_loss · 2 w (p - y) / count (d_labels is its negation)
template <typename T>
void mean_squared_error_backward(Index N, const T* predictions, const T* labels, const T* weights, T d_loss,
                                 T* d_predictions) {
  Index count = 0;
  for (Index i = 0; i < N; ++i) count += weights[i] != T(0);
  const T scale =
      count == 0 ? T(0) : static_cast<T>(2.0 * static_cast<double>(d_loss) / static_cast<double>(count));
  parallel_for(N, N >= 65536, [&](Index i) {
    d_predictions[i] = scale * weights[i] * (predictions[i] - labels[i]);
  });
}

// ---- embedding lookup ------------------------------------------------------------
// params: [V, E]; ids: [N], each in [0, V) (checked by the caller) -> out: [N, E] = params[ids]
template <typename T, typename Id>
void embedding_lookup_forward(Index N, Index E, const T* params, const Id* ids, T* out) {
  parallel_for(N, worth_parallel(N, E), [&](Index i) {
    std::copy_n(params + static_cast<Index>(ids[i]) * E, E, out + i * E);
  });
}

// ids: [N]; dy: [N, E] -> d_params: [V, E], zero but for the rows of ids,
// where dy's rows are added in the order of ids (a duplicate id sums its rows
// in that order). Threads split the E columns, so each element's sum keeps
// that order whatever the thread count.
template <typename T, typename Id>
void embedding_lookup_backward(Index N, Index V, Index E, const Id* ids, const T* dy, T* d_params) {
  constexpr Index kColumns = 64;
  const Index blocks = (E + kColumns - 1) / kColumns;
  parallel_for(blocks, blocks > 1 && N * E >= 65536, [&](Index block) {
    const Index c0 = block * kColumns, c1 = std::min(E, c0 + kColumns);
    for (Index v = 0; v < V; ++v) std::fill(d_params + v * E + c0, d_params + v * E + c1, T(0));
    for (Index i = 0; i < N; ++i) {
      T* d = d_params + static_cast<Index>(ids[i]) * E;
      const T* g = dy + i * E;
      for (Index c = c0; c < c1; ++c) d[c] += g[c];
    }
  });
}

// ---- the last valid output of a sequence ------------------------------------------
// outputs: [rows, H] in the layout of `seq`; lengths: [B] or null (all T)
//   -> last: [B, H] = outputs[len_b - 1, b], zeros for a row of length 0
template <typename T>
void last_output_forward(const SeqLayout& seq, Index H, const T* outputs, const int32_t* lengths, T* last) {
  parallel_for(seq.B, worth_parallel(seq.B, H), [&](Index b) {
    const Index len = lengths != nullptr ? lengths[b] : seq.T;
    T* dst = last + b * H;
    if (len == 0)
      std::fill(dst, dst + H, T(0));
    else
      std::copy_n(outputs + seq.row(len - 1, b) * H, H, dst);
  });
}

// d_last: [B, H] -> d_outputs: [rows, H], d_last's row b at step len_b - 1
// and zeros elsewhere (a row of length 0 gets none of it)
template <typename T>
void last_output_backward(const SeqLayout& seq, Index H, const T* d_last, const int32_t* lengths, T* d_outputs) {
  parallel_for(seq.B, worth_parallel(seq.B, seq.T * H), [&](Index b) {
    const Index len = lengths != nullptr ? lengths[b] : seq.T;
    for (Index t = 0; t < seq.T; ++t) {
      T* dst = d_outputs + seq.row(t, b) * H;
      if (t == len - 1)
        std::copy_n(d_last + b * H, H, dst);
      else
        std::fill(dst, dst + H, T(0));
    }
  });
}

}  // namespace rnnkit
