// Vectorised elementwise math on one batch row at a time, with results that
// do not depend on where the row lives in memory.
//
// Eigen vectorises an expression over an unaligned buffer by peeling a scalar
// prologue up to the first aligned address, so which elements take the SIMD
// path would depend on the row's address — and a row's address differs
// between a single step and a whole sequence, or batch row 0 and row 1. The
// kernels therefore copy each row's operands into aligned, zero-padded
// scratch slots whose width is a whole number of SIMD packets: every element
// then goes through the same packet code, and results depend only on values.
#pragma once

#include "rnnkit/common.hpp"

#include <vector>

namespace rnnkit {

template <typename T>
using ArrayX = Eigen::Array<T, Eigen::Dynamic, 1>;
template <typename T>
using Slot = Eigen::Map<ArrayX<T>, Eigen::AlignedMax>;

// `count` aligned slots of `width` elements (padded to whole packets), owned
// by one thread for the duration of one kernel call.
template <typename T>
class RowScratch {
 public:
  RowScratch(Index width, int count)
      : width_(width), padded_(pad(width)), buffer_(ArrayX<T>::Zero(padded_ * count)) {}

  Slot<T> slot(int i) { return Slot<T>(buffer_.data() + i * padded_, padded_); }

  // slot i <- src[0, width); the padding keeps whatever it held (finite)
  Slot<T> load(int i, const T* src) {
    std::copy_n(src, width_, buffer_.data() + i * padded_);
    return slot(i);
  }
  void store(int i, T* dst) const { std::copy_n(buffer_.data() + i * padded_, width_, dst); }

 private:
  static Index pad(Index width) {
    const Index unit = EIGEN_MAX_ALIGN_BYTES / sizeof(T) > 0 ? EIGEN_MAX_ALIGN_BYTES / sizeof(T) : 1;
    return (width + unit - 1) / unit * unit;
  }
  Index width_, padded_;
  ArrayX<T> buffer_;
};

// A row can also be walked in fixed-size chunks of two packets held in
// aligned local arrays (registers, in practice): the same packet code for
// every element wherever the row lives, without copying whole rows to
// scratch. The last chunk of a row whose width is not a multiple is
// zero-padded on load and stored partially.
template <typename T>
constexpr Index kChunk = 2 * (EIGEN_MAX_ALIGN_BYTES / sizeof(T) > 0 ? EIGEN_MAX_ALIGN_BYTES / sizeof(T) : 1);
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

// a = act(a), in place (a: a Slot or a Chunk).
template <typename A>
void activate_inplace(A&& a, Activation act) {
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

// One RowScratch per thread, made once per kernel call (never per step).
template <typename T>
class ThreadScratch {
 public:
  ThreadScratch(Index width, int count) {
    const int n = get_num_threads();
    rows_.reserve(n);
    for (int i = 0; i < n; ++i) rows_.emplace_back(width, count);
  }
  RowScratch<T>& mine() {
#ifdef _OPENMP
    return rows_[omp_get_thread_num()];
#else
    return rows_[0];
#endif
  }
  std::vector<RowScratch<T>>& all() { return rows_; }

 private:
  std::vector<RowScratch<T>> rows_;
};

}  // namespace rnnkit
