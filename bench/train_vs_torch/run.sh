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
row() { /usr/bin/python3 bench/train_vs_torch/table.py row "$1" "$2"; }
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
  [[ -n "${ours:-}" && -n "${best:-}" ]] && /usr/bin/python3 bench/train_vs_torch/table.py ratio "$ours" "$best"
done
