// Matrix products of the kernels, threaded by rnnkit rather than by Eigen.
//
// Eigen's own parallel GEMM picks a different k-blocking when it runs on
// more than one thread, so its sums round differently with 1 and with 2
// threads. rnnkit promises bit-identical results across thread counts, so
// Eigen is built with EIGEN_DONT_PARALLELIZE and every product goes through
// gemm() below: the output is cut into blocks whose boundaries depend only
// on the shapes, each block is one single-threaded Eigen product (whose
// k-blocking depends only on k), and OpenMP hands whole blocks to threads.
// With AVX-512, float products large enough to pay for packing B go to
// packed_gemm.hpp instead (also thread-count independent), and the
// recurrent weights are packed once per layer call (PackedRhs).
#pragma once

#include "rnnkit/common.hpp"
#include "rnnkit/packed_gemm.hpp"

#include <type_traits>

namespace rnnkit {

namespace detail {
// Blocks of at least 64 rows/columns (a multiple of every SIMD width), at most
// 8 of them. Products under 4M multiply-adds stay whole: splitting them costs
// more than it saves (benchmarks/NOTES.md, Threads).
inline Index gemm_block(Index m, Index n, Index k, Index split_extent) {
  if (m * n * k < (Index(1) << 22) || split_extent < 128) return split_extent;
  const Index target = (split_extent + 7) / 8;
  return std::max<Index>(64, (target + 15) / 16 * 16);
}

// Eigen evaluates a product with rows + columns + depth under this
// (EIGEN_GEMM_TO_COEFFBASED_THRESHOLD) coefficient by coefficient, and which
// coefficients it vectorises depends on C's address: the same product would
// round differently in two buffers. small_product keeps such products to one
// order, k ascending, wherever C lies.
constexpr Index kCoefficientProduct = 20;

// C (+)= A · B, each coefficient a sum over k in order (then added to C).
template <typename Dst, typename Lhs, typename Rhs>
void small_product(Dst& C, const Lhs& A, const Rhs& B, bool accumulate) {
  using T = typename std::decay_t<Dst>::Scalar;
  for (Index i = 0; i < C.rows(); ++i)
    for (Index j = 0; j < C.cols(); ++j) {
      T sum = T(0);
      for (Index p = 0; p < A.cols(); ++p) sum += A(i, p) * B(p, j);
      C(i, j) = accumulate ? C(i, j) + sum : sum;
    }
}

}  // namespace detail

template <typename X>
constexpr bool direct_access() {
  return (Eigen::internal::traits<std::decay_t<X>>::Flags & Eigen::DirectAccessBit) != 0;
}

// Splitting a packed product over threads pays off from about 1M
// multiply-adds, ten times the cost of waking the threads (NOTES.md, Threads).
inline bool gemm_worth_parallel(Index m, Index n, Index k) { return m * n * k >= (Index(1) << 20); }

// A product with a few rows is bound by reading B: splitting its columns over
// threads pays off once B (k·n floats) outgrows about half of one core's L2.
inline bool few_rows_worth_parallel(Index n, Index k) { return n * k >= (Index(1) << 17); }

// Where a PackedRhs may pack its panels instead of a buffer of its own.
#if RNNKIT_PACKED_GEMM
using PackBuffer = packed::AlignedBuffer;
#else
struct PackBuffer {};  // nothing is packed without the AVX-512 kernel
#endif

// The right-hand side of many products within one layer call (the recurrent
// weights, used once per time step): packed once for the AVX-512 kernel when
// enough rows will be multiplied by it; otherwise a view of B, which must
// then outlive this object (no copy: a single step must not copy W_h).
template <typename T>
class PackedRhs {
 public:
  using View = Eigen::Map<const Mat<T>, 0, Eigen::Stride<Eigen::Dynamic, Eigen::Dynamic>>;

  // rows_to_come: how many rows of A will be multiplied by B in all.
  template <typename Rhs>
  PackedRhs(const Rhs& B, Index rows_to_come) : PackedRhs(B, rows_to_come, nullptr) {}

  // Packs into `buffer` (grown as needed) instead of a buffer of its own;
  // the caller keeps `buffer` alive and unused by others while this lives.
  template <typename Rhs>
  PackedRhs(const Rhs& B, Index rows_to_come, PackBuffer* buffer)
      : k_(B.rows()), n_(B.cols()), view_(B.data(), k_, n_, Eigen::Stride<Eigen::Dynamic, Eigen::Dynamic>(B.rowStride(), B.colStride())) {
    static_assert(direct_access<Rhs>(), "PackedRhs needs a matrix in memory");
#if RNNKIT_PACKED_GEMM
    if constexpr (std::is_same_v<T, float>) {
      if (rows_to_come >= 16 && k_ > 0 && n_ > 0) {
        packed::AlignedBuffer& out = buffer != nullptr ? *buffer : own_panels_;
        packed::pack(B.data(), B.rowStride(), B.colStride(), k_, n_, out);
        panels_ = out.data;
        is_packed_ = true;
      }
    }
#endif
    (void)rows_to_come;
    (void)buffer;
  }
  Index rows() const { return k_; }
  Index cols() const { return n_; }
  bool is_packed() const { return is_packed_; }
  const View& view() const { return view_; }
#if RNNKIT_PACKED_GEMM
  const float* panels() const { return panels_; }
#endif

 private:
  Index k_, n_;
  View view_;
  bool is_packed_ = false;
#if RNNKIT_PACKED_GEMM
  packed::AlignedBuffer own_panels_;
  const float* panels_ = nullptr;
#endif
};

template <typename Dst, typename Lhs, typename Rhs>
void gemm(Dst&& C, const Lhs& A, const Rhs& B, bool accumulate = false);

// C (+)= A · B for a B packed beforehand.
template <typename T, typename Dst, typename Lhs>
void gemm(Dst&& C, const Lhs& A, const PackedRhs<T>& B, bool accumulate = false) {
#if RNNKIT_PACKED_GEMM
  if constexpr (std::is_same_v<T, float> && direct_access<Dst>() && direct_access<Lhs>()) {
    const Index m = C.rows(), n = C.cols(), k = A.cols();
    if (B.is_packed() && C.colStride() == 1) {
      if (m == 0 || n == 0) return;
      if (k == 0) {
        if (!accumulate) C.setZero();
        return;
      }
      packed::multiply(C.data(), C.rowStride(), m, n, k, A.data(), A.rowStride(), A.colStride(), B.panels(),
                       accumulate, gemm_worth_parallel(m, n, k));
      return;
    }
  }
#endif
  gemm(C, A, B.view(), accumulate);
}

#if RNNKIT_PACKED_GEMM
namespace detail {
// Whether a float product C = A · B (C with m >= 32 rows, not few_rows) goes
// to the packed kernel in slabs of B (for_each_packed_slab) rather than to Eigen.
template <typename Dst, typename Lhs>
bool packs_in_slabs(const Dst& C, const Lhs& A) {
  return C.rows() >= 32 && C.cols() > 0 && A.cols() > 0 && C.colStride() == 1;
}

// B [k, n] in slabs of k of about 4 MiB, each packed into this thread's
// one-off buffer (see packed::thread_buffer) for rows_to_come rows of A:
// body(packed slab, k0). A one-off product's B is all the gate gradients
// (39 MiB for a GRU with H = 512 over 6400 rows), and a packed copy that
// large would be fresh pages from the OS at every call. Slabs add onto C in
// k order, like the k blocks inside a product.
template <typename Rhs, typename F>
void for_each_packed_slab(const Rhs& B, Index rows_to_come, F&& body) {
  using View = typename PackedRhs<float>::View;  // one type for every slab: no nested Blocks
  using Stride = Eigen::Stride<Eigen::Dynamic, Eigen::Dynamic>;
  const Index k = B.rows(), n = B.cols();
  const Index slab = std::max<Index>(256, (Index(1) << 20) / n / 256 * 256);
  for (Index k0 = 0; k0 < k; k0 += slab) {
    const View B_slab(B.data() + k0 * B.rowStride(), std::min(slab, k - k0), n, Stride(B.rowStride(), B.colStride()));
    body(PackedRhs<float>(B_slab, rows_to_come, &packed::thread_buffer(packed::Scratch::OneOffRhs)), k0);
  }
}

// Columns [k0, k0 + depth) of A, the part that multiplies a slab of B.
template <typename Lhs>
typename PackedRhs<float>::View slab_of(const Lhs& A, Index k0, Index depth) {
  using Stride = Eigen::Stride<Eigen::Dynamic, Eigen::Dynamic>;
  return typename PackedRhs<float>::View(A.data() + k0 * A.colStride(), A.rows(), depth,
                                         Stride(A.rowStride(), A.colStride()));
}
}  // namespace detail
#endif

// C = A · B (accumulate = false) or C += A · B. C, A and B are Eigen
// expressions (maps, blocks, transposes); C must not alias A or B.
template <typename Dst, typename Lhs, typename Rhs>
void gemm(Dst&& C, const Lhs& A, const Rhs& B, bool accumulate) {
  const Index m = C.rows(), n = C.cols(), k = A.cols();
  if (m == 0 || n == 0) return;
  if (k == 0) {
    if (!accumulate) C.setZero();
    return;
  }
#if RNNKIT_PACKED_GEMM
  using T = typename std::decay_t<Dst>::Scalar;
  if constexpr (std::is_same_v<T, float> && direct_access<Dst>() && direct_access<Lhs>() &&
                direct_access<Rhs>()) {
    if (m <= packed::kFewRows && C.colStride() == 1 && B.colStride() == 1) {
      packed::multiply_few_rows(C.data(), C.rowStride(), m, n, k, A.data(), A.rowStride(), A.colStride(), B.data(),
                                B.rowStride(), accumulate, few_rows_worth_parallel(n, k));
      return;
    }
    // packing B (k·n) pays off once A has a few dozen rows
    if (detail::packs_in_slabs(C, A)) {
      detail::for_each_packed_slab(B, m, [&](const PackedRhs<float>& slab, Index k0) {
        gemm(C, detail::slab_of(A, k0, slab.rows()), slab, accumulate || k0 > 0);
      });
      return;
    }
  }
#endif
  if (m + n + k < detail::kCoefficientProduct) {
    detail::small_product(C, A, B, accumulate);
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

// C1 = A1 · B and C2 = A2 · B. Where both go to the packed kernel in slabs,
// each slab of B is packed once for the two: a recurrent kernel's gradient
// is [x, state]^T · dZ in two halves, and each half packed all of dZ (the
// gate gradients of every step) again. The same slabs and tiles as two
// gemm() calls, so the same bits.
template <typename Dst1, typename Lhs1, typename Dst2, typename Lhs2, typename Rhs>
void gemm_shared_rhs(Dst1&& C1, const Lhs1& A1, Dst2&& C2, const Lhs2& A2, const Rhs& B) {
#if RNNKIT_PACKED_GEMM
  using T = typename std::decay_t<Dst1>::Scalar;
  if constexpr (std::is_same_v<T, float> && direct_access<Dst1>() && direct_access<Lhs1>() &&
                direct_access<Dst2>() && direct_access<Lhs2>() && direct_access<Rhs>()) {
    if (detail::packs_in_slabs(C1, A1) && detail::packs_in_slabs(C2, A2)) {
      detail::for_each_packed_slab(B, C1.rows() + C2.rows(), [&](const PackedRhs<float>& slab, Index k0) {
        gemm(C1, detail::slab_of(A1, k0, slab.rows()), slab, k0 > 0);
        gemm(C2, detail::slab_of(A2, k0, slab.rows()), slab, k0 > 0);
      });
      return;
    }
  }
#endif
  gemm(C1, A1, B);
  gemm(C2, A2, B);
}

}  // namespace rnnkit
