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
NS=${NS:-50 200 1000 all}
METHODS=${METHODS-scratch head full lora}  # empty: none (e.g. only the qlora run)
QLORA=${QLORA:-1}
SEED=${SEED:-1}
LR_SCRATCH=${LR_SCRATCH:-5e-4}
VAL_N=${VAL_N:-200}
LR_FULL=${LR_FULL:-}
LR_HEAD=${LR_HEAD:-}
LR_LORA=${LR_LORA:-}
WHO="finetune bench" NEED="train val test"
source bench/finetune/common.sh
OUT=${OUT:-bench/out/finetune/$NAME-$(basename "$DATA")}
SVG_DIR=${SVG_DIR:-docs}
steps_for() {  # about 10 epochs at 50 examples down to ~1 epoch of the whole set
  local var="STEPS_$1"
  if [[ -n ${!var:-} ]]; then echo "${!var}"; return; fi
  case $1 in 50) echo 60 ;; 200) echo 120 ;; 1000) echo 250 ;; *) echo 400 ;; esac
}
mkdir -p "$OUT/runs"
finetune_inputs "$OUT"
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
  local t0 t1
  t0=$(date +%s.%N)
  if ! timed_finetune "$dir" "${extra[@]}" "${limit[@]}" --steps "$steps" --seed "$SEED" \
      --eval-interval "$steps"; then
    echo "finetune bench: $method N=$n failed (see $dir.log)" >&2
    printf '%s\t%s\t%s\t%s\t%s\tfailed\t\t\t\t\t\t\t\n' "$NAME" "$(basename "$DATA")" "$method" "$n" "$steps" >> "$results"
    return
  fi
  t1=$(date +%s.%N)
  "$LLMKIT" classify --model "$dir" --data "$DATA/test.tsv" --threads "$THREADS" > "$dir.test.json" 2> "$dir.test.log"
  local acc trainable all rss ms saved
  acc=$(/usr/bin/python3 -c 'import json, sys
t = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
print(round(t["accuracy"], 4), round(t["macro_f1"], 4), sep="\t")' "$dir.test.json")
  IFS=$'\t' read -r trainable all rss ms saved < <(run_stats "$dir")
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$NAME" "$(basename "$DATA")" "$method" \
    "$n" "$steps" "$acc" "$trainable" "$all" "$(awk "BEGIN{printf \"%.1f\", $t1 - $t0}")" "$rss" "$ms" \
    "$saved" >> "$results"
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
