#!/usr/bin/env bash
# The ANN benchmark on real embedded passages: WordNet's 117,659 synsets (wordnet-base) as
# "lemmas (part of speech): gloss" passages, 1,000 of them held out as queries, embedded by
# `llmkit embed` with all-MiniLM-L6-v2 (384 dimensions, unit length), then run_ann.sh on them
# (llmkit's AnnIndex and the faiss-cpu wheel side by side). The passages, embeddings and .fvecs
# are cached in bench/out/ann/; embedding runs in pieces of 10,000 with progress.
# Usage: bench/retrieval/run_wordnet.sh [BUILD_DIR]
#   env: MODEL (~/.cache/llmkit/models/all-minilm-l6-v2), THREADS (nproc), and run_ann.sh's M,
#        EFC, EF, LIMIT, PARALLEL_ROWS (N is 0 here: no Gaussian set).
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build}
model=${MODEL:-$HOME/.cache/llmkit/models/all-minilm-l6-v2}
out=bench/out/ann
bin=$build/llmkit
[[ -x $bin ]] || { echo "run_wordnet: $bin missing (make build)" >&2; exit 1; }
[[ -d $model ]] ||
  { echo "run_wordnet: $model missing (scripts/get-models.sh minilm)" >&2; exit 1; }
[[ -f /usr/share/wordnet/data.noun ]] ||
  { echo "run_wordnet: /usr/share/wordnet missing (scripts/install-deps.sh --data)" >&2; exit 1; }
mkdir -p "$out"
export OMP_WAIT_POLICY=PASSIVE OMP_NUM_THREADS=${THREADS:-$(nproc)}

[[ -f $out/wordnet_base.txt && -f $out/wordnet_query.txt ]] ||
  /usr/bin/python3 bench/retrieval/wordnet.py passages "$out/wordnet_base.txt" \
    "$out/wordnet_query.txt"

# embed NAME: $out/wordnet_NAME.txt -> $out/wordnet_NAME.fvecs, 10,000 lines per llmkit call.
embed() {
  local name=$1 txt=$out/wordnet_$1.txt fv=$out/wordnet_$1.fvecs
  [[ -f $fv ]] && return
  local total n_done=0 t0=$SECONDS
  total=$(wc -l <"$txt")
  rm -f "$out/wordnet_$name".part.* "$out/wordnet_$name.jsonl"
  split -l 10000 -d -a 3 "$txt" "$out/wordnet_$name.part."
  for part in "$out/wordnet_$name".part.*; do
    "$bin" embed --model "$model" --file "$part" >>"$out/wordnet_$name.jsonl"
    n_done=$((n_done + $(wc -l <"$part")))
    echo "run_wordnet: embedded $n_done / $total $name passages ($((SECONDS - t0)) s)" >&2
    rm "$part"
  done
  /usr/bin/python3 bench/retrieval/wordnet.py fvecs "$out/wordnet_$name.jsonl" "$fv"
  rm "$out/wordnet_$name.jsonl"
}
embed query
embed base

N=0 exec bench/retrieval/run_ann.sh "$build" \
  --fvecs "$out/wordnet_base.fvecs" "$out/wordnet_query.fvecs"
