#!/usr/bin/env bash
# Quantised inference, llmkit vs llama.cpp side by side in one run, on the same GGUF files:
# SmolLM2-135M-Instruct and two random-initialised llama layouts (6 x 384 and the GPT-2-size
# 12 x 768) at each weight type; for each file `llmkit bench` and llama.cpp (llamacpp_bench.py,
# measured the same way: pp = PP random ids in one batch from an empty cache, tg = TG one-token
# evals from an empty cache, one warm-up, REPS timed runs, mean +- sd), with load time and peak
# RSS; the machine's read bandwidth (bench_bandwidth, THREADS threads) before and after, so that
# decode can be read as a fraction of it (weight bytes x tokens/s / bandwidth); and, on the f32
# files, prefill against PyTorch (torch_prefill.py: 1.13 from Debian, 2.x from .venv-bench when
# present). Files and how they are made: common.sh. Writes $QV_OUT/records.jsonl and the
# markdown table $QV_OUT/table.md, and prints the table. Not a test: no thresholds.
# Usage: bench/quant_vs_llamacpp/run.sh [BUILD_DIR]
#   env: THREADS=2 PP=512 TG=128 REPS=3 TYPES="f32 f16 q8_0 q4_0 q4_1 q4_k"
#        SETS="smollm2 llama-6x384 llama-12x768" QUANTIZER=auto|llmkit|llama.cpp TORCH=1 VENV=.venv
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${1:-build}
PP=${PP:-512}
TG=${TG:-128}
REPS=${REPS:-3}
TYPES=${TYPES:-f32 f16 q8_0 q4_0 q4_1 q4_k}
SETS=${SETS:-smollm2 llama-6x384 llama-12x768}
TORCH=${TORCH:-1}
source bench/quant_vs_llamacpp/common.sh
"$llmkit" bench --help >/dev/null 2>&1 || die "$llmkit has no bench command"
[[ -x $BUILD/bench/bench_bandwidth ]] || die "$BUILD/bench/bench_bandwidth not built"
TORCH2=${LLMKIT_BENCH_VENV:-.venv-bench}/bin/python
TCMALLOC=$(ls /usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4 2>/dev/null || true)
# PyTorch in its best setup here, as bench/train_vs_torch runs it.
torch_common=(OMP_NUM_THREADS=$THREADS ${TCMALLOC:+LD_PRELOAD=$TCMALLOC})
torch1_env=("${torch_common[@]}" LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp
  OPENBLAS_CORETYPE=SkylakeX)
# dims_of SET: n_layer n_embd n_head n_kv_head ffn vocab (the shapes common.sh's files have).
dims_of() {
  case $1 in
    smollm2) echo 30 576 9 3 1536 49152 ;;
    llama-6x384) echo 6 384 6 6 1024 49152 ;;
    llama-12x768) echo 12 768 12 12 2048 49152 ;;
  esac
}
json_or_null() { local l; l=$(tail -n 1) && [[ $l == \{* ]] && echo "$l" || echo null; }

rec=$QV_OUT/records.jsonl
: >"$rec"
load_before=$(loadavg)
echo "load before: $load_before" >&2
bw_before=$("$BUILD/bench/bench_bandwidth" --threads "$THREADS")
for set in $SETS; do
  for type in $TYPES; do
    f=$(file_of "$set" "$type") || { echo "no $set $type file; skipped" >&2; continue; }
    echo "== $set $type ($(loadavg))" >&2
    ours=$("$llmkit" bench --model "$f" --threads "$THREADS" -p "$PP" -n "$TG" -r "$REPS" |
      json_or_null) || ours=null
    peer=$("$py" $here/llamacpp_bench.py "$f" "$THREADS" "$PP" "$TG" "$REPS" | json_or_null) ||
      peer=null
    torch1=null torch2=null
    if [[ $type == f32 && $TORCH == 1 && $PP -gt 0 ]]; then
      torch1=$(env "${torch1_env[@]}" /usr/bin/python3 $here/torch_prefill.py $(dims_of "$set") \
        "$PP" "$REPS" "$THREADS" | json_or_null) || torch1=null
      if [[ -x $TORCH2 ]]; then
        torch2=$(env "${torch_common[@]}" "$TORCH2" $here/torch_prefill.py $(dims_of "$set") \
          "$PP" "$REPS" "$THREADS" 2>/dev/null | json_or_null) || torch2=null
      fi
    fi
    echo "{\"set\": \"$set\", \"type\": \"$type\", \"file\": \"$f\","\
      "\"file_bytes\": $(stat -c %s "$f"),"\
      "\"quantizer\": \"$([[ $type == f32 ]] && echo none || echo "$QUANTIZER")\","\
      "\"load\": \"$(loadavg)\", \"ours\": $ours, \"peer\": $peer, \"torch1\": $torch1,"\
      "\"torch2\": $torch2}" >>"$rec"
  done
done
bw_after=$("$BUILD/bench/bench_bandwidth" --threads "$THREADS")
load_after=$(loadavg)
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)
/usr/bin/python3 $here/table.py "$rec" "$bw_before" "$bw_after" "$load_before" "$load_after" \
  "$(nproc) cores, $cpu" "$PP" "$TG" | tee "$QV_OUT/table.md"
