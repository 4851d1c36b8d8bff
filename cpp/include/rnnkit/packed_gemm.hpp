// A float32 GEMM for AVX-512 with the right-hand side packed once.
//
// Eigen's GEMM reaches about half of OpenBLAS's AVX-512 speed here, and it
// repacks the weights on every call — once per time step in a recurrence.
// This kernel packs B [k, n] into 32-column panels (k × 32 floats each, zero
// padded) once per layer call and computes C tiles of 12 rows × 32 columns
// in 24 zmm accumulators, one FMA pass over k. Every element of C is summed
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
// Rows per C tile. 12 rather than 8: each row tile streams its panel slice
// once, so fewer, taller tiles read B fewer times, and 24 accumulators, the
// panel's 2 vectors and a broadcast fit the 32 zmm registers
// (benchmarks/NOTES.md, Products).
constexpr Index kTileRows = 12;

// 64-byte aligned float storage. Growing it gives the strong guarantee: the
// new block is allocated before the old one is freed, so a failed allocation
// (std::bad_alloc) leaves the buffer as it was.
struct AlignedBuffer {
  float* data = nullptr;
  Index size = 0;
  AlignedBuffer() = default;
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;
  AlignedBuffer(AlignedBuffer&& o) noexcept : data(o.data), size(o.size) {
    o.data = nullptr;
    o.size = 0;
  }
  ~AlignedBuffer() { Eigen::internal::aligned_free(data); }
  void resize(Index n) {
    if (n <= size) return;
    if (n > Index(PTRDIFF_MAX / sizeof(float))) throw std::bad_alloc();
    float* grown = static_cast<float*>(Eigen::internal::aligned_malloc(sizeof(float) * static_cast<size_t>(n)));
    Eigen::internal::aligned_free(data);
    data = grown;
    size = n;
  }
  // resize, or false (the buffer unchanged) where memory is short: for
  // space that only speeds a product up.
  bool try_resize(Index n) noexcept {
    try {
      resize(n);
      return true;
    } catch (const std::bad_alloc&) {
      return false;
    }
  }
};

// Packing space that a thread reuses from call to call: the B of one-off
// products (gemm.hpp) and the strips of A (multiply). Fresh buffers would
// come from the allocator's recycled memory, which other cores wrote last,
// and writing that is slow; reused, each thread's buffers stay in its own
// core's caches (benchmarks/NOTES.md, Products). Each buffer grows to the
// largest size its thread has used and is kept: one slab of B (4 MiB, or 256
// rows of a B wider than 4096 columns) and 256 KiB of strips.
enum class Scratch { OneOffRhs, Strips };
inline AlignedBuffer& thread_buffer(Scratch which) {
  thread_local AlignedBuffer buffers[2];
  return buffers[static_cast<int>(which)];
}

// dst row r (r < 16, rows kPanel floats apart) = column r of the 16 x 16
// block whose row c is src[c * ld, c * ld + 16): four rounds of shuffles
// (pairs of floats, then of pairs, then 128-bit lanes twice).
inline void transpose_16x16(const float* src, Index ld, float* dst) {
  __m512 r[16], t[16];
  for (int c = 0; c < 16; ++c) r[c] = _mm512_loadu_ps(src + c * ld);
  for (int c = 0; c < 16; c += 2) {
    t[c] = _mm512_unpacklo_ps(r[c], r[c + 1]);
    t[c + 1] = _mm512_unpackhi_ps(r[c], r[c + 1]);
  }
  for (int c = 0; c < 16; c += 4) {  // r[c + m], lane l: rows c..c+3 of column 4l + m
    r[c] = _mm512_shuffle_ps(t[c], t[c + 2], _MM_SHUFFLE(1, 0, 1, 0));
    r[c + 1] = _mm512_shuffle_ps(t[c], t[c + 2], _MM_SHUFFLE(3, 2, 3, 2));
    r[c + 2] = _mm512_shuffle_ps(t[c + 1], t[c + 3], _MM_SHUFFLE(1, 0, 1, 0));
    r[c + 3] = _mm512_shuffle_ps(t[c + 1], t[c + 3], _MM_SHUFFLE(3, 2, 3, 2));
  }
  for (int m = 0; m < 4; ++m) {
    t[m] = _mm512_shuffle_f32x4(r[m], r[4 + m], 0x88);
    t[m + 4] = _mm512_shuffle_f32x4(r[m], r[4 + m], 0xDD);
    t[m + 8] = _mm512_shuffle_f32x4(r[8 + m], r[12 + m], 0x88);
    t[m + 12] = _mm512_shuffle_f32x4(r[8 + m], r[12 + m], 0xDD);
  }
  for (int m = 0; m < 4; ++m) {
    _mm512_store_ps(dst + m * kPanel, _mm512_shuffle_f32x4(t[m], t[m + 8], 0x88));
    _mm512_store_ps(dst + (m + 8) * kPanel, _mm512_shuffle_f32x4(t[m], t[m + 8], 0xDD));
    _mm512_store_ps(dst + (m + 4) * kPanel, _mm512_shuffle_f32x4(t[m + 4], t[m + 12], 0x88));
    _mm512_store_ps(dst + (m + 12) * kPanel, _mm512_shuffle_f32x4(t[m + 4], t[m + 12], 0xDD));
  }
}

// B [k, n] with element (i, j) at b[i * rs + j * cs], packed as panels:
// panel p, row i at out[(p * k + i) * 32 + j'] for column 32p + j', zero
// padded past column n. The loops follow B's memory order: a row-major B is
// read row by row (walking it panel by panel instead reads 128 bytes per row
// stride), and a transposed one (rs == 1, the backward's W_h^T and W_x^T)
// panel by panel in 16 x 16 register transposes.
inline void pack(const float* b, Index rs, Index cs, Index k, Index n, AlignedBuffer& out) {
  const Index panels = (n + kPanel - 1) / kPanel;
  out.resize(panels * k * kPanel);
  constexpr Index kRowBlock = 64;
  const Index blocks = (k + kRowBlock - 1) / kRowBlock;
  // Threads share packs from 128 KiB, so that a char model's W_h (256 KiB,
  // packed at every call) and its Dense head's [N, 65] gradient are not
  // packed by one thread while the other waits.
  const bool parallel = panels * k * kPanel >= (Index(1) << 15);
  auto at = [&](Index p, Index i) { return out.data + (p * k + i) * kPanel; };
  if (rs == 1 && cs != 1) {
    parallel_for(panels, parallel, [&](Index p) {
      const Index j0 = p * kPanel, width = std::min(kPanel, n - j0);
      // Whole 16 x 16 blocks of a full panel by register transposes; the
      // rest (a partial panel's, the last rows') float by float.
      const Index i_fast = width == kPanel ? k / 16 * 16 : 0;
      for (Index i0 = 0; i0 < i_fast; i0 += 16)
        for (Index jh = 0; jh < kPanel; jh += 16) transpose_16x16(b + i0 + (j0 + jh) * cs, cs, at(p, i0) + jh);
      for (Index i0 = i_fast; i0 < k; i0 += kRowBlock) {
        const Index i1 = std::min(k, i0 + kRowBlock);
        for (Index i = i0; i < i1; ++i) std::fill(at(p, i) + width, at(p, i) + kPanel, 0.f);
        for (Index j = 0; j < width; ++j) {
          const float* src = b + (j0 + j) * cs;
          for (Index i = i0; i < i1; ++i) at(p, i)[j] = src[i];
        }
      }
    });
    return;
  }
  const Index full = n / kPanel;  // panels with all 32 columns
  parallel_for(blocks, parallel, [&](Index blk) {
    const Index i1 = std::min(k, (blk + 1) * kRowBlock);
    for (Index i = blk * kRowBlock; i < i1; ++i) {
      const float* src = b + i * rs;
      for (Index p = 0; p < full; ++p) {
        float* dst = at(p, i);
        if (cs == 1) {
          _mm512_store_ps(dst, _mm512_loadu_ps(src + p * kPanel));
          _mm512_store_ps(dst + 16, _mm512_loadu_ps(src + p * kPanel + 16));
        } else {
          for (Index j = 0; j < kPanel; ++j) dst[j] = src[(p * kPanel + j) * cs];
        }
      }
      if (full < panels) {  // the last, partial panel
        float* dst = at(full, i);
        const Index j0 = full * kPanel;
        for (Index j = j0; j < n; ++j) dst[j - j0] = src[j * cs];
        std::fill(dst + (n - j0), dst + kPanel, 0.f);
      }
    }
  });
}

// The column masks of a C tile row of Vecs vectors holding `cols` columns,
// and its accumulators' load (C, or zero) and store: shared by tile() and
// few_rows_tile(), which sum every element alike.
template <int Vecs>
[[gnu::always_inline]] inline void column_masks(Index cols, __mmask16 (&mask)[Vecs]) {
  for (int v = 0; v < Vecs; ++v) {
    const Index left = cols - 16 * v;
    mask[v] = left >= 16 ? __mmask16(0xFFFF) : left > 0 ? __mmask16((1u << left) - 1) : __mmask16(0);
  }
}
template <int Rows, int Vecs>
[[gnu::always_inline]] inline void load_accumulators(__m512 (&acc)[Rows][Vecs], const __mmask16 (&mask)[Vecs],
                                                     const float* c, Index ldc, bool accumulate) {
  for (int r = 0; r < Rows; ++r)
    for (int v = 0; v < Vecs; ++v)
      acc[r][v] = accumulate ? _mm512_maskz_loadu_ps(mask[v], c + r * ldc + 16 * v) : _mm512_setzero_ps();
}
template <int Rows, int Vecs>
[[gnu::always_inline]] inline void store_accumulators(const __m512 (&acc)[Rows][Vecs], const __mmask16 (&mask)[Vecs],
                                                      float* c, Index ldc) {
  for (int r = 0; r < Rows; ++r)
    for (int v = 0; v < Vecs; ++v) _mm512_mask_storeu_ps(c + r * ldc + 16 * v, mask[v], acc[r][v]);
}

// C[rows ≤ 12, cols ≤ 32] (+)= A[rows, k] · panel. A's element (r, i) at
// a[r * ars + i * acs]; C's row r at c + r * ldc.
// Vecs = 1 serves a last panel of at most 16 columns (a Dense(65) head's
// 65th column) with one FMA per row and k instead of two (benchmarks/
// NOTES.md, Products). Same sums per element, same bits.
template <int Rows, int Vecs = 2>
inline void tile(const float* a, Index ars, Index acs, const float* panel, Index k, float* c, Index ldc,
                 Index cols, bool accumulate) {
  __mmask16 mask[Vecs];
  column_masks(cols, mask);
  __m512 acc[Rows][Vecs];
  load_accumulators(acc, mask, c, ldc, accumulate);
  for (Index i = 0; i < k; ++i) {
    __m512 b[Vecs];
    // The panel's lines 16 rows (2 KiB) ahead. A slice read for the first
    // time comes from the L3 (a recurrent W_h beyond the L2, at every step),
    // and the hardware prefetchers stop at each 4 KiB page (benchmarks/
    // NOTES.md, Products). A prefetch never faults, so the last rows' may run
    // past the buffer.
    _mm_prefetch(reinterpret_cast<const char*>(panel + (i + 16) * kPanel), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(panel + (i + 16) * kPanel + 16), _MM_HINT_T0);
    for (int v = 0; v < Vecs; ++v) b[v] = _mm512_load_ps(panel + i * kPanel + 16 * v);
    const float* ai = a + i * acs;
    for (int r = 0; r < Rows; ++r) {
      const __m512 av = _mm512_set1_ps(ai[r * ars]);
      for (int v = 0; v < Vecs; ++v) acc[r][v] = _mm512_fmadd_ps(av, b[v], acc[r][v]);
    }
  }
  store_accumulators(acc, mask, c, ldc);
}

// C[rows ≤ 12, cols ≤ 8] (+)= A[rows, k] · panel in one 8-float vector per
// row: a last panel of at most 8 columns (a Dense(65) head's 65th column).
// On a core that issues two 8-float FMAs per cycle but one of 16 floats,
// such a panel costs half of tile<Rows, 1>. The same fused multiply-add
// per element in k order, so the same bits.
template <int Rows>
inline void narrow_tile(const float* a, Index ars, Index acs, const float* panel, Index k, float* c, Index ldc,
                        Index cols, bool accumulate) {
  const __m256i mask =
      _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(cols)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  __m256 acc[Rows];
  for (int r = 0; r < Rows; ++r) acc[r] = accumulate ? _mm256_maskload_ps(c + r * ldc, mask) : _mm256_setzero_ps();
  for (Index i = 0; i < k; ++i) {
    const __m256 b = _mm256_load_ps(panel + i * kPanel);
    const float* ai = a + i * acs;
    for (int r = 0; r < Rows; ++r) acc[r] = _mm256_fmadd_ps(_mm256_set1_ps(ai[r * ars]), b, acc[r]);
  }
  for (int r = 0; r < Rows; ++r) _mm256_maskstore_ps(c + r * ldc, mask, acc[r]);
}

// The tile of Vecs 16-float vectors per row, or (Vecs = 0) the narrow tile.
template <int Rows, int Vecs>
inline void tile_of(const float* a, Index ars, Index acs, const float* panel, Index k, float* c, Index ldc,
                    Index cols, bool accumulate) {
  if constexpr (Vecs == 0)
    narrow_tile<Rows>(a, ars, acs, panel, k, c, ldc, cols, accumulate);
  else
    tile<Rows, Vecs>(a, ars, acs, panel, k, c, ldc, cols, accumulate);
}

template <int Vecs>
inline void tile_rows_of(Index rows, const float* a, Index ars, Index acs, const float* panel, Index k, float* c,
                         Index ldc, Index cols, bool accumulate) {
  static_assert(kTileRows == 12, "one case per row count");
  switch (rows) {
    case 12: tile_of<12, Vecs>(a, ars, acs, panel, k, c, ldc, cols, accumulate); break;
    case 11: tile_of<11, Vecs>(a, ars, acs, panel, k, c, ldc, cols, accumulate); break;
    case 10: tile_of<10, Vecs>(a, ars, acs, panel, k, c, ldc, cols, accumulate); break;
    case 9: tile_of<9, Vecs>(a, ars, acs, panel, k, c, ldc, cols, accumulate); break;
    case 8: tile_of<8, Vecs>(a, ars, acs, panel, k, c, ldc, cols, accumulate); break;
    case 7: tile_of<7, Vecs>(a, ars, acs, panel, k, c, ldc, cols, accumulate); break;
    case 6: tile_of<6, Vecs>(a, ars, acs, panel, k, c, ldc, cols, accumulate); break;
    case 5: tile_of<5, Vecs>(a, ars, acs, panel, k, c, ldc, cols, accumulate); break;
    case 4: tile_of<4, Vecs>(a, ars, acs, panel, k, c, ldc, cols, accumulate); break;
    case 3: tile_of<3, Vecs>(a, ars, acs, panel, k, c, ldc, cols, accumulate); break;
    case 2: tile_of<2, Vecs>(a, ars, acs, panel, k, c, ldc, cols, accumulate); break;
    default: tile_of<1, Vecs>(a, ars, acs, panel, k, c, ldc, cols, accumulate); break;
  }
}

inline void tile_rows(Index rows, const float* a, Index ars, Index acs, const float* panel, Index k, float* c,
                      Index ldc, Index cols, bool accumulate) {
  if (cols <= 8)
    tile_rows_of<0>(rows, a, ars, acs, panel, k, c, ldc, cols, accumulate);
  else if (cols <= 16)
    tile_rows_of<1>(rows, a, ars, acs, panel, k, c, ldc, cols, accumulate);
  else
    tile_rows_of<2>(rows, a, ars, acs, panel, k, c, ldc, cols, accumulate);
}

// A [rows ≤ chunk, depth] given transposed (element (r, i) at a[r + i * acs],
// so each i is a contiguous run of `rows` floats), copied as strips of
// kTileRows rows: strip s, column i at out[(s * depth + i) * kTileRows + r']
// (rows past the end zero). A tile then reads its A contiguously (ars 1, acs
// kTileRows). The copy walks the source in its own order, a whole run per i
// in masked vectors, so that each source line is touched once.
inline void pack_rows(const float* a, Index acs, Index rows, Index depth, float* out) {
  static_assert(kTileRows <= 16, "a strip's column is one masked vector");
  constexpr __mmask16 kStrip = __mmask16((1u << kTileRows) - 1);
  const Index full = rows / kTileRows, left = rows - full * kTileRows;  // whole strips, rows of the last
  const __mmask16 last_rows = __mmask16((1u << left) - 1);
  for (Index i = 0; i < depth; ++i) {
    const float* src = a + i * acs;
    float* dst = out + i * kTileRows;
    for (Index s = 0; s < full; ++s)
      _mm512_mask_storeu_ps(dst + s * depth * kTileRows, kStrip, _mm512_maskz_loadu_ps(kStrip, src + s * kTileRows));
    if (left > 0)  // masked-off lanes are neither read nor faulted on; they store as zeros
      _mm512_mask_storeu_ps(dst + full * depth * kTileRows, kStrip,
                            _mm512_maskz_loadu_ps(last_rows, src + full * kTileRows));
  }
}

// C [m, n] (row stride ldc, unit column stride) (+)= A [m, k] · packed B [k, n].
// The work is (row chunk, panel) pairs, chunk-major, each thread taking a
// contiguous range: whole panels of one chunk of A's rows, or whole chunks
// when there are few panels (a narrow product such as a Dense head). A long
// k goes in blocks of kDepth (see the panel groups below for how a block's
// slices meet the row tiles); a k block adds onto the C that the previous
// one stored, which is the same float the registers held, so blocking
// changes no sum. A given transposed
// (a weight gradient's X^T: ars == 1) would cost a tile a new cache line per
// k step, at a power-of-two stride the L1 holds few of, so each thread
// copies the block of A it is about to use into strips once and runs
// all its panels on the copy.
inline void multiply(float* c, Index ldc, Index m, Index n, Index k, const float* a, Index ars, Index acs,
                     const float* packed_b, bool accumulate, bool parallel) {
  const Index panels = (n + kPanel - 1) / kPanel;
  // Rows of A per work item: at most 256 (64 for a narrow product), in
  // chunks of about equal size, a multiple of 8 rows (its last tile then has
  // fewer rows), so that no thread's static share is left with one short
  // chunk while the other's are full (benchmarks/NOTES.md, Products).
  const Index max_chunk = panels >= 8 ? 256 : 64;
  const Index chunks = (m + max_chunk - 1) / max_chunk;
  const Index chunk = ((m + chunks - 1) / chunks + 7) / 8 * 8;
  const Index chunk_strips = (chunk + kTileRows - 1) / kTileRows;  // a partial last strip is whole in the copy
  constexpr Index kDepth = 256;                // k per block: a 32 KiB slice of a panel
  constexpr Index kGroup = 4;                  // panels whose full-depth slices a strip of A runs across
  const bool pack_strips = ars == 1 && acs != 1 && m >= 32;
  auto run = [&](Index begin, Index end) {
    AlignedBuffer& strips = thread_buffer(Scratch::Strips);
    // Inside a parallel region an exception cannot leave the thread: without
    // room for the strips this thread reads A in place (the same sums).
    const bool pack_a = pack_strips && strips.try_resize(chunk_strips * kTileRows * kDepth);
    for (Index item = begin; item < end;) {
      // this thread's panels [p0, p1) of chunk q
      const Index q = item / panels, p0 = item % panels, p1 = std::min(panels, p0 + (end - item));
      item += p1 - p0;
      const Index r0 = q * chunk, r1 = std::min(m, r0 + chunk);
      for (Index k0 = 0; k0 < k; k0 += kDepth) {
        const Index depth = std::min(kDepth, k - k0);
        // this k block of A's rows [r0, r1): in place, or as strips (row r at (r - r0) * depth)
        const float* a_blk = a + r0 * ars + k0 * acs;
        Index a_rs = ars, a_cs = acs, row_step = ars;
        if (pack_a) {
          pack_rows(a_blk, acs, r1 - r0, depth, strips.data);
          a_blk = strips.data;
          a_rs = 1;
          a_cs = kTileRows;
          row_step = depth;
        }
        // A full-depth slice of a panel fills the L1 by itself, and each row
        // tile's strip of A then evicted part of it: such slices go in groups
        // of kGroup panels, which each strip of A runs across from the L1
        // while the slices come from the L2. A shallower slice stays in the
        // L1 and is not grouped.
        const Index group = depth == kDepth ? kGroup : 1;
        for (Index g0 = p0; g0 < p1; g0 += group) {
          const Index g1 = std::min(p1, g0 + group);
          for (Index r = r0; r < r1; r += kTileRows)
            for (Index p = g0; p < g1; ++p) {
              const Index j0 = p * kPanel, cols = std::min(kPanel, n - j0);
              const float* panel = packed_b + (p * k + k0) * kPanel;
              tile_rows(std::min(kTileRows, r1 - r), a_blk + (r - r0) * row_step, a_rs, a_cs, panel, depth,
                        c + r * ldc + j0, ldc, cols, accumulate || k0 > 0);
            }
        }
      }
    }
  };
  // Items are claimed (parallel_claims), so that a faster core takes over
  // items of a slower one, in pieces that keep A's reuse. A piece runs its
  // k blocks across its panels and then moves on, so each piece reads A's
  // chunk over all of k (what a work item reads of A) again: one panel group
  // per piece while that chunk is at most 256 KiB, 8 while it fits the L2 (1 MiB),
  // static shares beyond, and where a thread copies strips of A, whose
  // panels all reuse one copy.
  const Index a_chunk_bytes = std::min(m, chunk) * k * Index(sizeof(float));
  if (pack_strips || a_chunk_bytes > (Index(1) << 20))
    parallel_ranges(chunks * panels, parallel, run);
  else
    parallel_claims(chunks * panels, a_chunk_bytes <= (Index(256) << 10) ? kGroup : 8, parallel, run);
}

// A batch of a few rows (sampling, single steps, B ≤ 4) makes a
// matrix-vector product whose cost is reading B once, so B is read in place
// rather than packed. A C tile is Rows × (16·Vecs) columns held in 16 zmm
// accumulators: the wider the tile, the longer the contiguous run read from
// each row of B (one row of a weight matrix is a new 4 KiB page, which the
// hardware prefetchers do not cross). Every element is summed over k in order
// from C (or zero), exactly as tile() sums it, so both paths give the same
// bits. Threads take fixed column ranges, so across calls each core keeps
// re-reading its own share of B from its own L2.
constexpr Index kFewRows = 4;

template <int Rows, int Vecs, bool Full>
inline void few_rows_tile(const float* a, Index ars, Index acs, const float* b, Index ldb, Index k, float* c,
                          Index ldc, Index cols, bool accumulate) {
  __mmask16 mask[Vecs];
  column_masks(cols, mask);
  __m512 acc[Rows][Vecs];
  load_accumulators(acc, mask, c, ldc, accumulate);
  for (Index i = 0; i < k; ++i) {
    const float* bi = b + i * ldb;
    // The next row's lines, one row ahead: the hardware prefetchers see a
    // 1 KiB run every 4 KiB and do not keep up.
    if (i + 1 < k)
      for (int v = 0; v < Vecs; ++v) _mm_prefetch(reinterpret_cast<const char*>(bi + ldb + 16 * v), _MM_HINT_T0);
    for (int r = 0; r < Rows; ++r) {
      const __m512 av = _mm512_set1_ps(a[r * ars + i * acs]);
      for (int v = 0; v < Vecs; ++v) {
        // A masked load is slower than a plain one even with every lane on.
        const __m512 bv = Full ? _mm512_loadu_ps(bi + 16 * v) : _mm512_maskz_loadu_ps(mask[v], bi + 16 * v);
        acc[r][v] = _mm512_fmadd_ps(av, bv, acc[r][v]);
      }
    }
  }
  store_accumulators(acc, mask, c, ldc);
}

// A chunk of columns runs a tile of just the vectors it needs (the last
// chunk of a Dense(65) head is 5 vectors, not 16): per column the same
// in-order sum.
template <int Rows, int Vecs>
inline void few_rows_fitted_tile(int vecs, const float* a, Index ars, Index acs, const float* b, Index ldb, Index k,
                                 float* c, Index ldc, Index cols, bool accumulate) {
  if constexpr (Vecs > 1) {
    if (vecs < Vecs) {
      few_rows_fitted_tile<Rows, Vecs - 1>(vecs, a, ars, acs, b, ldb, k, c, ldc, cols, accumulate);
      return;
    }
  }
  if (cols == 16 * Vecs)
    few_rows_tile<Rows, Vecs, true>(a, ars, acs, b, ldb, k, c, ldc, cols, accumulate);
  else
    few_rows_tile<Rows, Vecs, false>(a, ars, acs, b, ldb, k, c, ldc, cols, accumulate);
}

template <int Rows>
inline void few_rows_columns(float* c, Index ldc, Index n, Index k, const float* a, Index ars, Index acs,
                             const float* b, Index ldb, bool accumulate, bool parallel) {
  constexpr int kVecs = 16 / Rows;
  constexpr Index kCols = 16 * kVecs;
  const Index chunks = (n + kCols - 1) / kCols;
  parallel_for(chunks, parallel, [&](Index q) {
    const Index j0 = q * kCols;
    const Index cols = std::min(kCols, n - j0);
    few_rows_fitted_tile<Rows, kVecs>(static_cast<int>((cols + 15) / 16), a, ars, acs, b + j0, ldb, k, c + j0, ldc,
                                      cols, accumulate);
  });
}

// C [m ≤ 4, n] (+)= A [m, k] · B [k, n], B with row stride ldb and unit
// column stride.
inline void multiply_few_rows(float* c, Index ldc, Index m, Index n, Index k, const float* a, Index ars, Index acs,
                              const float* b, Index ldb, bool accumulate, bool parallel) {
  switch (m) {
    case 4: few_rows_columns<4>(c, ldc, n, k, a, ars, acs, b, ldb, accumulate, parallel); break;
    case 3: few_rows_columns<3>(c, ldc, n, k, a, ars, acs, b, ldb, accumulate, parallel); break;
    case 2: few_rows_columns<2>(c, ldc, n, k, a, ars, acs, b, ldb, accumulate, parallel); break;
    default: few_rows_columns<1>(c, ldc, n, k, a, ars, acs, b, ldb, accumulate, parallel); break;
  }
}

}  // namespace packed
#endif  // RNNKIT_PACKED_GEMM

}  // namespace rnnkit
