// Shared set-up for the kernel micro-benchmarks: seeded data, thread count
// from a benchmark argument, FLOP-rate counters.
#pragma once

#include <benchmark/benchmark.h>

#include <cstdint>
#include <random>
#include <vector>

#include "rnnkit/common.hpp"

namespace rnnkit_bench {

using rnnkit::Index;

inline std::vector<float> random_vector(size_t n, float scale, uint32_t seed) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> dist(-scale, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(gen);
  return v;
}

// GF/s of matrix-product FLOPs (2 per multiply-add), as benchmarks/run.py counts
// them. Every benchmark uses real (wall) time, so the rate is per wall second.
inline void set_flops(benchmark::State& state, double flops_per_iteration) {
  state.counters["FLOP/s"] =
      benchmark::Counter(flops_per_iteration, benchmark::Counter::kIsIterationInvariantRate,
                         benchmark::Counter::kIs1000);
}

inline void set_threads(benchmark::State& state, int threads) {
  rnnkit::set_num_threads(threads);
  state.counters["threads"] = threads;
}

}  // namespace rnnkit_bench
