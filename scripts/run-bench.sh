#!/usr/bin/env bash
# `make bench`: every benchmark in one run, side by side with its peers, at 2 threads (the
# machine class the figures in bench/README.md are for). Output goes to the terminal and to
# bench/out/<name>.txt. Run it on an otherwise idle machine: the figures are wall-clock.
set -uo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
THREADS=${THREADS:-2}
mkdir -p bench/out
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load $(cut -d' ' -f1-3 /proc/loadavg)"
status=0
for b in "$BUILD"/bench/bench_*; do
  name=$(basename "$b")
  [[ "$name" == bench_gemm ]] && continue  # run below through its script (re-executes itself)
  echo "== $name"
  LLMKIT_THREADS=$THREADS "$b" 2>&1 | tee "bench/out/$name.txt" || status=1
done
echo "== bench_gemm"
BUILD=$BUILD THREADS=$THREADS scripts/bench-gemm.sh 2>&1 | tee bench/out/bench_gemm.txt || status=1
for s in bench/*/run.sh; do
  [[ -x "$s" ]] || continue
  echo "== $s"
  "$s" "$BUILD" 2>&1 | tee "bench/out/$(basename "$(dirname "$s")").txt" || status=1
done
exit $status
