#!/usr/bin/env bash
# Tokenizer benchmark, llmkit and its peers side by side on one machine in one run:
#   encode MB/s (1 thread, 2 threads) vs tiktoken and HF tokenizers (GPT-2 vocabulary) and
#   SentencePiece (its own model); BPE training time vs HF tokenizers and SentencePiece.
# The peers are PyPI wheels in the project venv (scripts/install-deps.sh --bench); tiktoken's
# r50k_base is built from tests/fixtures/gpt2/ (scripts/test-setup.sh): nothing is downloaded here.
# Usage: bench/tokenizer/run.sh [BUILD_DIR]   (env: THREADS, default 2; VENV, default .venv)
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build}
THREADS=${THREADS:-2}
py=${VENV:-.venv}/bin/python
out=bench/out/tokenizer
[[ -x $py ]] || { echo "tokenizer bench: $py missing (run scripts/install-deps.sh --bench)" >&2; exit 1; }
bench/tokenizer/corpus.sh "$out"
scripts/test-setup.d/gpt2-vocab.sh
export RAYON_NUM_THREADS=$THREADS OMP_NUM_THREADS=$THREADS LLMKIT_THREADS=$THREADS THREADS
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
for lang in english korean; do
  corpus=$out/$lang.txt
  echo "== $lang: encode, GPT-2 vocabulary (r50k_base), $(wc -c < "$corpus") bytes"
  LLMKIT_THREADS=$THREADS LLMKIT_BENCH_CORPUS=$corpus LLMKIT_BENCH_TOKENIZER=tests/fixtures/gpt2 \
    "$build"/bench/bench_tokenizer --benchmark_filter=Encode
  "$py" bench/tokenizer/peers.py encode "$corpus" tests/fixtures/gpt2
  echo "== $lang: train"
  for v in 8000 30000; do
    /usr/bin/time -f "llmkit train vocab $v (min-frequency 0): %e s, max RSS %M KB" \
      "$build"/llmkit tokenizer train --input "$corpus" --vocab-size $v --min-frequency 0 \
      --out "$out/llmkit_${lang}_$v.json" 2>&1 | grep -v '^reading\|^merging'
    "$py" bench/tokenizer/peers.py train "$corpus" $v "$out/hf_${lang}_$v.json"
  done
  "$py" bench/tokenizer/sentencepiece_peer.py "$corpus" 8000 "$out/sp_${lang}_8000"
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
