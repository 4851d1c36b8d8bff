// GEMM and row sums whose rounding depends on the shapes alone, never on the
// thread count.
//
// Why not a plain Eigen product: Eigen's threaded GEMM picks its depth
// blocking (kc) from the number of threads (GeneralBlockPanelKernel.h,
// evaluateProductBlockingSizesHeuristic), so once the depth k passes about 300
// the order in which each dot product is summed, and with it the low bits,
// changes with set_num_threads. That hits every weight gradient (k = T*B rows)
// and every backward GEMM whose depth is a gate width. And colwise().sum()
// peels its vector loop by pointer alignment, so a bias gradient can differ
// between two runs of the same call.
#pragma once

#include "rnnkit/common.hpp"

#include <algorithm>

namespace rnnkit {

// Width of one single-threaded GEMM panel: fixed, so the split of the
// destination never depends on the thread count.
constexpr Index kGemmPanel = 64;

// Eigen threads a product only when m*n*k reaches 2 * kMinTaskSize
// (= 100000, Parallelizer.h); below that a product is single-threaded even
// outside a region, so not opening one there changes nothing but the cost.
inline bool gemm_worth_parallel(Index m, Index n, Index k) {
  return static_cast<double>(m) * static_cast<double>(n) * static_cast<double>(k) >= 32768.0;
}

// dst = lhs · rhs (Accumulate: dst += lhs · rhs).
// dst: [m, n]; lhs: [m, k]; rhs: [k, n]; any Eigen maps, blocks or transposes.
// The longer side of dst is cut into fixed kGemmPanel-wide panels, one
// single-threaded product each: inside an active OpenMP region Eigen never
// threads a product (parallelize_gemm checks omp_get_num_threads() > 1), so
// every panel is summed in the same order whichever thread computes it.
template <bool Accumulate = false, typename Dst, typename Lhs, typename Rhs>
void gemm(Dst&& dst, const Lhs& lhs, const Rhs& rhs) {
  const Index m = dst.rows(), n = dst.cols(), k = lhs.cols();
  if (m == 0 || n == 0) return;
  if (k == 0) {
    if constexpr (!Accumulate) dst.setZero();
    return;
  }
  const bool by_rows = m >= n;
  const Index extent = by_rows ? m : n;
  const Index panels = (extent + kGemmPanel - 1) / kGemmPanel;
#pragma omp parallel for schedule(static) if (get_num_threads() > 1 && gemm_worth_parallel(m, n, k))
  for (Index p = 0; p < panels; ++p) {
    const Index start = p * kGemmPanel, width = std::min(kGemmPanel, extent - start);
    if (by_rows) {
      if constexpr (Accumulate)
        dst.middleRows(start, width).noalias() += lhs.middleRows(start, width) * rhs;
      else
        dst.middleRows(start, width).noalias() = lhs.middleRows(start, width) * rhs;
    } else {
      if constexpr (Accumulate)
        dst.middleCols(start, width).noalias() += lhs * rhs.middleCols(start, width);
      else
        dst.middleCols(start, width).noalias() = lhs * rhs.middleCols(start, width);
    }
  }
}

// out[k] = Σ_r data[r, k], the rows added in order (a bias gradient).
// data: [rows, width]; out: [width]
template <typename T>
void sum_rows(const T* data, Index rows, Index width, T* out) {
  std::fill(out, out + width, T(0));
  for (Index r = 0; r < rows; ++r) {
    const T* row = data + r * width;
    for (Index k = 0; k < width; ++k) out[k] += row[k];
  }
}

}  // namespace rnnkit
