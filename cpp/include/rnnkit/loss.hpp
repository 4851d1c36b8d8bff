// sequence_loss (tf.contrib.seq2seq, TF 1.15): weighted softmax cross-entropy
// over [B, T] positions, reduced over batch and/or time.
//   ce[b,t] = logsumexp(logits[b,t]) - logits[b,t,targets[b,t]];  c = ce ⊙ w
//   loss[o] = div_no_nan(Σ_{(b,t) -> o} c, denom[o])
// where denom is Σw ("average_across_*") or the count of non-zero weights
// ("sum_over_*") over the reduced axes, and no division when nothing is
// reduced. sequence_loss_forward / sequence_loss_backward are a pair; forward
// optionally keeps the softmax probabilities that backward needs.
// Letters: B batch, T time steps, C classes; "rows" are the B*T positions in
// batch-major order (row = b*T + t).
#pragma once

#include "rnnkit/rowmath.hpp"

#include <algorithm>
#include <limits>
#include <stdexcept>
#include <vector>

namespace rnnkit {

struct SequenceLossConfig {
  Index B = 0, T = 0, C = 0;
  bool reduce_batch = false;   // sum over axis 0
  bool reduce_time = false;    // sum over axis 1
  bool count_nonzero = false;  // denominator: count of w != 0 (sum_over_*) instead of Σw

  Index rows() const { return B * T; }
  // Size of the loss: 1 (scalar), B, T or B*T.
  Index out_size() const {
    if (reduce_batch && reduce_time) return 1;
    if (reduce_time) return B;
    if (reduce_batch) return T;
    return B * T;
  }
  // The loss entry that position (b, t) is reduced into.
  Index out_index(Index b, Index t) const {
    if (reduce_batch && reduce_time) return 0;
    if (reduce_time) return b;
    if (reduce_batch) return t;
    return b * T + t;
  }
  bool divides() const { return reduce_batch || reduce_time; }
};

// TF 1.15's branch structure, followed exactly:
//   avg_t & sum_t or avg_b & sum_b       -> error
//   avg_t & avg_b                        -> Σc / Σw                    (scalar)
//   sum_t & sum_b                        -> Σc / count(w != 0)         (scalar)
//   avg_t or avg_b (any sum_* ignored)   -> over axis 0 if avg_b else 1, / Σw
//   sum_t or sum_b                       -> over axis 0 if sum_b else 1, / count
//   none                                 -> c                          ([B, T])
// So average_across_timesteps with sum_over_batch gives [B] (the sum flag is
// dropped), and average_across_batch with sum_over_timesteps gives [T].
inline SequenceLossConfig sequence_loss_reduction(bool average_across_timesteps, bool average_across_batch,
                                                  bool sum_over_timesteps, bool sum_over_batch) {
  if (average_across_timesteps && sum_over_timesteps)
    throw std::invalid_argument(
        "average_across_timesteps and sum_over_timesteps cannot be set to True at same time.");
  if (average_across_batch && sum_over_batch)
    throw std::invalid_argument(
        "average_across_batch and sum_over_batch cannot be set to True at same time.");
  SequenceLossConfig cfg;
  if (average_across_timesteps && average_across_batch) {
    cfg.reduce_batch = cfg.reduce_time = true;
  } else if (sum_over_timesteps && sum_over_batch) {
    cfg.reduce_batch = cfg.reduce_time = true;
    cfg.count_nonzero = true;
  } else if (average_across_timesteps || average_across_batch) {
    (average_across_batch ? cfg.reduce_batch : cfg.reduce_time) = true;
  } else if (sum_over_timesteps || sum_over_batch) {
    (sum_over_batch ? cfg.reduce_batch : cfg.reduce_time) = true;
    cfg.count_nonzero = true;
  }
  return cfg;
}

// weights: [rows] -> denom: [out_size] (Σw or count of w != 0 per loss entry),
// accumulated in double in row order.
template <typename T>
std::vector<double> sequence_loss_denominators(const SequenceLossConfig& cfg, const T* weights) {
  std::vector<double> denom(static_cast<size_t>(cfg.out_size()), 0.0);
  for (Index b = 0; b < cfg.B; ++b)
    for (Index t = 0; t < cfg.T; ++t) {
      const T w = weights[b * cfg.T + t];
      denom[cfg.out_index(b, t)] += cfg.count_nonzero ? (w != T(0) ? 1.0 : 0.0) : static_cast<double>(w);
    }
  return denom;
}

// logits: [rows, C]; targets: [rows], each in [0, C) (checked by the caller);
// weights: [rows]
//   -> loss: [out_size]; probs: [rows, C] softmax, kept for backward (null: inference);
//      ce_ws: [rows] scratch
// Cross-entropy per row in T (max-shifted logsumexp, as TF's kernel); the
// reductions accumulate in double in a fixed order, so the result does not
// depend on the thread count.
template <typename T, typename Label>
void sequence_loss_forward(const SequenceLossConfig& cfg, const T* logits, const Label* targets,
                           const T* weights, T* loss, T* probs, T* ce_ws) {
  const Index rows = cfg.rows(), C = cfg.C;
  if (rows == 0) {  // every sum is empty: div_no_nan gives 0 (and the loops below would walk B or T)
    std::fill(loss, loss + cfg.out_size(), T(0));
    return;
  }
  parallel_for(rows, worth_parallel(rows, C), [&](Index r) {
    const T* x = logits + r * C;
    const auto [m, s] = softmax_row(x, C, probs != nullptr ? probs + r * C : nullptr);
    // weights multiply the cross-entropy in T, as TF's `crossent *= weights`
    ce_ws[r] = (std::log(s) - (x[targets[r]] - m)) * weights[r];
  });

  if (!cfg.divides()) {
    std::copy(ce_ws, ce_ws + rows, loss);
    return;
  }
  const std::vector<double> denom = sequence_loss_denominators(cfg, weights);
  std::vector<double> total(denom.size(), 0.0);
  for (Index b = 0; b < cfg.B; ++b)
    for (Index t = 0; t < cfg.T; ++t) total[cfg.out_index(b, t)] += static_cast<double>(ce_ws[b * cfg.T + t]);
  for (size_t o = 0; o < denom.size(); ++o)  // div_no_nan: a zero denominator gives 0
    loss[o] = denom[o] == 0.0 ? T(0) : static_cast<T>(total[o] / denom[o]);
}

// d_loss: [out_size]; targets, weights: [rows]; probs: [rows, C] from forward
//   -> d_logits: [rows, C] = div_no_nan(d_loss[o], denom[o]) · w · (softmax - onehot(target))
// A zero denominator gives a zero gradient (div_no_nan's gradient).
template <typename T, typename Label>
void sequence_loss_backward(const SequenceLossConfig& cfg, const Label* targets, const T* weights,
                            const T* probs, const T* d_loss, T* d_logits) {
  const Index rows = cfg.rows(), C = cfg.C;
  if (rows == 0) return;  // d_logits is empty
  std::vector<T> scale(static_cast<size_t>(cfg.out_size()));
  if (cfg.divides()) {
    const std::vector<double> denom = sequence_loss_denominators(cfg, weights);
    for (size_t o = 0; o < denom.size(); ++o)
      scale[o] = denom[o] == 0.0 ? T(0) : static_cast<T>(static_cast<double>(d_loss[o]) / denom[o]);
  } else {
    std::copy(d_loss, d_loss + rows, scale.begin());
  }
  parallel_for(rows, worth_parallel(rows, C), [&](Index r) {
    const T g = scale[cfg.out_index(r / cfg.T, r % cfg.T)] * weights[r];
    const T* p = probs + r * C;
    T* d = d_logits + r * C;
    const Index y = static_cast<Index>(targets[r]);
    for (Index k = 0; k < C; ++k) d[k] = g * (k == y ? p[k] - T(1) : p[k]);
  });
}

}  // namespace rnnkit
