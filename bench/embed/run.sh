#!/usr/bin/env bash
# llmkit vs sentence-transformers: sentences/s embedding N real sentences (bench/embed/sentences.py:
# the Debian FAQ and the libpng manual, 4 to 147 words) with all-MiniLM-L6-v2, batch 32, max
# length 256 (the model's max_seq_length), mean pooling + normalisation (the model's defaults
# on both sides), at 1 and 2 threads. llmkit: `llmkit embed --file --stats` (the time of
# embed_texts: tokenising, batching, the encoder, pooling; not the model load), best of REPS.
# Peer: SentenceTransformer.encode in bench/embed/st_peer.py (torch.set_num_threads = ours),
# best of REPS after a warm-up batch. Then the agreement of the two sets of vectors: the max abs
# difference of any coordinate and the lowest cosine between the two vectors of a sentence.
# Prints a markdown table; not a test (no thresholds).
# Usage: bench/embed/run.sh [BUILD_DIR]   (env: N=2000, REPS=2, THREADS="1 2",
#        PY=/work/main/.venv/bin/python or .venv/bin/python, LLMKIT_MODELS)
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${1:-build}
N=${N:-2000}
REPS=${REPS:-2}
THREADS=${THREADS:-"1 2"}
py=${PY:-.venv/bin/python}
model=${LLMKIT_MODELS:-$HOME/.cache/llmkit/models}/all-minilm-l6-v2
[[ -d $model ]] || { echo "bench/embed: $model not found (scripts/get-models.sh)" >&2; exit 1; }
"$py" -c 'import sentence_transformers' 2>/dev/null ||
  { echo "bench/embed: sentence_transformers missing in $py (set PY=)" >&2; exit 1; }
out=bench/out/embed
mkdir -p "$out"
/usr/bin/python3 bench/embed/sentences.py "$N" > "$out/sentences.txt"
# Waiting threads sleep instead of spinning (both sides use OpenMP): on a shared machine a
# spinning team loses its cores to other processes.
export OMP_WAIT_POLICY=PASSIVE
load() { cut -d' ' -f1-3 /proc/loadavg; }
echo "load before: $(load)" >&2
rows=()
for t in $THREADS; do
  best=
  for _ in $(seq "$REPS"); do
    s=$(LLMKIT_THREADS=$t OMP_NUM_THREADS=$t "$BUILD/llmkit" embed --model "$model" \
          --file "$out/sentences.txt" --batch-size 32 --max-length 256 --stats \
          2>&1 >"$out/llmkit_vectors.jsonl" | sed -n 's/.*(\([0-9.]*\) texts\/s).*/\1/p')
    best=$(/usr/bin/python3 -c "print(max(float('$s'), float('${best:-0}')))")
  done
  peer=$(OMP_NUM_THREADS=$t "$py" bench/embed/st_peer.py "$model" "$out/sentences.txt" "$t" 32 \
           256 "$out/st_vectors.npy" "$REPS")
  rows+=("$t $best $peer")
done
echo "load after: $(load)" >&2
"$py" - "$N" "$out" "$(load)" "${rows[@]}" <<'PY'
import json
import sys

import numpy as np

n, out, load = sys.argv[1], sys.argv[2], sys.argv[3]
ours = np.array([json.loads(l)["embedding"] for l in open(f"{out}/llmkit_vectors.jsonl")],
                dtype=np.float64)
peer = np.load(f"{out}/st_vectors.npy").astype(np.float64)
cos = (ours * peer).sum(1) / (np.linalg.norm(ours, axis=1) * np.linalg.norm(peer, axis=1))
peer_name = None
print(f"all-MiniLM-L6-v2, {n} sentences, batch 32, max length 256; load average at the end: "
      f"{load}\n")
print("| threads | llmkit sentences/s | sentence-transformers sentences/s | ratio |")
print("|---:|---:|---:|---:|")
for row in sys.argv[4:]:
    t, ours_s, peer_json = row.split(" ", 2)
    p = json.loads(peer_json)
    peer_name = p["peer"]
    print(f"| {t} | {float(ours_s):.1f} | {p['sentences_per_s']:.1f} | "
          f"{float(ours_s) / p['sentences_per_s']:.2f} |")
print(f"\npeer: {peer_name}. Vectors ({ours.shape[0]} x {ours.shape[1]}): max abs difference "
      f"{np.abs(ours - peer).max():.2e}, lowest cosine {cos.min():.6f}, mean cosine "
      f"{cos.mean():.6f}")
PY
