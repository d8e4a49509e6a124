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
METHODS=${METHODS:-full head lora qlora:q8_0 qlora:q4_0}
STEPS=${STEPS:-30}
VAL_N=${VAL_N:-16}
WHO="finetune cost" NEED="train val"
source bench/finetune/common.sh
OUT=${OUT:-bench/out/finetune/cost-$NAME}
mkdir -p "$OUT"
finetune_inputs "$OUT"
table=$OUT/cost.tsv
printf 'model\tmethod\ttrainable\tall\ttrainable_pct\tadamw_state_mb\tpeak_rss_mb\tms_per_step\tsaved_bytes\n' > "$table"
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores; $MODEL, $STEPS steps of $BATCH, $THREADS threads"
for spec in $METHODS; do
  method=${spec%%:*} type=
  [[ $spec == *:* ]] && type=${spec#*:}
  dir=$OUT/$method${type:+-$type} extra=()
  [[ -n $type ]] && extra=(--qlora-type "$type")
  if ! timed_finetune "$dir" --method "$method" "${extra[@]}" --steps "$STEPS" \
      --eval-interval "$STEPS"; then
    echo "finetune cost: $spec failed (see $dir.log)" >&2
    continue
  fi
  IFS=$'\t' read -r trainable all rss ms saved < <(run_stats "$dir")
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$NAME" "$spec" "$trainable" "$all" \
    "$(awk "BEGIN{printf \"%.4f\", 100 * $trainable / $all}")" \
    "$(awk "BEGIN{printf \"%.2f\", 8 * $trainable / 1048576}")" "$rss" "$ms" "$saved" >> "$table"
  tail -1 "$table"
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
column -t -s $'\t' "$table"
