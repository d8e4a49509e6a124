#!/usr/bin/env bash
# Controlled sentiment generation (the DPO paper's IMDb experiment, with the human-rated movie
# review snippets of the vaderSentiment sdist standing in for IMDb), on SmolLM2-135M-Instruct:
#   reward   all-MiniLM-L6-v2 fine-tuned to predict the human sentiment score (-4..+4) of a
#            snippet (llmkit finetune --task regress): the reward of every method
#   sft      the policy learns to continue review prefixes (LoRA, plain text): the reference
#   pairs    SAMPLES continuations of PAIRS_N training prefixes from the SFT policy, the best and
#            worst by reward as (chosen, rejected) (llmkit reward eval --pairs-out); the last
#            DPO_VAL pairs are held out (DPO's rewards/accuracies and margins at evaluation)
#   pft      Preferred-FT (the DPO paper's baseline): SFT on the chosen continuations only
#   dpo      one run per beta in BETAS on those pairs (LoRA; the SFT policy as reference)
#   ppo      one run per KL coefficient in KLS (LoRA; the SFT policy as reference)
#   eval     every policy on EVAL_N held-out prefixes, EVAL_SAMPLES each: mean reward and KL to
#            the SFT policy
# and writes $OUT/frontier.tsv and $OUT/frontier.svg (reward against KL: the frontier plot).
# Each stage is skipped when its result exists (delete the directory to redo it).
# Usage: bench/alignment/run.sh   (env: OUT, THREADS, the sizes below). Needs `make data` and
# scripts/get-models.sh. See docs/alignment.md for the figures this produced.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-runs/alignment}
THREADS=${THREADS:-2}
BIN=${BIN:-build/llmkit}
PLOT=${PLOT:-build/bench/bench_plot}
DATA=${LLMKIT_DATA:-$HOME/.cache/llmkit/data}
MODELS=${LLMKIT_MODELS:-$HOME/.cache/llmkit/models}
POLICY=${POLICY:-$MODELS/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf}
ENCODER=${ENCODER:-$MODELS/all-minilm-l6-v2}
REWARD_STEPS=${REWARD_STEPS:-400}
SFT_STEPS=${SFT_STEPS:-80}
PAIRS_N=${PAIRS_N:-300}
SAMPLES=${SAMPLES:-4}
DPO_VAL=${DPO_VAL:-30}
PFT_STEPS=${PFT_STEPS:-100}
PFT_LR=${PFT_LR:-5e-4}
BETAS=${BETAS:-0.1 0.5}
DPO_STEPS=${DPO_STEPS:-200}
DPO_LR=${DPO_LR:-5e-4}
KLS=${KLS:-0.05 0.2}
PPO_STEPS=${PPO_STEPS:-40}
PPO_LR=${PPO_LR:-1e-3}
EVAL_N=${EVAL_N:-100}
EVAL_SAMPLES=${EVAL_SAMPLES:-2}
NEW=${NEW:-20}
for f in "$BIN" "$POLICY" "$ENCODER" "$DATA/reviews/train.jsonl" "$DATA/sentiment-en-score/train.tsv"; do
  [[ -e $f ]] || { echo "alignment: $f is missing (make, make data, scripts/get-models.sh)" >&2; exit 1; }
done
mkdir -p "$OUT"
T="--threads $THREADS"
stage() { echo "== $(date +%T) $*" >&2; }

if [[ ! -f $OUT/reward/config.json ]]; then
  stage "reward model: MiniLM regression on the human sentiment scores"
  "$BIN" finetune --model "$ENCODER" --task regress --method full --pooling mean \
    --train "$DATA/sentiment-en-score/train.tsv" --val "$DATA/sentiment-en-score/val.tsv" \
    --steps "$REWARD_STEPS" --eval-interval "$REWARD_STEPS" --lr 5e-5 $T --out "$OUT/reward" \
    > "$OUT/reward.json"
fi
head -n 200 "$DATA/reviews/val.jsonl" > "$OUT/sft-val.jsonl"
if [[ ! -f $OUT/sft/adapter_config.json ]]; then
  stage "sft: continue review prefixes"
  "$BIN" sft --model "$POLICY" --plain --train "$DATA/reviews/train.jsonl" \
    --val "$OUT/sft-val.jsonl" --method lora --steps "$SFT_STEPS" --eval-interval "$SFT_STEPS" \
    --batch-size 8 --max-len 64 $T --out "$OUT/sft" > "$OUT/sft.json"
fi
if [[ ! -f $OUT/pairs.jsonl ]]; then
  stage "pairs: $SAMPLES samples of $PAIRS_N prefixes, ranked by the reward model"
  "$BIN" reward eval --policy "$OUT/sft" --reference "$OUT/sft" --reward "$OUT/reward" \
    --prompts "$DATA/reviews-prompts/train.jsonl" --limit "$PAIRS_N" --samples "$SAMPLES" \
    --max-new-tokens "$NEW" --seed 7 $T --pairs-out "$OUT/pairs.jsonl" > "$OUT/pairs.json"
fi
head -n "-$DPO_VAL" "$OUT/pairs.jsonl" > "$OUT/pairs-train.jsonl"
tail -n "$DPO_VAL" "$OUT/pairs.jsonl" > "$OUT/pairs-val.jsonl"
if [[ ! -f $OUT/pft/adapter_config.json ]]; then
  stage "pft: Preferred-FT, SFT on the chosen continuations"
  for split in train val; do
    /usr/bin/python3 -c 'import json,sys
for l in open(sys.argv[1], encoding="utf-8"):
    p = json.loads(l); print(json.dumps({"prompt": p["prompt"], "completion": p["chosen"]}))' \
      "$OUT/pairs-$split.jsonl" > "$OUT/pft-$split.jsonl"
  done
  "$BIN" sft --model "$OUT/sft" --plain --train "$OUT/pft-train.jsonl" --val "$OUT/pft-val.jsonl" \
    --method lora --steps "$PFT_STEPS" --eval-interval "$PFT_STEPS" --batch-size 8 --lr "$PFT_LR" \
    --max-len 64 $T --out "$OUT/pft" > "$OUT/pft.json"
fi
for b in $BETAS; do
  [[ -f $OUT/dpo-$b/adapter_config.json ]] && continue
  stage "dpo: beta $b"
  "$BIN" dpo --model "$OUT/sft" --plain --train "$OUT/pairs-train.jsonl" \
    --val "$OUT/pairs-val.jsonl" --beta "$b" --method lora --steps "$DPO_STEPS" \
    --eval-interval "$((DPO_STEPS >= 4 ? DPO_STEPS / 4 : 1))" --batch-size 4 --lr "$DPO_LR" --max-len 64 \
    $T --out "$OUT/dpo-$b" > "$OUT/dpo-$b.json"
done
for k in $KLS; do
  [[ -f $OUT/ppo-$k/adapter_config.json ]] && continue
  stage "ppo: KL coefficient $k"
  "$BIN" ppo --model "$OUT/sft" --reward "$OUT/reward" \
    --prompts "$DATA/reviews-prompts/train.jsonl" --kl-coef "$k" --method lora \
    --steps "$PPO_STEPS" --batch-size 16 --mini-batch-size 8 --lr "$PPO_LR" \
    --max-new-tokens "$NEW" --temperature 1 $T --out "$OUT/ppo-$k" > "$OUT/ppo-$k.json"
done
printf 'method\tparam\tkl\tscore\tscore_std\tseconds\n' > "$OUT/frontier.tsv.part"
evaluate() {  # evaluate METHOD PARAM DIR
  local j="$OUT/eval-$1-$2.json"
  if [[ ! -s $j ]]; then
    stage "eval: $1 $2"
    "$BIN" reward eval --policy "$3" --reference "$OUT/sft" --reward "$OUT/reward" \
      --prompts "$DATA/reviews-prompts/test.jsonl" --limit "$EVAL_N" --samples "$EVAL_SAMPLES" \
      --max-new-tokens "$NEW" --seed 11 $T --samples-out "$OUT/samples-$1-$2.jsonl" > "$j"
  fi
  /usr/bin/python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print("\t".join([sys.argv[2], sys.argv[3], "%.4f" % j["kl"], "%.4f" % j["score"], "%.4f" % j["score_std"], "%.0f" % j["seconds"]]))' "$j" "$1" "$2" >> "$OUT/frontier.tsv.part"
}
evaluate sft 0 "$OUT/sft"
evaluate pft 0 "$OUT/pft"
for b in $BETAS; do evaluate dpo "$b" "$OUT/dpo-$b"; done
for k in $KLS; do evaluate ppo "$k" "$OUT/ppo-$k"; done
mv "$OUT/frontier.tsv.part" "$OUT/frontier.tsv"
column -t -s $'\t' "$OUT/frontier.tsv"
if [[ -x $PLOT ]]; then
  "$PLOT" --tsv "$OUT/frontier.tsv" --x kl --y score --series method --markers \
    --title "Controlled sentiment: reward vs KL to the SFT policy (SmolLM2-135M)" \
    --x-label "KL(policy || SFT), nats per sample" --y-label "reward (predicted human score)" \
    --out "$OUT/frontier.svg"
fi
if [[ ! -f $OUT/rm-human/adapter_config.json ]]; then
  stage "reward train (apart from the frontier): SmolLM2 + a score head on pairs of human-rated snippets"
  # Human preference pairs from the human ratings: two snippets of the same split whose mean
  # ratings differ by at least 1 (of -4..+4), the better-rated one chosen, under one prompt.
  /usr/bin/python3 - "$DATA/sentiment-en-score" "$OUT" <<'PY'
import csv, json, random, sys
src, out = sys.argv[1:]
for split, n in (("train", 2000), ("val", 300)):
    rows = [(r["text"], float(r["label"])) for r in csv.DictReader(open(f"{src}/{split}.tsv", encoding="utf-8"), delimiter="\t")]
    g = random.Random(5)
    with open(f"{out}/human-pairs-{split}.jsonl", "w", encoding="utf-8") as f:
        made = 0
        while made < n:
            (a, sa), (b, sb) = g.sample(rows, 2)
            if abs(sa - sb) < 1:
                continue
            c, r = (a, b) if sa > sb else (b, a)
            f.write(json.dumps({"prompt": "Write a movie review.", "chosen": c, "rejected": r}) + "\n")
            made += 1
PY
  "$BIN" reward train --model "$POLICY" --plain --train "$OUT/human-pairs-train.jsonl" \
    --val "$OUT/human-pairs-val.jsonl" --method lora --steps "${RM_STEPS:-100}" \
    --eval-interval "${RM_STEPS:-100}" --batch-size 8 --max-len 80 $T --out "$OUT/rm-human" \
    > "$OUT/rm-human.json"
fi
