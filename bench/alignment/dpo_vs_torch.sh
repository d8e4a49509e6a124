#!/usr/bin/env bash
# DPO training speed, llmkit against PyTorch + PEFT, side by side in one run on the same model
# (SmolLM2-135M-Instruct, the Q4_1 GGUF dequantised to f32 by each side), the same preference
# pairs (--plain prompt/continuation rows), LoRA r 8 on q/v, batches of BATCH pairs cut to
# MAX_LEN tokens, the reference log-probabilities computed once before training on both sides.
# The peer is PyTorch 1.13 (Debian python3-torch) with PEFT 0.13.2 and transformers 4.46.3 from
# the project venv, running TRL's sigmoid loss written out (bench/alignment/dpo_torch.py; TRL
# itself needs PyTorch 2). Prints a Markdown table: ms per step, peak RSS, and the ratio.
# Usage: bench/alignment/dpo_vs_torch.sh PAIRS.jsonl   (env: STEPS timed steps, default 20;
#   BATCH 4; MAX_LEN 64; THREADS 2; BIN build/llmkit). PAIRS: prompt/chosen/rejected JSONL, e.g.
#   the pairs.jsonl that bench/alignment/run.sh writes.
set -euo pipefail
cd "$(dirname "$0")/../.."
PAIRS=${1:?usage: dpo_vs_torch.sh PAIRS.jsonl}
STEPS=${STEPS:-20}
BATCH=${BATCH:-4}
MAX_LEN=${MAX_LEN:-64}
THREADS=${THREADS:-2}
BIN=${BIN:-build/llmkit}
PY=${LLMKIT_PYTHON:-.venv/bin/python}
MODELS=${LLMKIT_MODELS:-$HOME/.cache/llmkit/models}
MODEL=${MODEL:-$MODELS/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf}
for f in "$BIN" "$PY" "$MODEL" "$PAIRS"; do
  [[ -e $f ]] || { echo "dpo_vs_torch: $f is missing (make, scripts/install-deps.sh, scripts/get-models.sh)" >&2; exit 1; }
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
MAX_PROMPT=$((MAX_LEN / 2))
echo "### DPO, SmolLM2-135M LoRA r 8, $BATCH pairs x <= $MAX_LEN tokens, $STEPS steps, $THREADS threads, load $(cut -d' ' -f1-3 /proc/loadavg)"
/usr/bin/time -f '%M' -o "$tmp/rss" "$BIN" dpo --model "$MODEL" --plain --train "$PAIRS" \
  --method lora --steps "$STEPS" --batch-size "$BATCH" --lr 5e-4 --max-len "$MAX_LEN" \
  --max-prompt "$MAX_PROMPT" --threads "$THREADS" --out "$tmp/run" > "$tmp/ours.json" 2> "$tmp/ours.log"
ours=$(/usr/bin/python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print(1000*j["train_seconds"]/j["steps_run"])' "$tmp/ours.json")
ours_mb=$(( $(cat "$tmp/rss") / 1024 ))
torch=$(OMP_NUM_THREADS=$THREADS "$PY" bench/alignment/dpo_torch.py "$MODEL" "$PAIRS" "$STEPS" "$BATCH" "$MAX_LEN" "$MAX_PROMPT" "$THREADS" 2>/dev/null | tail -n1)
/usr/bin/python3 - "$ours" "$ours_mb" "$torch" <<'PY'
import json, sys
ours, ours_mb, peer = float(sys.argv[1]), int(sys.argv[2]), json.loads(sys.argv[3])
print("| implementation | ms/step | peak MB |")
print("|---|---:|---:|")
print(f"| llmkit dpo | {ours:.0f} | {ours_mb} |")
print(f"| PyTorch 1.13 + PEFT 0.13.2 | {peer['ms_per_step']:.0f} | {peer['peak_mb']:.0f} |")
print(f"\nllmkit is {peer['ms_per_step'] / ours:.2f}x the PyTorch + PEFT speed "
      f"({peer['tokens']:.0f} tokens per step on the PyTorch side)")
PY
