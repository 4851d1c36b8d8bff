// Vectorised elementwise math on one batch row at a time, with results that
// do not depend on where the row lives in memory.
//
// Eigen vectorises an expression over an unaligned buffer by peeling a scalar
// prologue up to the first aligned address, so which elements take the SIMD
// path would depend on the row's address — and a row's address differs
// between a single step and a whole sequence, or batch row 0 and row 1. The
// kernels therefore walk each row in fixed-size chunks of two packets held in
// aligned local arrays (registers, in practice): every element goes through
// the same packet code wherever the row lives, and nothing is copied to
// scratch. The last chunk of a row whose width is not a multiple is
// zero-padded on load and stored partially.
#pragma once

#include "rnnkit/common.hpp"

#include <utility>

namespace rnnkit {

// Elements of T in the widest aligned packet Eigen may use.
template <typename T>
constexpr Index kAligned = EIGEN_MAX_ALIGN_BYTES / sizeof(T) > 0 ? EIGEN_MAX_ALIGN_BYTES / sizeof(T) : 1;

template <typename T>
constexpr Index kChunk = 2 * kAligned<T>;
template <typename T>
using Chunk = Eigen::Array<T, kChunk<T>, 1>;

// Elements [k0, k0 + n) of rows of width `width`, n = kChunk except at the end.
template <typename T>
struct RowChunk {
  Index k0, n;
  RowChunk(Index k0_, Index width) : k0(k0_), n(std::min(kChunk<T>, width - k0_)) {}
  Chunk<T> load(const T* row) const {
    Chunk<T> v;
    if (n == kChunk<T>) {
      v = Eigen::Map<const Chunk<T>>(row + k0);
    } else {
      v.setZero();
      for (Index k = 0; k < n; ++k) v[k] = row[k0 + k];
    }
    return v;
  }
  void store(const Chunk<T>& v, T* row) const {
    if (n == kChunk<T>) {
      Eigen::Map<Chunk<T>>(row + k0) = v;
    } else {
      for (Index k = 0; k < n; ++k) row[k0 + k] = v[k];
    }
  }
};

// The gradient of a step's new state h' (a chunk of one row): what reaches
// it as the next step's state (through the state dropout mask, when there is
// one) plus what reaches it as this step's output.
template <typename T>
Chunk<T> step_state_grad(const RowChunk<T>& at, const T* d_state, const T* mask, const T* d_output) {
  Chunk<T> g = at.load(d_state);
  if (mask) g *= at.load(mask);
  return g + at.load(d_output);
}

// a = act(a), in place.
template <typename A>
[[gnu::always_inline]] inline void activate_inplace(A&& a, Activation act) {
  switch (act) {
    case Activation::Tanh: a = a.tanh(); break;
    case Activation::Relu: a = a.max(typename std::decay_t<A>::Scalar(0)); break;
    case Activation::Sigmoid: a = a.logistic(); break;
    case Activation::Identity: break;
  }
}

// dst = d act(x) / dx, written through y = act(x).
template <typename Dst, typename Y>
void activation_grad(Dst&& dst, const Y& y, Activation act) {
  using T = typename std::decay_t<Y>::Scalar;
  switch (act) {
    case Activation::Tanh: dst = T(1) - y.square(); break;
    case Activation::Relu: dst = (y > T(0)).template cast<T>(); break;
    case Activation::Sigmoid: dst = y * (T(1) - y); break;
    case Activation::Identity: dst.setOnes(); break;
  }
}

// The max-shifted softmax of one row x [C], as TF's kernel: returns the max
// m and s = Σ exp(x - m); writes p = exp(x - m) / s when p is not null. exp
// runs in register chunks, so a row gives the same bits wherever it lives.
// Every softmax and cross-entropy kernel goes through here.
template <typename T>
std::pair<T, T> softmax_row(const T* x, Index C, T* p) {
  T m = x[0];
  Index k = 0;
  if (C >= kChunk<T>) {  // whole packets, then the leftovers (a max is exact in any order)
    Chunk<T> packet_max = Eigen::Map<const Chunk<T>>(x);
    for (k = kChunk<T>; k + kChunk<T> <= C; k += kChunk<T>)
      packet_max = packet_max.max(Eigen::Map<const Chunk<T>>(x + k));
    m = packet_max.maxCoeff();
  }
  for (; k < C; ++k) m = std::max(m, x[k]);
  T s = T(0);
  for (Index k0 = 0; k0 < C; k0 += kChunk<T>) {
    const RowChunk<T> ch(k0, C);
    Chunk<T> e = (ch.load(x) - m).exp();
    if (ch.n < kChunk<T>) e.tail(kChunk<T> - ch.n).setZero();  // the padding
    s += e.sum();
    if (p != nullptr) ch.store(e, p);
  }
  if (p != nullptr) {
    const T inv = T(1) / s;
    for (Index c = 0; c < C; ++c) p[c] *= inv;
  }
  return {m, s};
}

}  // namespace rnnkit
