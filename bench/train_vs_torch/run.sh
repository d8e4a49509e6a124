#!/usr/bin/env bash
# Trains the same GPT configs with llmkit and with PyTorch, side by side in one run, 2 threads,
# and prints a table: tokens/s, ms/step, peak memory, prefill and decode tokens/s, and the ratios.
# Two PyTorch peers, each in its best setup here (2 threads, tcmalloc):
#   1.13 (Debian python3-torch, /usr/bin/python3): no fused attention (scaled_dot_product_attention
#        came in 2.0), explicit softmax(q k^T) v; BLAS = the OpenMP OpenBLAS with its AVX-512 kernels
#   2.x  (PyPI, .venv-bench from scripts/install-deps.sh --bench): F.scaled_dot_product_attention,
#        its own MKL and oneDNN
# and 1.13 out of the box (libblas.so.3 as Debian resolves it, glibc malloc) on the first config.
# Usage: run.sh [BUILD_DIR]   (env: STEPS timed steps after 2 warm-up ones, default 3;
#   PLAIN=all|first|none for the out-of-the-box rows, default first;
#   CONFIGS="CONFIG.json:BATCH ...", default "configs/bench-6x384.json:8 configs/gpt2-small.json:4")
set -uo pipefail
cd "$(dirname "$0")/../.."
BUILD=${1:-build}
STEPS=${STEPS:-3}
PLAIN=${PLAIN:-first}
CONFIGS=${CONFIGS:-configs/bench-6x384.json:8 configs/gpt2-small.json:4}
TORCH2=${LLMKIT_BENCH_VENV:-.venv-bench}/bin/python
TCMALLOC=$(ls /usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4 2>/dev/null || true)
common=(OMP_NUM_THREADS=2 ${TCMALLOC:+LD_PRELOAD=$TCMALLOC})
torch1_env=("${common[@]}" LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp OPENBLAS_CORETYPE=SkylakeX)
table() { /usr/bin/python3 bench/train_vs_torch/table.py "$@"; }
[[ -x $TORCH2 ]] || echo "note: $TORCH2 missing (scripts/install-deps.sh --bench): no PyTorch 2.x rows"
first=1
for spec in $CONFIGS; do
  cfg=${spec%:*}; batch=${spec##*:}
  echo "### $(basename "$cfg" .json), batch $batch, $STEPS timed steps, load before $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "| implementation | tokens/s | ms/step | peak MB | prefill t/s | decode t/s |"
  echo "|---|---:|---:|---:|---:|---:|"
  ours=$(LLMKIT_THREADS=2 "$BUILD/bench/bench_train_gpt" "$cfg" "$STEPS" "$batch") && table row "llmkit" "$ours"
  t1=$(env "${torch1_env[@]}" /usr/bin/python3 bench/train_vs_torch/torch_gpt.py "$cfg" "$STEPS" "$batch" 2) &&
    table row "PyTorch 1.13 best (no fused attn)" "$t1"
  t2=""
  if [[ -x $TORCH2 ]]; then
    t2=$(env "${common[@]}" "$TORCH2" bench/train_vs_torch/torch_gpt.py "$cfg" "$STEPS" "$batch" 2 2>/dev/null) &&
      table row "PyTorch 2.x best (SDPA)" "$t2"
  fi
  if [[ $PLAIN == all || ($PLAIN == first && $first == 1) ]]; then
    plain=$(/usr/bin/python3 bench/train_vs_torch/torch_gpt.py "$cfg" "$STEPS" "$batch" 2) &&
      table row "PyTorch 1.13 out of the box" "$plain"
  fi
  echo
  [[ -n "${ours:-}" && -n "${t1:-}" ]] && table ratio "$ours" "$t1"
  [[ -n "${ours:-}" && -n "${t2:-}" ]] && table ratio "$ours" "$t2"
  echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo
  first=0
done
