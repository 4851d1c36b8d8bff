#!/usr/bin/env bash
# Installs what the benchmarks need beyond rnnkit itself:
#   - Google Benchmark (Debian's libbenchmark-dev) for cpp/bench,
#   - PyTorch 2.13.0 (CPU) to compare against, threadpoolctl to report which
#     OpenBLAS kernel numpy's GEMM ceiling ran.
# Run from the repository root, as root (apt) or with sudo, inside the Python
# environment that has rnnkit installed:
#   bash benchmarks/setup.sh
# Set RNNKIT_BENCH_SKIP_APT=1 to skip apt, RNNKIT_BENCH_SKIP_TORCH=1 to skip torch.
set -euo pipefail

PYTHON="${PYTHON:-python}"

if [[ "${RNNKIT_BENCH_SKIP_APT:-0}" != 1 ]]; then
  SUDO=""
  if [[ "$(id -u)" != 0 ]]; then SUDO="sudo"; fi
  if ! dpkg -s libbenchmark-dev >/dev/null 2>&1; then
    $SUDO apt-get update
    $SUDO apt-get install -y --no-install-recommends libbenchmark-dev cmake g++
  fi
fi

if [[ "${RNNKIT_BENCH_SKIP_TORCH:-0}" != 1 ]]; then
  # The exact pin matters: an open range can pull a multi-GB CUDA build.
  "$PYTHON" -m pip install "torch==2.13.0" threadpoolctl
else
  "$PYTHON" -m pip install threadpoolctl
fi
echo "benchmark dependencies installed; run: $PYTHON -m benchmarks.run"
