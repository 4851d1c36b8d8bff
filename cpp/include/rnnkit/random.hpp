// Counter-based random numbers: SplitMix64 (Steele, Lea and Flood, "Fast
// splittable pseudorandom number generators", OOPSLA 2014; Vigna's
// splitmix64.c). The n-th number of a seed depends only on (seed, n), so a
// draw can be computed wherever and by whichever thread it is needed, and
// generation gives the same numbers for every thread count.
//
//   z = seed + (n + 1) * 0x9E3779B97F4A7C15        (mod 2^64)
//   z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
//   z = (z ^ (z >> 27)) * 0x94D049BB133111EB
//   bits(seed, n) = z ^ (z >> 31)
//   uniform(seed, n) = (bits(seed, n) >> 11) * 2^-53, a double in [0, 1)
//
// bits(seed, 0), bits(seed, 1), ... is the sequence splitmix64.c's next()
// returns from the state `seed`.
#pragma once

#include <cstdint>

namespace rnnkit {

inline uint64_t splitmix64_bits(uint64_t seed, uint64_t n) {
  uint64_t z = seed + (n + 1) * 0x9E3779B97F4A7C15ULL;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

// A double in [0, 1): the top 53 bits of splitmix64_bits(seed, n), so every
// value is a multiple of 2^-53 and exactly representable.
inline double uniform(uint64_t seed, uint64_t n) {
  return static_cast<double>(splitmix64_bits(seed, n) >> 11) * 0x1.0p-53;
}

// out[i] = uniform(seed, first + i) for i in [0, n).
inline void uniforms(uint64_t seed, uint64_t first, int64_t n, double* out) {
  for (int64_t i = 0; i < n; ++i) out[i] = uniform(seed, first + static_cast<uint64_t>(i));
}

}  // namespace rnnkit
