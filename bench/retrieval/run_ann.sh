#!/usr/bin/env bash
# ANN benchmark, llmkit's AnnIndex (ann_bench: Debian's FAISS 1.7.3 HNSW with llmkit's inner
# product) and faiss-cpu from PyPI (ann_peer.py) side by side on the same vectors in one run: build
# time, peak RSS, index size, and recall@10 / queries per second (one thread, one query at a
# time) at efSearch 16..256. On a seeded Gaussian set (N x DIM, NQ queries, written as .fvecs by
# numpy; N=0 skips it), then on each --fvecs BASE QUERY pair given (e.g. SIFT1M's
# sift_base.fvecs and sift_query.fvecs, or bench/retrieval/run_wordnet.sh's real passages; LIMIT
# caps the base rows). Everything runs under nice; the load average is
# printed around each run, since other work on the cores skews the two sides differently.
# Usage: bench/retrieval/run_ann.sh [BUILD_DIR] [--fvecs BASE QUERY]...
#   env: N (100000), DIM (128), NQ (1000), M (32), EFC (128), EF (16,32,64,128,256), LIMIT (0),
#        PARALLEL_ROWS (20000: FAISS's own build on 1 vs all threads; 0 skips), VENV (.venv)
set -euo pipefail
cd "$(dirname "$0")/../.."
build=build
if [[ $# -gt 0 && $1 != --fvecs ]]; then
  build=$1
  shift
fi
N=${N:-100000} DIM=${DIM:-128} NQ=${NQ:-1000} M=${M:-32} EFC=${EFC:-128}
EF=${EF:-16,32,64,128,256} LIMIT=${LIMIT:-0} PARALLEL_ROWS=${PARALLEL_ROWS:-20000}
py=${VENV:-.venv}/bin/python
out=bench/out/ann
[[ -x $build/bench/ann_bench ]] || { echo "run_ann: $build/bench/ann_bench missing" >&2; exit 1; }
"$py" -c "import faiss, numpy" 2>/dev/null ||
  { echo "run_ann: $py lacks faiss/numpy (pip install -r scripts/requirements-bench.txt)" >&2; exit 1; }
mkdir -p "$out"
export OMP_WAIT_POLICY=PASSIVE
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"

# A seeded Gaussian set as .fvecs (both programs scale every vector to unit length).
sets=()
[[ $N -gt 0 ]] && sets=("$out/random_${N}x${DIM}_base.fvecs" "$out/random_${NQ}x${DIM}_query.fvecs"
  "random ${N}x${DIM}")
[[ $N -eq 0 || (-f ${sets[0]} && -f ${sets[1]}) ]] ||
  "$py" - "$N" "$DIM" "$NQ" "${sets[0]}" "${sets[1]}" <<'EOF'
import sys
import numpy as np
n, dim, nq = map(int, sys.argv[1:4])
rng = np.random.default_rng(20261203)
for rows, path in ((n, sys.argv[4]), (nq, sys.argv[5])):
    x = rng.standard_normal((rows, dim), dtype=np.float32)
    np.hstack([np.full((rows, 1), dim, np.int32).view(np.float32), x]).tofile(path)
EOF
while [[ $# -gt 0 ]]; do
  [[ $1 == --fvecs && $# -ge 3 ]] || { echo "run_ann: expected --fvecs BASE QUERY" >&2; exit 1; }
  sets+=("$2" "$3" "$(basename "$2" .fvecs)")
  shift 3
done

for ((i = 0; i < ${#sets[@]}; i += 3)); do
  base=${sets[i]} query=${sets[i + 1]} name=${sets[i + 2]}
  tag=$(echo "$name" | tr -c 'A-Za-z0-9_\n' _)
  args=(--base "$base" --query "$query" --limit "$LIMIT" --m "$M" --ef-construction "$EFC"
    --ef "$EF" --name "$name")
  echo "== $name: llmkit (load $(cut -d' ' -f1-3 /proc/loadavg))"
  OMP_NUM_THREADS=${THREADS:-$(nproc)} nice "$build/bench/ann_bench" "${args[@]}" \
    --parallel-build "$PARALLEL_ROWS" | tee "$out/$tag.llmkit.txt" | grep --line-buffered -v '^JSON '
  echo "== $name: faiss-cpu (load $(cut -d' ' -f1-3 /proc/loadavg))"
  OMP_NUM_THREADS=1 nice "$py" bench/retrieval/ann_peer.py "${args[@]}" |
    tee "$out/$tag.peer.txt" | grep --line-buffered -v '^JSON '
  echo "== $name: side by side (load after $(cut -d' ' -f1-3 /proc/loadavg))"
  "$py" - "$out/$tag.llmkit.txt" "$out/$tag.peer.txt" <<'EOF' | tee "$out/$tag.compare.md"
import json, sys
def lines(path):
    return [json.loads(l[5:]) for l in open(path) if l.startswith("JSON ")]
ours, peer = lines(sys.argv[1]), lines(sys.argv[2])
b = next(j for j in ours if j["what"] == "build")
p = next(j for j in peer if j["what"] == "build")
print(f"| {b['n']} x {b['dim']}, M {b['m']}, efC {b['ef_construction']} | llmkit | "
      f"{p['impl']} | ratio |")
print("|---|---:|---:|---:|")
print(f"| build, 1 thread (s) | {b['build_s']:.2f} | {p['build_s']:.2f} | "
      f"{p['build_s'] / b['build_s']:.2f}x speed |")
print(f"| peak RSS (MB) | {b['peak_rss_mb']:.0f} | {p['peak_rss_mb']:.0f} | "
      f"{b['peak_rss_mb'] / p['peak_rss_mb']:.2f} |")
print(f"| index (MB) | {b['index_mb']:.1f} | {p['index_mb']:.1f} | "
      f"{b['index_mb'] / p['index_mb']:.2f} |")
print(f"| exact search (queries/s) | {b['exact_qps']:.1f} | {p['exact_qps']:.1f} | "
      f"{b['exact_qps'] / p['exact_qps']:.2f} |")
by_ef = {j["ef_search"]: j for j in peer if j["what"] == "search"}
for j in (j for j in ours if j["what"] == "search"):
    q = by_ef.get(j["ef_search"])
    if q:
        print(f"| ef {j['ef_search']}: recall@{j['k']} / queries/s | {j['recall']:.4f} / "
              f"{j['qps']:.0f} | {q['recall']:.4f} / {q['qps']:.0f} | "
              f"{j['qps'] / q['qps']:.2f}x |")
for j in (j for j in ours if j["what"] == "parallel_build"):
    print(f"\nFAISS (Debian) build of {j['rows']} rows: {j['build_s_1_thread']:.2f} s on 1 thread, "
          f"{j['build_s_parallel']:.2f} s on {j['parallel_threads']} threads: building on one "
          f"thread (as AnnIndex does, for determinism) takes "
          f"{j['build_s_1_thread'] / j['build_s_parallel']:.2f}x as long.")
EOF
done
