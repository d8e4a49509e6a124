#!/usr/bin/env bash
# `make bench`: every benchmark in one run, side by side with its peers, at 2 threads (the
# machine class the figures in bench/README.md are for). Each bench's output goes to the terminal
# and to bench/out/<name>.txt (tables as markdown); the last lines list them with the wall time.
# Figures are wall-clock: the load average is printed before and after each bench, and on a busy
# machine ratios mean little. Needs scripts/install-deps.sh --bench (make bench runs it).
# Usage: scripts/run-bench.sh [BUILD_DIR]   (env: THREADS, default 2; RNN_STEPS, default 2000)
set -uo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
THREADS=${THREADS:-2}
OUT=bench/out
mkdir -p "$OUT"
start=$(date +%s)
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load $(cut -d' ' -f1-3 /proc/loadavg)"
failed=()
run() {  # run NAME COMMAND...: output to the terminal and to $OUT/NAME.txt
  local name=$1
  shift
  echo "== $name (load $(cut -d' ' -f1-3 /proc/loadavg))"
  "$@" 2>&1 | tee "$OUT/$name.txt"
  [[ ${PIPESTATUS[0]} -eq 0 ]] || failed+=("$name")
}
# Google Benchmark executables that need no arguments. The others are driven by their scripts
# below; an executable that is neither (no --benchmark_filter in its --help) is reported, not run.
for b in "$BUILD"/bench/bench_*; do
  name=$(basename "$b")
  case $name in bench_bandwidth | bench_gemm | bench_llama_f32 | bench_tokenizer | bench_train_gpt | bench_rnn_vs_transformer | bench_train_memory) continue ;; esac
  if ! timeout 10 "$b" --help 2>&1 | grep -q benchmark_filter; then
    echo "== $name: not a Google Benchmark executable and no script drives it; skipped"
    continue
  fi
  run "$name" env LLMKIT_THREADS="$THREADS" OMP_NUM_THREADS="$THREADS" "$b"
done
run train_memory env LLMKIT_THREADS="$THREADS" "$BUILD/bench/bench_train_memory" configs/gpt2-small.json 3 4
run bench_gemm env BUILD="$BUILD" THREADS="$THREADS" scripts/bench-gemm.sh
run tokenizer env THREADS="$THREADS" bench/tokenizer/run.sh "$BUILD"
run train_vs_torch bench/train_vs_torch/run.sh "$BUILD"
run infer_vs_llamacpp env THREADS="$THREADS" bench/infer_vs_llamacpp/run.sh "$BUILD"
run quant_vs_llamacpp env THREADS="$THREADS" bench/quant_vs_llamacpp/run.sh "$BUILD"
run quant_perplexity env THREADS="$THREADS" bench/quant_vs_llamacpp/perplexity.sh "$BUILD"
run rnn_vs_transformer env STEPS="${RNN_STEPS:-2000}" OUT="$OUT/rnn_vs_transformer.md" \
  SVG="$OUT/rnn_vs_transformer.svg" bench/rnn_vs_transformer/run.sh "$BUILD"
echo
echo "make bench: $(( $(date +%s) - start )) s wall, load now $(cut -d' ' -f1-3 /proc/loadavg); outputs:"
ls -1 "$OUT"/*.txt "$OUT"/*.md "$OUT"/*.svg 2>/dev/null | sed 's/^/  /'
if [[ ${#failed[@]} -gt 0 ]]; then
  echo "FAILED: ${failed[*]}"
  exit 1
fi
