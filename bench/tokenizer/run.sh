#!/usr/bin/env bash
# Tokenizer benchmark, llmkit and its peers side by side on one machine in one run:
#   encode MB/s (1 thread, all threads) vs tiktoken and HF tokenizers (npm) and SentencePiece;
#   BPE training time vs HF tokenizers (npm; its default vocab 30000) and SentencePiece (8000).
# Usage: bench/tokenizer/run.sh [BUILD_DIR]   (needs bible-kjv, fortunes, gettext, python3-
# sentencepiece, npm; the npm peers are installed into bench/out/tokenizer/node_modules)
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build}
out=bench/out/tokenizer
bench/tokenizer/corpus.sh "$out"
scripts/test-setup.d/gpt2-vocab.sh
[[ -d $out/node_modules/tokenizers ]] ||
  npm install --prefix "$out" --no-save --no-audit --no-fund --silent tiktoken@1 tokenizers@0.23
export NODE_PATH=$PWD/$out/node_modules
for lang in english korean; do
  corpus=$out/$lang.txt
  echo "== $lang: encode, GPT-2 vocabulary (r50k_base), $(wc -c < "$corpus") bytes"
  LLMKIT_BENCH_CORPUS=$corpus LLMKIT_BENCH_TOKENIZER=tests/fixtures/gpt2 \
    "$build"/bench/bench_tokenizer --benchmark_filter=Encode
  node bench/tokenizer/peers.js encode "$corpus" tests/fixtures/gpt2
  echo "== $lang: train"
  for v in 8000 30000; do
    /usr/bin/time -f "llmkit train vocab $v (min-frequency 0): %e s, max RSS %M KB" \
      "$build"/llmkit tokenizer train --input "$corpus" --vocab-size $v --min-frequency 0 \
      --out "$out/llmkit_${lang}_$v.json" 2>&1 | grep -v '^reading\|^merging'
  done
  node bench/tokenizer/peers.js train "$corpus" "$out/hf_${lang}_30000.json" 2>/dev/null | tail -1
  /usr/bin/python3 bench/tokenizer/sentencepiece_peer.py "$corpus" 8000 "$out/sp_${lang}_8000"
done
