// Shared vocabulary of the kernels: matrix maps, sequence layout, activations,
// and the threading knobs.
//
// Letters used in every shape comment: B batch, T time steps, D input depth,
// H num_units, P num_proj, R recurrent width (P or H), G gate width (k*H),
// C classes. "rows" means the T*B rows of a sequence array in its own order
// (batch-major [B, T, *] or time-major [T, B, *]).
#pragma once

#include <Eigen/Core>

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <vector>

#include "rnnkit/cpu_load.hpp"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace rnnkit {

using Index = Eigen::Index;

template <typename T>
using Mat = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <typename T>
using MatMap = Eigen::Map<Mat<T>>;
template <typename T>
using CMatMap = Eigen::Map<const Mat<T>>;
template <typename T>
using RowVec = Eigen::Matrix<T, 1, Eigen::Dynamic>;
template <typename T>
using RowMap = Eigen::Map<RowVec<T>>;
template <typename T>
using CRowMap = Eigen::Map<const RowVec<T>>;
// A [B, width] view of one time step inside a sequence array.
template <typename T>
using StepMap = Eigen::Map<Mat<T>, 0, Eigen::OuterStride<>>;
template <typename T>
using CStepMap = Eigen::Map<const Mat<T>, 0, Eigen::OuterStride<>>;

// Where the rows of a sequence array live. Batch-major [B, T, w] and
// time-major [T, B, w] hold the same T*B rows in different orders; every
// whole-sequence GEMM works on all rows at once, whatever the order, and a
// time step is a strided [B, w] view.
struct SeqLayout {
  Index T = 0, B = 0;
  bool time_major = false;

  Index rows() const { return T * B; }
  Index row(Index t, Index b) const { return time_major ? t * B + b : b * T + t; }
  Index step_offset(Index t, Index width) const { return time_major ? t * B * width : t * width; }
  Index step_stride(Index width) const { return time_major ? width : T * width; }

  template <typename T_>
  StepMap<T_> step(T_* data, Index t, Index width) const {
    return StepMap<T_>(data + step_offset(t, width), B, width, Eigen::OuterStride<>(step_stride(width)));
  }
  template <typename T_>
  CStepMap<T_> step(const T_* data, Index t, Index width) const {
    return CStepMap<T_>(data + step_offset(t, width), B, width, Eigen::OuterStride<>(step_stride(width)));
  }
};

// Is row b still inside its sequence at step t? (no lengths: every row is)
inline bool active(const int32_t* sequence_length, Index t, Index b) {
  return sequence_length == nullptr || t < sequence_length[b];
}

// Dropout on the recurrent state (DropoutWrapper's state_keep_prob): the state
// handed to the next step (and returned as the final state) is m ⊙ mask while
// the step's output keeps m. Mask values are 0 or 1/keep_prob; one row per
// (step, batch row), or per batch row only when the same mask is reused at
// every step (variational). No data: no state dropout.
template <typename T>
struct StateMask {
  const T* data = nullptr;
  bool per_step = true;

  // [width] mask of row b at step t
  const T* row(const SeqLayout& seq, Index t, Index b, Index width) const {
    return data + (per_step ? seq.row(t, b) : b) * width;
  }
};

// Activations used by the cells. Every derivative is written in terms of the
// activation's *output* y, so backward needs only what forward stored.
enum class Activation : int { Tanh = 0, Relu = 1, Sigmoid = 2, Identity = 3 };

template <typename T>
inline T sigmoid(T x) {
  return T(1) / (T(1) + std::exp(-x));
}

template <typename T>
inline T activate(Activation a, T x) {
  switch (a) {
    case Activation::Tanh: return std::tanh(x);
    case Activation::Relu: return x > T(0) ? x : T(0);
    case Activation::Sigmoid: return sigmoid(x);
    case Activation::Identity: return x;
  }
  return x;
}

// clip_by_value's gradient: it passes where min <= x <= max (TF's rule).
template <typename T>
inline T clip_value(T x, T limit) {
  return std::min(std::max(x, -limit), limit);
}
template <typename T>
inline T clip_pass(T x, T limit) {
  return (x < -limit || x > limit) ? T(0) : T(1);
}

// out[k] = sum over rows of m(r, k), summed row after row. (Eigen's colwise()
// reduction can round differently with the buffer's alignment; this order
// is fixed.)
template <typename T>
void column_sums(const T* m, Index rows, Index cols, T* out) {
  std::fill(out, out + cols, T(0));
  for (Index r = 0; r < rows; ++r) {
    const T* row = m + r * cols;
    for (Index k = 0; k < cols; ++k) out[k] += row[k];
  }
}

// ---- threads -------------------------------------------------------------
// One process-wide knob for every kernel: the OpenMP loops, including the
// blocked GEMMs of gemm.hpp (Eigen itself is built single-threaded,
// EIGEN_DONT_PARALLELIZE). OpenMP's own count (omp_set_num_threads) belongs
// to the thread that sets it, so a thread that the user starts would keep
// the old one: the count lives here instead, and every parallel region asks
// for it with num_threads().

// The most threads a region may ask for: the runtime's thread limit
// (OMP_THREAD_LIMIT), and at most 4 per processor or 64, whichever is more.
// More only slow the kernels down, and a region whose threads the system
// cannot create ends the process inside the OpenMP runtime.
inline int max_num_threads() {
#ifdef _OPENMP
  static const int limit = std::max(1, std::min(omp_get_thread_limit(), std::max(64, 4 * omp_get_num_procs())));
  return limit;
#else
  return 1;
#endif
}

namespace detail {
// Starts as OpenMP's default (OMP_NUM_THREADS, else one per processor).
inline std::atomic<int>& num_threads_setting() {
#ifdef _OPENMP
  static std::atomic<int> n{std::clamp(omp_get_max_threads(), 1, max_num_threads())};
#else
  static std::atomic<int> n{1};
#endif
  return n;
}
}  // namespace detail

// n in [1, max_num_threads()]; values outside are clamped (the binding
// rejects them with an error first).
inline void set_num_threads(int n) {
  detail::num_threads_setting().store(std::clamp(n, 1, max_num_threads()), std::memory_order_relaxed);
}

// The count that set_num_threads set.
inline int num_threads_setting() { return detail::num_threads_setting().load(std::memory_order_relaxed); }

namespace detail {
inline std::atomic<bool>& adaptive_threads_setting() {
  static std::atomic<bool> on{true};
  return on;
}
}  // namespace detail

// Whether the kernels leave to other processes the cores those keep busy
// (cpu_load.hpp). Results do not depend on the thread count either way.
inline void set_adaptive_threads(bool on) { detail::adaptive_threads_setting().store(on, std::memory_order_relaxed); }
inline bool adaptive_threads() { return detail::adaptive_threads_setting().load(std::memory_order_relaxed); }

// The threads a region starts: the setting, or fewer when other processes
// keep some of this process's CPUs busy (at least one).
inline int get_num_threads() {
  const int n = num_threads_setting();
  if (n < 2 || !adaptive_threads()) return n;
#ifdef _OPENMP
  if (omp_in_parallel()) return n;  // a region's own threads do not sample
#endif
  auto& load = detail::NeighbourLoad::instance();
  const int busy = load.busy_cores();
  if (busy == 0) return n;
  return std::clamp(load.cpus() - busy, 1, n);
}

// Whether a loop of n items asked to go `parallel` really opens a region:
// never inside another one (a thread running its own block of batch rows).
inline bool opens_region(Index n, bool parallel) {
#ifdef _OPENMP
  return parallel && n > 1 && get_num_threads() > 1 && !omp_in_parallel();
#else
  (void)n;
  (void)parallel;
  return false;
#endif
}

namespace detail {
// A loop's body is compiled once, here, however the loop runs. Inlined twice
// — into the parallel region and into the one-thread call — the two copies
// may be optimised differently (one contracting a multiply and an add into
// an FMA, the other not) and so round differently with one thread and with
// several.
template <typename F>
[[gnu::noinline]] void run_range(F& body, Index begin, Index end) {
  body(begin, end);
}
template <typename F>
[[gnu::noinline]] void run_step(F& body, Index step, Index begin, Index end) {
  body(step, begin, end);
}

// Thread t's share of [0, n) when `threads` split it: [share_begin(n, t),
// share_begin(n, t + 1)). The one split of every parallel loop below.
inline Index share_begin(Index n, Index t, Index threads) { return n * t / threads; }
}  // namespace detail

// Runs body(begin, end) on contiguous ranges that together cover [0, n):
// one range per OpenMP thread when `parallel`, else [0, n) inline. Inline
// means no parallel region at all: a region turned off by an if() clause
// still costs about a microsecond, which is most of a small step.
template <typename F>
void parallel_ranges(Index n, bool parallel, F&& body) {
#ifdef _OPENMP
  if (opens_region(n, parallel)) {
#pragma omp parallel num_threads(get_num_threads())
    {
      const Index t = omp_get_thread_num(), threads = omp_get_num_threads();
      const Index begin = detail::share_begin(n, t, threads), end = detail::share_begin(n, t + 1, threads);
      if (begin < end) detail::run_range(body, begin, end);
    }
    return;
  }
#else
  (void)parallel;
#endif
  if (n > 0) detail::run_range(body, Index(0), n);
}

// Runs body(begin, end) over [0, n) in pieces of at most `grain` items, in
// one parallel region: each thread works through its own contiguous share
// (split like parallel_ranges) and then takes the pieces of other shares
// that their threads have not reached. On a shared machine one core is often
// slower for a while (another tenant on its sibling hyperthread), and a
// static split then leaves the faster core waiting at the join. Which thread
// runs an item does not change what the item computes.
template <typename F>
void parallel_claims(Index n, Index grain, bool parallel, F&& body) {
#ifdef _OPENMP
  if (opens_region(n, parallel)) {
    struct alignas(64) Share {  // own cache line: claims on one share do not slow the others
      std::atomic<Index> next;
      Index end;
    };
    const Index threads = get_num_threads();
    std::vector<Share> shares(static_cast<size_t>(threads));
    for (Index t = 0; t < threads; ++t) {
      shares[t].next.store(detail::share_begin(n, t, threads), std::memory_order_relaxed);
      shares[t].end = detail::share_begin(n, t + 1, threads);
    }
#pragma omp parallel num_threads(threads)
    {
      const Index first = omp_get_thread_num();
      for (Index v = 0; v < threads; ++v) {  // all shares, should the region get fewer threads
        Share& share = shares[(first + v) % threads];
        for (Index i; (i = share.next.fetch_add(grain, std::memory_order_relaxed)) < share.end;)
          detail::run_range(body, i, std::min(i + grain, share.end));
      }
    }
    return;
  }
#else
  (void)grain;
  (void)parallel;
#endif
  if (n > 0) detail::run_range(body, Index(0), n);
}

// Runs body(step, begin, end) for step = 0, 1, ..., steps - 1 in turn, each
// thread on its own fixed range of [0, n) (split like parallel_ranges), in
// one parallel region with a barrier after each step: a recurrence whose
// threads own fixed slices of every step meets once per step instead of
// opening a region (about a microsecond each) for every pass of it.
template <typename F>
void parallel_steps(Index n, Index steps, bool parallel, F&& body) {
#ifdef _OPENMP
  if (opens_region(n, parallel)) {
#pragma omp parallel num_threads(get_num_threads())
    {
      const Index t = omp_get_thread_num(), threads = omp_get_num_threads();
      const Index begin = detail::share_begin(n, t, threads), end = detail::share_begin(n, t + 1, threads);
      for (Index s = 0; s < steps; ++s) {
        if (begin < end) detail::run_step(body, s, begin, end);
#pragma omp barrier
      }
    }
    return;
  }
#else
  (void)parallel;
#endif
  for (Index s = 0; s < steps && n > 0; ++s) detail::run_step(body, s, Index(0), n);
}

// Runs body(i) for i in [0, n), split like parallel_ranges.
template <typename F>
void parallel_for(Index n, bool parallel, F&& body) {
  parallel_ranges(n, parallel, [&](Index begin, Index end) {
    for (Index i = begin; i < end; ++i) body(i);
  });
}

// Elementwise loops go parallel over batch rows only when there is enough
// work to pay for waking the threads. Each row is computed by exactly one
// thread in a fixed order, so results do not depend on the thread count.
inline bool worth_parallel(Index rows, Index width) { return rows > 1 && rows * width >= 16384; }

// Batch rows are independent through a recurrence: row b of step t needs
// only row b of step t - 1. So when the recurrent weights fit in a core's L2
// (each core then reads all of them at every step), every thread can run its
// own block of batch rows through all the steps with no barrier between
// steps, instead of splitting each step's small product and row pass and
// meeting twice per step. Each row's arithmetic is the same in any block
// (products are summed per element, row passes are per row), so results do
// not depend on the split. Blocks are multiples of 8 rows; one block means
// "split inside each step" instead.
//
// Up to kSmallWeightBytes a step is so small that blocks win even when
// fewer blocks than threads leave some idle. Up to kCoreL2Bytes blocks still
// win when every thread gets one; with fewer blocks than threads, splitting
// each step wins (benchmarks/NOTES.md, Step loop).
constexpr Index kSmallWeightBytes = Index(512) << 10;
// Recurrent weights up to this size run per-thread batch blocks, each
// thread's copy of W_h in its own L2 (benchmarks/NOTES.md, Step loop).
constexpr Index kCoreL2Bytes = Index(1) << 20;

struct BatchBlocks {
  Index count = 1, size = 0, B = 0;
  Index begin(Index i) const { return i * size; }
  Index rows(Index i) const { return std::min(size, B - i * size); }
};

inline BatchBlocks batch_blocks(Index B, Index weight_bytes) {
  BatchBlocks blocks;
  blocks.B = B;
  blocks.size = B;
  const Index threads = get_num_threads();
  if (threads < 2 || B < 16 || weight_bytes > kCoreL2Bytes) return blocks;
  const Index per_thread = (B + threads - 1) / threads;
  const Index size = (per_thread + 7) / 8 * 8, count = (B + size - 1) / size;
  if (weight_bytes > kSmallWeightBytes && count < threads) return blocks;
  blocks.size = size;
  blocks.count = count;
  return blocks;
}

// A weight gradient sums over all T·B rows of a tape. With per-thread batch
// blocks, a product over the whole tape makes each core read the rows the
// other core wrote, and the next forward must take those lines back before
// it can write them again (benchmarks/NOTES.md, Step loop). So when a
// step's weights are small
// (kSmallWeightBytes: the groups must not depend on the thread count, so
// they do not follow batch_blocks' every-thread rule), a batch-major tape is
// summed in fixed groups of batch rows instead, each group by one thread
// over rows its own block wrote, and the groups' sums are then added in
// group order. The groups depend only on the shapes, never on
// the thread count, so neither do the sums. At most 8 groups of at least 16
// rows: a group's product stays large, and its partial sum small beside it.
inline BatchBlocks grad_blocks(const SeqLayout& seq, Index weight_bytes) {
  BatchBlocks groups;
  groups.B = seq.B;
  groups.size = seq.B;
  if (seq.time_major || seq.B < 32 || weight_bytes > kSmallWeightBytes) return groups;
  const Index per_group = (seq.B + 7) / 8;
  groups.size = std::max<Index>(16, (per_group + 7) / 8 * 8);
  groups.count = (seq.B + groups.size - 1) / groups.size;
  return groups;
}

namespace detail {
// dst[i] += part_g[i] for g = 1, 2, ..., count - 1 in turn, where part_g
// starts at parts + (g - 1) * stride: group sums added in group order,
// whatever thread adds them.
template <typename T>
void add_group_sums(T* dst, Index n, const T* parts, Index count, Index stride) {
  if (count < 2 || n == 0) return;
  constexpr Index kChunk = 4096;
  const Index chunks = (n + kChunk - 1) / kChunk;
  parallel_for(chunks, chunks > 1 && n * (count - 1) >= 65536, [&](Index q) {
    const Index begin = q * kChunk, end = std::min(n, begin + kChunk);
    for (Index g = 1; g < count; ++g) {
      const T* part = parts + (g - 1) * stride;
      for (Index i = begin; i < end; ++i) dst[i] += part[i];
    }
  });
}
}  // namespace detail

// Weight gradients summed over a tape's rows group by group (grad_blocks):
// body(r0, n, dst) writes the sums over rows [r0, r0 + n) to dst[i] (sizes[i]
// values each): the caller's gradient arrays `grads` for the first group,
// scratch for the others, whose sums are then added to the first in group
// order. A group runs on one thread when there are enough groups, else its
// products split over the threads; either way the same bits.
template <typename T, size_t N, typename F>
void sum_row_groups(const BatchBlocks& groups, Index steps, const std::array<T*, N>& grads,
                    const std::array<Index, N>& sizes, F&& body) {
  Index part_size = 0;
  for (Index s : sizes) part_size += s;
  Mat<T> parts(groups.count - 1, part_size);
  auto run = [&](Index g) {
    std::array<T*, N> dst = grads;
    if (g > 0) {
      T* p = parts.data() + (g - 1) * part_size;  // every value is written by body before it is read
      for (size_t i = 0; i < N; ++i) {
        dst[i] = p;
        p += sizes[i];
      }
    }
    body(groups.begin(g) * steps, groups.rows(g) * steps, dst);
  };
  parallel_claims(groups.count, 1, groups.count >= get_num_threads(), [&](Index begin, Index end) {
    for (Index g = begin; g < end; ++g) run(g);
  });
  Index offset = 0;
  for (size_t i = 0; i < N; offset += sizes[i], ++i)
    detail::add_group_sums(grads[i], sizes[i], parts.data() + offset, groups.count, part_size);
}

}  // namespace rnnkit
