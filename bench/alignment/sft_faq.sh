#!/usr/bin/env bash
# SFT before / after (the notes' 지도 미세 조정): SmolLM2-135M-Instruct tuned with LoRA on the
# Debian FAQ (English and Korean) and the Python FAQ, then the base model and the tuned one
# answer the held-out Debian FAQ questions (greedy, the model's chat template), side by side in
# $OUT/answers.md with the FAQ's own answer. Usage: bench/alignment/sft_faq.sh (env: OUT, STEPS,
# LR, THREADS; LR 2e-3 by default: 40 steps at sft's LoRA default of 2e-4 barely move the
# answers). Needs `make data` and scripts/get-models.sh. See docs/alignment.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-runs/sft-faq}
THREADS=${THREADS:-2}
STEPS=${STEPS:-40}
LR=${LR:-2e-3}
BIN=${BIN:-build/llmkit}
DATA=${LLMKIT_DATA:-$HOME/.cache/llmkit/data}
MODELS=${LLMKIT_MODELS:-$HOME/.cache/llmkit/models}
BASE=${BASE:-$MODELS/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf}
NEW=${NEW:-80}
for f in "$BIN" "$BASE" "$DATA/faq-debian/train.jsonl" "$DATA/faq-python/train.jsonl"; do
  [[ -e $f ]] || { echo "sft_faq: $f is missing (make, make data, scripts/get-models.sh)" >&2; exit 1; }
done
mkdir -p "$OUT"
cat "$DATA/faq-debian/train.jsonl" "$DATA/faq-python/train.jsonl" > "$OUT/train.jsonl"
if [[ ! -f $OUT/model/adapter_config.json ]]; then
  "$BIN" sft --model "$BASE" --train "$OUT/train.jsonl" --val "$DATA/faq-debian/test.jsonl" \
    --method lora --steps "$STEPS" --lr "$LR" --eval-interval "$STEPS" --batch-size 4 --max-len 256 \
    --threads "$THREADS" --out "$OUT/model" > "$OUT/sft.json"
fi
answer() {  # answer MODEL QUESTION: the model's greedy reply, one line
  printf '%s\n' "$2" | "$BIN" chat --model "$1" --temperature 0 --max-new-tokens "$NEW" \
    2>/dev/null | sed -e 's/^model> //' | tr '\n' ' ' | sed -e 's/|/\\|/g'
}
{
  echo "| id | lang | question | Debian FAQ (first 200 chars) | before SFT | after SFT |"
  echo "| --- | --- | --- | --- | --- | --- |"
  /usr/bin/python3 -c '
import json, sys
for line in open(sys.argv[1], encoding="utf-8"):
    j = json.loads(line)
    m = j["messages"]
    print("\t".join([j["id"], j["lang"], m[0]["content"].replace("\t", " ").replace("\n", " "),
                     m[1]["content"][:200].replace("\t", " ").replace("\n", " ")]))
' "$DATA/faq-debian/test.jsonl" | while IFS=$'\t' read -r id lang q ref; do
    echo "| $id | $lang | ${q//|/\\|} | ${ref//|/\\|} | $(answer "$BASE" "$q") | $(answer "$OUT/model" "$q") |"
  done
} > "$OUT/answers.md.part"
mv "$OUT/answers.md.part" "$OUT/answers.md"
echo "sft_faq: $OUT/answers.md"
