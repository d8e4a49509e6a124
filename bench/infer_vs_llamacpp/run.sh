#!/usr/bin/env bash
# llmkit vs llama.cpp on SmolLM2-135M-Instruct, f32 inference: load time, prefill of PP tokens and
# decoding of TG tokens one at a time (like llama-bench's pp512/tg128), at THREADS threads.
# Both run the same f32 weights: the model cache's Q4_1 GGUF dequantised to an f32 GGUF by
# scripts/gguf-to-f32.py (cached under bench/out/). llama.cpp also runs the Q4_1 original (its
# quantised kernels; llmkit dequantises Q4_1 to f32 at load, so it only gains load time there).
# Peer: llama-cpp-python from its PyPI sdist (scripts/install-deps.sh --test), through
# llamacpp_peer.py. Prints a markdown table; not a test (no thresholds).
# Usage: bench/infer_vs_llamacpp/run.sh [BUILD_DIR]   (env: THREADS=2, PP=512, TG=128, VENV=.venv,
#        LLMKIT_MODELS)
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${1:-build}
THREADS=${THREADS:-2}
PP=${PP:-512}
TG=${TG:-128}
py=${VENV:-.venv}/bin/python
models=${LLMKIT_MODELS:-$HOME/.cache/llmkit/models}
q4=$models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf
[[ -f $q4 ]] || { echo "infer_vs_llamacpp: $q4 not found (scripts/get-models.sh)" >&2; exit 1; }
"$py" -c 'import llama_cpp, gguf' 2>/dev/null ||
  { echo "infer_vs_llamacpp: llama_cpp or gguf missing in $py (scripts/install-deps.sh --test)" >&2; exit 1; }
mkdir -p bench/out
f32=bench/out/smollm2-f32-$(stat -c '%s-%Y' "$q4").gguf
if [[ ! -f $f32 ]]; then
  echo "making the f32 copy $f32 ..." >&2
  "$py" scripts/gguf-to-f32.py "$q4" "$f32"
fi
# Waiting threads sleep instead of spinning: on a shared machine a spinning OpenMP team (both
# llmkit and llama.cpp use OpenMP) loses its cores to other processes and runs 10-40x slower.
export OMP_WAIT_POLICY=PASSIVE OMP_NUM_THREADS=$THREADS LLMKIT_THREADS=$THREADS
load() { cut -d' ' -f1-3 /proc/loadavg; }
echo "load before: $(load)" >&2
ours_f32=$("$BUILD/bench/bench_llama_f32" --model "$f32" --pp "$PP" --tg "$TG" --reps 2)
ours_q4=$("$BUILD/bench/bench_llama_f32" --model "$q4" --pp "$PP" --tg "$TG" --reps 2)
peer_f32=$("$py" bench/infer_vs_llamacpp/llamacpp_peer.py "$f32" "$THREADS" "$PP" "$TG" f32)
peer_f32_kv16=$("$py" bench/infer_vs_llamacpp/llamacpp_peer.py "$f32" "$THREADS" "$PP" "$TG" f16)
peer_q4=$("$py" bench/infer_vs_llamacpp/llamacpp_peer.py "$q4" "$THREADS" "$PP" "$TG" f16)
echo "load after: $(load)" >&2
/usr/bin/python3 - "$PP" "$TG" "$THREADS" "$(load)" "$ours_f32" "$ours_q4" "$peer_f32" \
  "$peer_f32_kv16" "$peer_q4" <<'PY'
import json
import sys

pp, tg, threads, load = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
ours_f32, ours_q4, peer_f32, peer_kv16, peer_q4 = (json.loads(a) for a in sys.argv[5:10])
ours = lambda r: (r["load_s"], r["pp" + pp], r["tg" + tg])
peer = lambda r: (r["load_s"], r["pp"], r["tg"])
rows = [("llmkit, f32 GGUF (f32 KV cache)", ours(ours_f32)),
        ("llmkit, Q4_1 GGUF dequantised to f32 at load", ours(ours_q4)),
        ("llama.cpp, f32 GGUF, f32 KV cache", peer(peer_f32)),
        ("llama.cpp, f32 GGUF, f16 KV cache (its default)", peer(peer_kv16)),
        ("llama.cpp, Q4_1 GGUF (Q4_1 x Q8 kernels), f16 KV", peer(peer_q4))]
print(f"SmolLM2-135M-Instruct, {threads} threads; peer: {peer_f32['peer']} (sdist build, "
      f"ggml {peer_f32['ggml']}); load average at the end: {load}\n")
print(f"| run | load s | pp{pp} tok/s | tg{tg} tok/s |")
print("|---|---:|---:|---:|")
for name, (l, p, t) in rows:
    print(f"| {name} | {l:.3f} | {p:.1f} | {t:.1f} |")
a, b = ours(ours_f32), peer(peer_f32)
print(f"| **ratio llmkit / llama.cpp, f32, same KV type** | {a[0] / b[0]:.2f} | {a[1] / b[1]:.2f} | "
      f"{a[2] / b[2]:.2f} |")
c = peer(peer_kv16)
print(f"| ratio llmkit f32 / llama.cpp f32 with its f16 KV | {a[0] / c[0]:.2f} | {a[1] / c[1]:.2f} | "
      f"{a[2] / c[2]:.2f} |")
PY
