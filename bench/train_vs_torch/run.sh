#!/usr/bin/env bash
# Trains the same GPT configs with llmkit and with PyTorch, side by side in one run, 2 threads,
# and prints a table: tokens/s, ms/step, peak memory, prefill and decode tokens/s, and the ratio.
# PyTorch runs twice: out of the box, and in its best setup here (the OpenMP OpenBLAS with its
# AVX-512 kernels, tcmalloc), as the issue prescribes.  Usage: run.sh [BUILD_DIR]
set -uo pipefail
cd "$(dirname "$0")/../.."
BUILD=${1:-build}
STEPS=${STEPS:-6}
TCMALLOC=$(ls /usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4 2>/dev/null || true)
best_env=(LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp OPENBLAS_CORETYPE=SkylakeX
          OMP_NUM_THREADS=2 ${TCMALLOC:+LD_PRELOAD=$TCMALLOC})
row() {  # name json
  /usr/bin/python3 -c '
import json,sys
name=sys.argv[1]; d=json.loads(sys.argv[2])
print(f"| {name:34s} | {d[\"tokens_per_sec\"]:9.0f} | {d[\"ms_per_step\"]:9.1f} | {d[\"peak_rss_mb\"]:8.0f} | {d[\"prefill_tokens_per_sec\"]:9.0f} | {d[\"decode_tokens_per_sec\"]:8.1f} |")' "$1" "$2"
}
for spec in "configs/bench-6x384.json 8" "configs/gpt2-small.json 4"; do
  set -- $spec
  cfg=$1; batch=$2
  echo "### $(basename "$cfg" .json), batch $batch, $STEPS timed steps"
  echo "| implementation | tokens/s | ms/step | peak MB | prefill t/s | decode t/s |"
  echo "|---|---:|---:|---:|---:|---:|"
  ours=$(LLMKIT_THREADS=2 "$BUILD/bench/bench_train_gpt" "$cfg" "$STEPS" "$batch") && row "llmkit" "$ours"
  best=$(env "${best_env[@]}" /usr/bin/python3 bench/train_vs_torch/torch_gpt.py "$cfg" "$STEPS" "$batch" 2) &&
    row "PyTorch (OpenBLAS SkylakeX+tcmalloc)" "$best"
  plain=$(/usr/bin/python3 bench/train_vs_torch/torch_gpt.py "$cfg" "$STEPS" "$batch" 2) &&
    row "PyTorch (out of the box)" "$plain"
  /usr/bin/python3 -c '
import json,sys
o,b=json.loads(sys.argv[1]),json.loads(sys.argv[2])
print(f"\nratio llmkit / PyTorch best: training {o[\"tokens_per_sec\"]/b[\"tokens_per_sec\"]:.2f}x, peak memory {o[\"peak_rss_mb\"]/b[\"peak_rss_mb\"]:.2f}x, prefill {o[\"prefill_tokens_per_sec\"]/b[\"prefill_tokens_per_sec\"]:.2f}x, decode {o[\"decode_tokens_per_sec\"]/b[\"decode_tokens_per_sec\"]:.2f}x\n")' "$ours" "$best"
done
