#!/usr/bin/env bash
# The RNN-vs-transformer experiment (docs/rnn-vs-transformer.md): an LSTM and a small GPT learn to
# recall a key after N distractor tokens, with the same steps and the same sequences. The two
# models train at the same time in two processes of one thread each (one core each on a 2-core
# machine; one OpenMP thread per process also keeps the tiny per-step GEMMs off a shared barrier).
# Writes the markdown table to $OUT (bench/out/rnn_vs_transformer.md) and the plot to $SVG
# (docs/rnn-vs-transformer.svg). About 9 minutes with the defaults on our 2-core machine (measured
# at a load average of 6-7 from other jobs; less on idle cores).
# Usage: bench/rnn_vs_transformer/run.sh [BUILD_DIR]
#        (env: STEPS BATCH NS COST_NS EVAL SEED OUT SVG)
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${1:-build}
BIN=$BUILD/bench/bench_rnn_vs_transformer
STEPS=${STEPS:-2000}
BATCH=${BATCH:-16}
NS=${NS:-16,64,256}
COST_NS=${COST_NS:-1024}
EVAL=${EVAL:-512}
SEED=${SEED:-1}
OUT=${OUT:-bench/out/rnn_vs_transformer.md}
SVG=${SVG:-docs/rnn-vs-transformer.svg}
if [ ! -x "$BIN" ]; then
  cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$BUILD" -j2 --target bench_rnn_vs_transformer
fi
mkdir -p "$(dirname "$OUT")" "$(dirname "$SVG")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores" | tee "$tmp/load"
args=(--ns "$NS" --cost-ns "$COST_NS" --steps "$STEPS" --batch "$BATCH" --eval "$EVAL" --seed "$SEED")
start=$(date +%s)
LLMKIT_THREADS=1 "$BIN" --models lstm "${args[@]}" --rows "$tmp/lstm.tsv" >/dev/null 2>"$tmp/lstm.log" &
lstm_pid=$!
LLMKIT_THREADS=1 "$BIN" --models gpt "${args[@]}" --rows "$tmp/gpt.tsv" >/dev/null 2>"$tmp/gpt.log"
wait "$lstm_pid"
end=$(date +%s)
{
  echo "recall after N distractors; steps $STEPS x batch $BATCH per model and N; N = $NS trained,"
  echo "N = $COST_NS cost only; $EVAL held-out sequences; seed $SEED; wall time $((end - start)) s"
  cat "$tmp/load"
  echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo
  "$BIN" --report "$tmp/lstm.tsv" --report "$tmp/gpt.tsv" --svg "$SVG"
} | tee "$OUT"
