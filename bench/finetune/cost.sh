#!/usr/bin/env bash
# What each fine-tuning method costs (docs/fine-tuning.md, "LoRA against full fine-tuning"):
# trainable parameters, AdamW state (two f32 moments per trainable parameter), peak RSS, time per
# optimizer step and the bytes `--out` holds, for full / head / lora / qlora (q8_0, q4_0) on the
# same data, batch and length. Each method trains STEPS steps on the whole training file and
# validates once, at the end, on VAL_N lines, so the time is the training step's. Run it on an
# idle machine: the times are the point. One row per method goes to $OUT/cost.tsv.
# Usage: bench/finetune/cost.sh [BUILD_DIR]
#   env: MODEL, NAME, DATA (as run.sh), METHODS ("full head lora qlora:q8_0 qlora:q4_0"),
#        STEPS (30), BATCH (16), MAX_LEN (64), POOLING, THREADS (2), VAL_N (16), OUT
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${1:-build}
LLMKIT=$BUILD/llmkit
CACHE=${LLMKIT_CACHE:-$HOME/.cache/llmkit}
MODEL=${MODEL:-$CACHE/models/all-minilm-l6-v2}
NAME=${NAME:-$(basename "$MODEL" .gguf)}
DATA=${DATA:-$CACHE/data/sentiment-en}
METHODS=${METHODS:-full head lora qlora:q8_0 qlora:q4_0}
STEPS=${STEPS:-30}
BATCH=${BATCH:-16}
MAX_LEN=${MAX_LEN:-64}
POOLING=${POOLING:-}
THREADS=${THREADS:-2}
VAL_N=${VAL_N:-16}
OUT=${OUT:-bench/out/finetune/cost-$NAME}
[[ -x $LLMKIT ]] || { echo "finetune cost: build llmkit first ($LLMKIT)" >&2; exit 1; }
[[ -e $MODEL ]] || { echo "finetune cost: $MODEL is missing (scripts/get-models.sh)" >&2; exit 1; }
[[ -f $DATA/train.tsv && -f $DATA/val.tsv ]] || {
  echo "finetune cost: $DATA/{train,val}.tsv are missing (scripts/get-data.sh)" >&2; exit 1; }
mkdir -p "$OUT"
val=$OUT/val-$VAL_N.tsv
head -n $((VAL_N + 1)) "$DATA/val.tsv" > "$val"
pool=()
[[ -n $POOLING ]] && pool=(--pooling "$POOLING")
table=$OUT/cost.tsv
printf 'model\tmethod\ttrainable\tall\ttrainable_pct\tadamw_state_mb\tpeak_rss_mb\tms_per_step\tsaved_bytes\n' > "$table"
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores; $MODEL, $STEPS steps of $BATCH, $THREADS threads"
for spec in $METHODS; do
  method=${spec%%:*} type=
  [[ $spec == *:* ]] && type=${spec#*:}
  dir=$OUT/$method${type:+-$type} extra=()
  [[ -n $type ]] && extra=(--qlora-type "$type")
  rm -rf "$dir"
  if ! /usr/bin/time -f '%M' -o "$dir.rss" "$LLMKIT" finetune --model "$MODEL" --task classify \
      --train "$DATA/train.tsv" --val "$val" --out "$dir" --method "$method" "${extra[@]}" \
      "${pool[@]}" --steps "$STEPS" --batch-size "$BATCH" --max-len "$MAX_LEN" \
      --threads "$THREADS" --eval-interval "$STEPS" > "$dir.json" 2> "$dir.log"; then
    echo "finetune cost: $spec failed (see $dir.log)" >&2
    continue
  fi
  /usr/bin/python3 - "$dir" "$NAME" "$spec" >> "$table" <<'PY'
import json, os, sys
d, name, spec = sys.argv[1:]
fin = json.loads(open(d + ".json").read().strip().splitlines()[-1])
rss = int(open(d + ".rss").read().split()[-1]) / 1024
saved = sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d)
            if f.endswith(".safetensors") and os.path.isfile(os.path.join(d, f)))
t, a = fin["trainable_params"], fin["all_params"]
print("\t".join(str(x) for x in [name, spec, t, a, round(100 * t / a, 4), round(8 * t / 2**20, 2),
      round(rss), round(1000 * fin["train_seconds"] / max(1, fin["steps_run"]), 1), saved]))
PY
  tail -1 "$table"
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
column -t -s $'\t' "$table"
