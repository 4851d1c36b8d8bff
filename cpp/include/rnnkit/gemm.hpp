// Matrix products of the kernels, threaded by rnnkit rather than by Eigen.
//
// Eigen's own parallel GEMM picks a different k-blocking when it runs on
// more than one thread, so its sums round differently with 1 and with 2
// threads. rnnkit promises bit-identical results across thread counts, so
// Eigen is built with EIGEN_DONT_PARALLELIZE and every product goes through
// gemm() below: the output is cut into blocks whose boundaries depend only
// on the shapes, each block is one single-threaded Eigen product (whose
// k-blocking depends only on k), and OpenMP hands whole blocks to threads.
#pragma once

#include "rnnkit/common.hpp"

namespace rnnkit {

namespace detail {
// Blocks of at least 64 rows/columns (a multiple of every SIMD width), at most
// 8 of them. Products under 4M multiply-adds (~0.1 ms on one core) stay whole:
// a parallel region per time step costs microseconds on an idle machine but
// a scheduler time slice when the cores are shared, so only work that
// amortises that risk is split.
inline Index gemm_block(Index m, Index n, Index k, Index split_extent) {
  if (m * n * k < (Index(1) << 22) || split_extent < 128) return split_extent;
  const Index target = (split_extent + 7) / 8;
  return std::max<Index>(64, (target + 15) / 16 * 16);
}
}  // namespace detail

// C = A · B (accumulate = false) or C += A · B. C, A and B are Eigen
// expressions (maps, blocks, transposes); C must not alias A or B.
template <typename Dst, typename Lhs, typename Rhs>
void gemm(Dst&& C, const Lhs& A, const Rhs& B, bool accumulate = false) {
  const Index m = C.rows(), n = C.cols(), k = A.cols();
  if (m == 0 || n == 0) return;
  if (k == 0) {
    if (!accumulate) C.setZero();
    return;
  }
  const bool split_rows = m >= n;
  const Index extent = split_rows ? m : n;
  const Index block = detail::gemm_block(m, n, k, extent);
  const Index blocks = (extent + block - 1) / block;
  parallel_for(blocks, blocks > 1, [&](Index i) {
    const Index start = i * block, size = std::min(block, extent - start);
    if (split_rows) {
      if (accumulate)
        C.middleRows(start, size).noalias() += A.middleRows(start, size) * B;
      else
        C.middleRows(start, size).noalias() = A.middleRows(start, size) * B;
    } else {
      if (accumulate)
        C.middleCols(start, size).noalias() += A * B.middleCols(start, size);
      else
        C.middleCols(start, size).noalias() = A * B.middleCols(start, size);
    }
  });
}

}  // namespace rnnkit
