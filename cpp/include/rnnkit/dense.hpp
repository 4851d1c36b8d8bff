// Dense layer (tf.layers.dense with no activation): y = x · kernel + bias on
// the last axis. Inputs of any rank are seen as N rows of depth D (N = the
// product of the leading axes), so each direction is a single GEMM.
// Letters: N rows, D input depth, U units.
#pragma once

#include "rnnkit/common.hpp"

namespace rnnkit {

// x: [N, D]; kernel: [D, U]; bias: [U] -> y: [N, U]
template <typename T>
void dense_forward(Index N, Index D, Index U, const T* x, const T* kernel, const T* bias, T* y) {
  MatMap<T> out(y, N, U);
  if (D > 0) {
    out.noalias() = CMatMap<T>(x, N, D) * CMatMap<T>(kernel, D, U);
  } else {
    out.setZero();
  }
  out.rowwise() += CRowMap<T>(bias, U);
}

// x: [N, D]; kernel: [D, U]; dy: [N, U]
//   -> dx: [N, D] (may be null); d_kernel: [D, U]; d_bias: [U]
template <typename T>
void dense_backward(Index N, Index D, Index U, const T* x, const T* kernel, const T* dy, T* dx,
                    T* d_kernel, T* d_bias) {
  CMatMap<T> d_out(dy, N, U);
  MatMap<T> dk(d_kernel, D, U);
  // An empty inner dimension (N == 0) is a zero gradient, not a GEMM.
  if (N > 0) {
    dk.noalias() = CMatMap<T>(x, N, D).transpose() * d_out;
  } else {
    dk.setZero();
  }
  RowMap<T>(d_bias, U) = d_out.colwise().sum();
  if (dx != nullptr) {
    MatMap<T> d_in(dx, N, D);
    if (U > 0) {
      d_in.noalias() = d_out * CMatMap<T>(kernel, D, U).transpose();
    } else {
      d_in.setZero();
    }
  }
}

}  // namespace rnnkit
