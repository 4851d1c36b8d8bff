// A float32 GEMM for AVX-512 with the right-hand side packed once.
//
// Eigen's GEMM reaches about half of OpenBLAS's AVX-512 speed here, and it
// repacks the weights on every call — once per time step in a recurrence.
// This kernel packs B [k, n] into 32-column panels (k × 32 floats each, zero
// padded) once per layer call and computes C tiles of 8 rows × 32 columns
// in 16 zmm accumulators, one FMA pass over k. Every element of C is summed
// over k in order, in one tile, so results depend neither on the blocking
// nor on the thread count. Without AVX-512 (or for double) gemm.hpp uses
// Eigen instead.
#pragma once

#include "rnnkit/common.hpp"

#include <vector>

#if defined(__AVX512F__)
#include <immintrin.h>
#define RNNKIT_PACKED_GEMM 1
#else
#define RNNKIT_PACKED_GEMM 0
#endif

namespace rnnkit {

#if RNNKIT_PACKED_GEMM
namespace packed {

constexpr Index kPanel = 32;  // columns per panel: two zmm registers
constexpr Index kTileRows = 8;

// 64-byte aligned float storage
struct AlignedBuffer {
  float* data = nullptr;
  Index size = 0;
  AlignedBuffer() = default;
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;
  AlignedBuffer(AlignedBuffer&& o) noexcept : data(o.data), size(o.size) { o.data = nullptr; }
  ~AlignedBuffer() { Eigen::internal::aligned_free(data); }
  void resize(Index n) {
    if (n <= size) return;
    Eigen::internal::aligned_free(data);
    data = static_cast<float*>(Eigen::internal::aligned_malloc(sizeof(float) * n));
    size = n;
  }
};

// B [k, n] with element (i, j) at b[i * rs + j * cs], packed as panels:
// panel p, row i at out[(p * k + i) * 32 + j'] for column 32p + j'.
inline void pack(const float* b, Index rs, Index cs, Index k, Index n, AlignedBuffer& out) {
  const Index panels = (n + kPanel - 1) / kPanel;
  out.resize(panels * k * kPanel);
  parallel_for(panels, panels * k * kPanel >= (Index(1) << 18), [&](Index p) {
    float* dst = out.data + p * k * kPanel;
    const Index j0 = p * kPanel, width = std::min(kPanel, n - j0);
    for (Index i = 0; i < k; ++i) {
      const float* src = b + i * rs + j0 * cs;
      float* row = dst + i * kPanel;
      if (cs == 1) {
        std::copy_n(src, width, row);
      } else {
        for (Index j = 0; j < width; ++j) row[j] = src[j * cs];
      }
      std::fill(row + width, row + kPanel, 0.f);
    }
  });
}

// C[rows ≤ 8, cols ≤ 32] (+)= A[rows, k] · panel. A's element (r, i) at
// a[r * ars + i * acs]; C's row r at c + r * ldc.
template <int Rows>
inline void tile(const float* a, Index ars, Index acs, const float* panel, Index k, float* c, Index ldc,
                 Index cols, bool accumulate) {
  const __mmask16 m0 = cols >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << cols) - 1);
  const __mmask16 m1 = cols >= 32 ? __mmask16(0xFFFF) : cols > 16 ? __mmask16((1u << (cols - 16)) - 1) : __mmask16(0);
  __m512 acc0[Rows], acc1[Rows];
  for (int r = 0; r < Rows; ++r) {
    if (accumulate) {
      acc0[r] = _mm512_maskz_loadu_ps(m0, c + r * ldc);
      acc1[r] = _mm512_maskz_loadu_ps(m1, c + r * ldc + 16);
    } else {
      acc0[r] = _mm512_setzero_ps();
      acc1[r] = _mm512_setzero_ps();
    }
  }
  for (Index i = 0; i < k; ++i) {
    const __m512 b0 = _mm512_load_ps(panel + i * kPanel);
    const __m512 b1 = _mm512_load_ps(panel + i * kPanel + 16);
    const float* ai = a + i * acs;
    for (int r = 0; r < Rows; ++r) {
      const __m512 av = _mm512_set1_ps(ai[r * ars]);
      acc0[r] = _mm512_fmadd_ps(av, b0, acc0[r]);
      acc1[r] = _mm512_fmadd_ps(av, b1, acc1[r]);
    }
  }
  for (int r = 0; r < Rows; ++r) {
    _mm512_mask_storeu_ps(c + r * ldc, m0, acc0[r]);
    _mm512_mask_storeu_ps(c + r * ldc + 16, m1, acc1[r]);
  }
}

inline void tile_rows(Index rows, const float* a, Index ars, Index acs, const float* panel, Index k, float* c,
                      Index ldc, Index cols, bool accumulate) {
  switch (rows) {
    case 8: tile<8>(a, ars, acs, panel, k, c, ldc, cols, accumulate); break;
    case 7: tile<7>(a, ars, acs, panel, k, c, ldc, cols, accumulate); break;
    case 6: tile<6>(a, ars, acs, panel, k, c, ldc, cols, accumulate); break;
    case 5: tile<5>(a, ars, acs, panel, k, c, ldc, cols, accumulate); break;
    case 4: tile<4>(a, ars, acs, panel, k, c, ldc, cols, accumulate); break;
    case 3: tile<3>(a, ars, acs, panel, k, c, ldc, cols, accumulate); break;
    case 2: tile<2>(a, ars, acs, panel, k, c, ldc, cols, accumulate); break;
    default: tile<1>(a, ars, acs, panel, k, c, ldc, cols, accumulate); break;
  }
}

// C [m, n] (row stride ldc, unit column stride) (+)= A [m, k] · packed B [k, n].
// Threads take whole panels; rows go in chunks that keep A's chunk in cache.
inline void multiply(float* c, Index ldc, Index m, Index n, Index k, const float* a, Index ars, Index acs,
                     const float* packed_b, bool accumulate, bool parallel) {
  const Index panels = (n + kPanel - 1) / kPanel;
  constexpr Index kChunk = 256;  // rows of A per pass over the panels
  for (Index r0 = 0; r0 < m; r0 += kChunk) {
    const Index r1 = std::min(m, r0 + kChunk);
    parallel_for(panels, parallel && panels > 1, [&](Index p) {
      const float* panel = packed_b + p * k * kPanel;
      const Index j0 = p * kPanel, cols = std::min(kPanel, n - j0);
      for (Index r = r0; r < r1; r += kTileRows) {
        const Index rows = std::min(kTileRows, r1 - r);
        tile_rows(rows, a + r * ars, ars, acs, panel, k, c + r * ldc + j0, ldc, cols, accumulate);
      }
    });
  }
}

}  // namespace packed
#endif  // RNNKIT_PACKED_GEMM

}  // namespace rnnkit
