#!/usr/bin/env bash
# Configures and builds the Google Benchmark micro-benchmarks of cpp/bench
# with plain CMake (not through pip) into build/cpp-bench, then lists them.
#   bash benchmarks/build_cpp_bench.sh            # build
#   build/cpp-bench/cpp/bench/rnnkit_bench        # run them all
#   build/cpp-bench/cpp/bench/rnnkit_bench --benchmark_filter='BM_LstmForward/.*H:1024'
# Needs libbenchmark-dev (benchmarks/setup.sh). Extra arguments go to the
# CMake configure step, e.g. -DRNNKIT_ARCH=portable.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="$ROOT/build/cpp-bench"
JOBS="${JOBS:-2}"

cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DRNNKIT_BUILD_BENCHMARKS=ON "$@"
cmake --build "$BUILD" --target rnnkit_bench -j "$JOBS"
"$BUILD/cpp/bench/rnnkit_bench" --benchmark_list_tests | sed 's/^/  /' | head -n 5
echo "built $BUILD/cpp/bench/rnnkit_bench"
