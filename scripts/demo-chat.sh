#!/usr/bin/env bash
# The second part of `make demo`: one scripted exchange with a real pretrained model,
# SmolLM2-135M-Instruct (GGUF, Q4_1), through `llmkit chat` and the model's own chat template —
# an English question and a Korean one, greedy (--temperature 0) so the output is reproducible,
# with the load time and prefill/decode tokens/s on stderr (--stats). Fetches the model first
# (scripts/get-models.sh, idempotent). Usage: scripts/demo-chat.sh [BUILD_DIR] (default build).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
MODELS=${LLMKIT_MODELS:-$HOME/.cache/llmkit/models}
model="$MODELS/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf"

echo
echo "=== Part 2: chat with a real pretrained model (SmolLM2-135M-Instruct, 4-bit GGUF) through its"
echo "=== chat template: one English and one Korean question, greedy, with load time and tokens/s"
scripts/get-models.sh smollm2

# A 135M model knows little Korean: asked only in Korean it mostly echoes the question or
# repeats its last answer, so the Korean question carries an English gloss (docs/chat.md).
questions=$'What is the capital of France? Answer in one sentence.\n대한민국의 수도는 어디인가요? (What is the capital of South Korea?)\n'
out=$(mktemp)
trap 'rm -f "$out"' EXIT
start=$(date +%s%N)
# stderr (prompts, stats) joins stdout (replies) so they read in order.
printf '%s' "$questions" |
  "$build/llmkit" chat --model "$model" --temperature 0 --max-new-tokens 96 --stats 2>&1 |
  tee "$out"
ms=$((($(date +%s%N) - start) / 1000000))
printf 'demo-chat: the whole exchange (load included) took %d.%02d s\n' $((ms / 1000)) $((ms % 1000 / 10))

# Greedy decoding of the same weights gives the same replies: check they are there and sensible.
replies=$(grep -c '^model> .' "$out" || true)
if [[ $replies -ne 2 ]]; then
  echo "demo-chat: expected 2 replies, got $replies" >&2
  exit 1
fi
if ! grep '^model> ' "$out" | head -n1 | grep -q 'Paris'; then
  echo "demo-chat: the first reply does not mention Paris" >&2
  exit 1
fi
