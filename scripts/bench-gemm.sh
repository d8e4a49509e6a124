#!/usr/bin/env bash
# Runs bench_gemm at a fixed thread count (THREADS, default 2) and prints its closing tables:
# kernels::gemm vs raw OpenBLAS and BLIS at GPT-2-small shapes, OpenBLAS under the environment's
# OPENBLAS_CORETYPE and under its own detection (the binary re-runs itself for those), and the
# gemm_batched strategies. Extra arguments go to Google Benchmark, e.g.
#   scripts/bench-gemm.sh --benchmark_filter='gemm/'      # shape table only
# Figures are best-of runs; on a shared machine, run it when nothing else is busy.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
[[ -f "$BUILD/CMakeCache.txt" ]] || cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release
cmake --build "$BUILD" -j "$(nproc)" --target bench_gemm
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
LLMKIT_THREADS=${THREADS:-2} "$BUILD/bench/bench_gemm" --benchmark_repetitions=3 "$@"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
