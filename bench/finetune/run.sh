#!/usr/bin/env bash
# The fine-tuning experiments of docs/fine-tuning.md (issue 12): test accuracy against the number
# of labelled examples for four ways to use a model on a new task --
#   scratch  the same architecture and tokenizer, weights re-initialised: labelled data only
#   head     pretrained body frozen, a new head trained (transfer learning, cheapest)
#   full     every weight fine-tuned
#   lora     body frozen, LoRA adapters + head trained
# -- plus qlora at the largest N, with trainable parameters, peak RSS, time per step and the size
# of what is saved. Each run is `llmkit finetune` then `llmkit classify --data test.tsv`; one row
# per run goes to $OUT/results.tsv, and the plots to docs/ ($SVG_DIR).
# Usage: bench/finetune/run.sh [BUILD_DIR]
#   env: MODEL (a path; default all-MiniLM-L6-v2 from scripts/get-models.sh), NAME (its label),
#        DATA (a dir with train.tsv val.tsv test.tsv; default sentiment-en from scripts/get-data.sh),
#        NS ("50 200 1000 all"), METHODS ("scratch head full lora"), QLORA (1: a qlora run at the
#        last N), MAX_LEN (64), BATCH (16), SEED (1), OUT, SVG_DIR, THREADS (2),
#        POOLING (cls | mean for encoders; default the model's), LR_SCRATCH (5e-4: a network
#        trained from random weights wants a pretraining-sized rate, not fine-tuning's 2e-5),
#        VAL_N (200: validate during training on the first VAL_N validation lines; the reported
#        accuracy is on the whole test file), LR_FULL, LR_HEAD, LR_LORA (empty: finetune's
#        defaults, 2e-5 / 1e-2 / 1e-3)
# Steps per N are fixed (STEPS_<N>, e.g. STEPS_50=60) so every method sees the same examples.
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${1:-build}
LLMKIT=$BUILD/tools/llmkit/llmkit
[[ -x $LLMKIT ]] || LLMKIT=$BUILD/llmkit
CACHE=${LLMKIT_CACHE:-$HOME/.cache/llmkit}
MODEL=${MODEL:-$CACHE/models/all-minilm-l6-v2}
NAME=${NAME:-$(basename "$MODEL" .gguf)}
DATA=${DATA:-$CACHE/data/sentiment-en}
NS=${NS:-50 200 1000 all}
METHODS=${METHODS-scratch head full lora}  # empty: none (e.g. only the qlora run)
QLORA=${QLORA:-1}
MAX_LEN=${MAX_LEN:-64}
BATCH=${BATCH:-16}
SEED=${SEED:-1}
THREADS=${THREADS:-2}
POOLING=${POOLING:-}
LR_SCRATCH=${LR_SCRATCH:-5e-4}
VAL_N=${VAL_N:-200}
LR_FULL=${LR_FULL:-}
LR_HEAD=${LR_HEAD:-}
LR_LORA=${LR_LORA:-}
OUT=${OUT:-bench/out/finetune/$NAME-$(basename "$DATA")}
SVG_DIR=${SVG_DIR:-docs}
for f in train val test; do
  [[ -f $DATA/$f.tsv ]] || { echo "finetune bench: $DATA/$f.tsv is missing (scripts/get-data.sh)" >&2; exit 1; }
done
[[ -e $MODEL ]] || { echo "finetune bench: $MODEL is missing (scripts/get-models.sh)" >&2; exit 1; }
[[ -x $LLMKIT ]] || { echo "finetune bench: build llmkit first ($LLMKIT)" >&2; exit 1; }
steps_for() {  # about 10 epochs at 50 examples down to ~1 epoch of the whole set
  local var="STEPS_$1"
  if [[ -n ${!var:-} ]]; then echo "${!var}"; return; fi
  case $1 in 50) echo 60 ;; 200) echo 120 ;; 1000) echo 250 ;; *) echo 400 ;; esac
}
mkdir -p "$OUT/runs"
val=$OUT/val-$VAL_N.tsv
head -n $((VAL_N + 1)) "$DATA/val.tsv" > "$val"
pool=()
[[ -n $POOLING ]] && pool=(--pooling "$POOLING")
results=$OUT/results.tsv
[[ -f $results ]] || printf 'model\tdata\tmethod\tn\tsteps\ttest_accuracy\ttest_macro_f1\ttrainable\tall\tseconds\tpeak_rss_mb\tms_per_step\tsaved_bytes\n' > "$results"
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores; $LLMKIT on $MODEL, $DATA"
run() {  # METHOD N
  local method=$1 n=$2 steps limit=()
  steps=$(steps_for "$n")
  [[ $n == all ]] || limit=(--limit "$n")
  local dir=$OUT/runs/$method-$n extra=()
  case $method in
    scratch) extra=(--method full --from-scratch --lr "$LR_SCRATCH") ;;
    full) extra=(--method full ${LR_FULL:+--lr "$LR_FULL"}) ;;
    head) extra=(--method head ${LR_HEAD:+--lr "$LR_HEAD"}) ;;
    *) extra=(--method "$method" ${LR_LORA:+--lr "$LR_LORA"}) ;;
  esac
  rm -rf "$dir"
  local t0 t1
  t0=$(date +%s.%N)
  if ! /usr/bin/time -f '%M' -o "$dir.rss" "$LLMKIT" finetune --model "$MODEL" --task classify \
      --train "$DATA/train.tsv" --val "$val" --out "$dir" "${extra[@]}" "${limit[@]}" "${pool[@]}" \
      --steps "$steps" --batch-size "$BATCH" --max-len "$MAX_LEN" --seed "$SEED" \
      --threads "$THREADS" --eval-interval "$steps" > "$dir.json" 2> "$dir.log"; then
    echo "finetune bench: $method N=$n failed (see $dir.log)" >&2
    printf '%s\t%s\t%s\t%s\t%s\tfailed\t\t\t\t\t\t\t\n' "$NAME" "$(basename "$DATA")" "$method" "$n" "$steps" >> "$results"
    return
  fi
  t1=$(date +%s.%N)
  "$LLMKIT" classify --model "$dir" --data "$DATA/test.tsv" --threads "$THREADS" > "$dir.test.json" 2> "$dir.test.log"
  /usr/bin/python3 - "$dir" "$NAME" "$(basename "$DATA")" "$method" "$n" "$steps" "$t0" "$t1" >> "$results" <<'PY'
import json, os, sys
d, name, data, method, n, steps, t0, t1 = sys.argv[1:]
fin = json.loads(open(d + ".json").read().strip().splitlines()[-1])
test = json.loads(open(d + ".test.json").read().strip().splitlines()[-1])
rss = int(open(d + ".rss").read().split()[-1]) / 1024
saved = sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d)
            if f.endswith(".safetensors") and os.path.isfile(os.path.join(d, f)))
secs = float(t1) - float(t0)
ms = 1000 * fin["train_seconds"] / max(1, fin["steps_run"])  # evaluations included
print("\t".join(str(x) for x in [name, data, method, n, steps, round(test["accuracy"], 4),
      round(test["macro_f1"], 4), fin["trainable_params"], fin["all_params"], round(secs, 1),
      round(rss), round(ms, 1), saved]))
PY
  tail -1 "$results"
}
last_n=${NS##* }
for n in $NS; do
  for m in $METHODS; do run "$m" "$n"; done
done
[[ $QLORA == 1 ]] && run qlora "$last_n"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
PLOT=$BUILD/bench/bench_plot
if [[ -x $PLOT ]]; then
  # "all" has no number: plot it at the training set's size.
  total=$(($(wc -l < "$DATA/train.tsv") - 1))
  sed "s/\tall\t/\t$total\t/" "$results" > "$OUT/results-numeric.tsv"
  "$PLOT" --tsv "$OUT/results-numeric.tsv" --x n --y test_accuracy --series method --log2-x \
    --markers --legend-outside \
    --where "model=$NAME" --title "$NAME on $(basename "$DATA"): test accuracy" \
    --x-label "log2 labelled training examples" --y-label "test accuracy" \
    --out "$SVG_DIR/finetune-$NAME-$(basename "$DATA").svg"
fi
column -t -s $'\t' "$results"
