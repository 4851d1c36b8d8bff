// Optimizer updates (TF1's training_ops) and clip_by_global_norm, each over a
// whole list of parameters in one call. Every update is elementwise, so the
// result does not depend on the thread count; the global norm is accumulated
// in double in list order, so it is deterministic too.
#pragma once

#include "rnnkit/rowmath.hpp"

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

namespace rnnkit {

// One variable and what updates it; every array has `size` elements.
template <typename T>
struct AdamParam {
  T* var = nullptr;
  T* m = nullptr;  // first-moment slot
  T* v = nullptr;  // second-moment slot
  const T* grad = nullptr;
  Index size = 0;
};

template <typename T>
struct SgdParam {
  T* var = nullptr;
  const T* grad = nullptr;
  Index size = 0;
};

struct AdamHyper {
  double learning_rate = 0.001, beta1 = 0.9, beta2 = 0.999, epsilon = 1e-8;
};

// lr_t = lr · sqrt(1 - beta2^t) / (1 - beta1^t) for step t = 1, 2, ...
// (computed in double, then rounded once to the variables' type).
inline double adam_step_size(const AdamHyper& h, int64_t step) {
  const double t = static_cast<double>(step);
  return h.learning_rate * std::sqrt(1.0 - std::pow(h.beta2, t)) / (1.0 - std::pow(h.beta1, t));
}

// Elements per work item of an update (a multiple of every chunk width).
constexpr Index kUpdateBlock = 4096;

// TF's ApplyAdam (use_nesterov=False), in its operation order:
//   m += (g - m)(1 - beta1); v += (g² - v)(1 - beta2); var -= (m · lr_t) / (sqrt(v) + epsilon)
// epsilon is the "epsilon hat" of the paper: it is not bias-corrected.
template <typename T>
void adam_update(const std::vector<AdamParam<T>>& params, const AdamHyper& h, int64_t step) {
  const T lr_t = static_cast<T>(adam_step_size(h, step));
  const T one_minus_beta1 = T(1) - static_cast<T>(h.beta1);
  const T one_minus_beta2 = T(1) - static_cast<T>(h.beta2);
  const T epsilon = static_cast<T>(h.epsilon);
  for (const AdamParam<T>& p : params) {
    // Fixed blocks of register chunks (see rowmath.hpp): every element takes
    // the same packet code whatever its address and the thread count.
    const Index blocks = (p.size + kUpdateBlock - 1) / kUpdateBlock;
    parallel_for(blocks, worth_parallel(p.size, 1), [&](Index blk) {
      const Index end = std::min(p.size, (blk + 1) * kUpdateBlock);
      for (Index k0 = blk * kUpdateBlock; k0 < end; k0 += kChunk<T>) {
        const RowChunk<T> ch(k0, end);
        const Chunk<T> g = ch.load(p.grad);
        Chunk<T> m = ch.load(p.m), v = ch.load(p.v), var = ch.load(p.var);
        m += (g - m) * one_minus_beta1;
        v += (g * g - v) * one_minus_beta2;
        var -= (m * lr_t) / (v.sqrt() + epsilon);
        ch.store(m, p.m);
        ch.store(v, p.v);
        ch.store(var, p.var);
      }
    });
  }
}

// TF's ApplyGradientDescent: var -= g · lr.
template <typename T>
void sgd_update(const std::vector<SgdParam<T>>& params, double learning_rate) {
  const T lr = static_cast<T>(learning_rate);
  for (const SgdParam<T>& p : params) {
    parallel_for(p.size, worth_parallel(p.size, 1), [&](Index i) { p.var[i] -= p.grad[i] * lr; });
  }
}

template <typename T>
struct ClipParam {
  const T* in = nullptr;
  T* out = nullptr;
  Index size = 0;
};

// gn = sqrt(Σ‖t‖²) over every tensor, accumulated in double in list order.
template <typename T>
double global_norm(const std::vector<ClipParam<T>>& tensors) {
  double sum = 0.0;
  for (const ClipParam<T>& p : tensors)
    sum += Eigen::Map<const Eigen::Array<T, Eigen::Dynamic, 1>>(p.in, p.size).template cast<double>().square().sum();
  return std::sqrt(sum);
}

// out = in · clip_norm / max(gn, clip_norm) for every tensor; returns gn (the
// unclipped norm) in T. A non-finite gn makes every output entry NaN (TF's rule).
template <typename T>
T clip_by_global_norm(const std::vector<ClipParam<T>>& tensors, double clip_norm) {
  const double gn = global_norm(tensors);
  const T norm = static_cast<T>(gn);
  const bool finite = std::isfinite(norm);
  const T scale = finite ? static_cast<T>(clip_norm / std::max(gn, clip_norm)) : std::numeric_limits<T>::quiet_NaN();
  for (const ClipParam<T>& p : tensors) {
    parallel_for(p.size, worth_parallel(p.size, 1), [&](Index i) { p.out[i] = finite ? p.in[i] * scale : scale; });
  }
  return norm;
}

}  // namespace rnnkit
