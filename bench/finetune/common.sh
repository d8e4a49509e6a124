# Sourced by bench/finetune/run.sh and cost.sh, from the repository root: what both need to run
# `llmkit finetune` on one model and data set and to read back what a run cost.
# Set before sourcing: BUILD (the build dir), WHO (the script's name for messages), VAL_N (the
# validation lines a run evaluates on) and NEED (the data files it reads, e.g. "train val").
LLMKIT=$BUILD/llmkit
CACHE=${LLMKIT_CACHE:-$HOME/.cache/llmkit}
MODEL=${MODEL:-$CACHE/models/all-minilm-l6-v2}
NAME=${NAME:-$(basename "$MODEL" .gguf)}
DATA=${DATA:-$CACHE/data/sentiment-en}
MAX_LEN=${MAX_LEN:-64}
BATCH=${BATCH:-16}
THREADS=${THREADS:-2}
POOLING=${POOLING:-}
for f in $NEED; do
  [[ -f $DATA/$f.tsv ]] || { echo "$WHO: $DATA/$f.tsv is missing (scripts/get-data.sh)" >&2; exit 1; }
done
[[ -e $MODEL ]] || { echo "$WHO: $MODEL is missing (scripts/get-models.sh)" >&2; exit 1; }
[[ -x $LLMKIT ]] || { echo "$WHO: build llmkit first ($LLMKIT)" >&2; exit 1; }

# finetune_inputs DIR: the validation subset (the first VAL_N lines of val.tsv) written in DIR.
finetune_inputs() {
  val=$1/val-$VAL_N.tsv
  head -n $((VAL_N + 1)) "$DATA/val.tsv" > "$val"
}

# timed_finetune DIR ARGS...: `llmkit finetune` into DIR on the whole train.tsv (ARGS add the
# method, --limit, --steps, ...), its peak RSS in DIR.rss, stdout in DIR.json, stderr in DIR.log.
timed_finetune() {
  local dir=$1 pool=()
  shift
  [[ -n $POOLING ]] && pool=(--pooling "$POOLING")
  rm -rf "$dir"
  /usr/bin/time -f '%M' -o "$dir.rss" "$LLMKIT" finetune --model "$MODEL" --task classify \
    --train "$DATA/train.tsv" --val "$val" --out "$dir" "${pool[@]}" --batch-size "$BATCH" \
    --max-len "$MAX_LEN" --threads "$THREADS" "$@" > "$dir.json" 2> "$dir.log"
}

# run_stats DIR: "trainable<TAB>all<TAB>peak_rss_mb<TAB>ms_per_step<TAB>saved_bytes" of a finished
# timed_finetune; the time per step is the training time over the steps (evaluations included),
# saved is every .safetensors file --out holds.
run_stats() {
  /usr/bin/python3 - "$1" <<'PY'
import json, os, sys
d = sys.argv[1]
fin = json.loads(open(d + ".json").read().strip().splitlines()[-1])
rss = int(open(d + ".rss").read().split()[-1]) / 1024
saved = sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d)
            if f.endswith(".safetensors") and os.path.isfile(os.path.join(d, f)))
ms = 1000 * fin["train_seconds"] / max(1, fin["steps_run"])
print("\t".join(str(x) for x in [fin["trainable_params"], fin["all_params"], round(rss),
      round(ms, 1), saved]))
PY
}
