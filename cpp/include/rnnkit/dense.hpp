// Dense layer (tf.layers.dense with no activation): y = x · kernel + bias on
// the last axis. Inputs of any rank are seen as N rows of depth D (N = the
// product of the leading axes), so each direction is a single GEMM.
// Letters: N rows, D input depth, U units.
#pragma once

#include "rnnkit/gemm.hpp"

namespace rnnkit {

// x: [N, D]; kernel: [D, U]; bias: [U] -> y: [N, U]
template <typename T>
void dense_forward(Index N, Index D, Index U, const T* x, const T* kernel, const T* bias, T* y) {
  MatMap<T> out(y, N, U);
  gemm(out, CMatMap<T>(x, N, D), CMatMap<T>(kernel, D, U));
  out.rowwise() += CRowMap<T>(bias, U);
}

// x: [N, D]; kernel: [D, U]; dy: [N, U]
//   -> dx: [N, D] (may be null); d_kernel: [D, U]; d_bias: [U]
template <typename T>
void dense_backward(Index N, Index D, Index U, const T* x, const T* kernel, const T* dy, T* dx,
                    T* d_kernel, T* d_bias) {
  CMatMap<T> d_out(dy, N, U);
  gemm(MatMap<T>(d_kernel, D, U), CMatMap<T>(x, N, D).transpose(), d_out);
  column_sums(dy, N, U, d_bias);
  if (dx != nullptr) gemm(MatMap<T>(dx, N, D), d_out, CMatMap<T>(kernel, D, U).transpose());
}

}  // namespace rnnkit
