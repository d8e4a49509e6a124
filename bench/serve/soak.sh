#!/usr/bin/env bash
# Soak run of `llmkit serve`: starts it (--slots SLOTS, --max-body 65536, THREADS threads),
# runs soak.py against it for SECONDS (default 600: mixed streaming and non-streaming chat,
# completions, streams dropped mid-way, malformed and oversized requests, CLIENTS clients),
# whose checks decide the exit status, then stops the server with SIGTERM and checks that it
# exits 0 within 30 s. Writes bench/out/serve/soak.json and soak.txt. Not part of ctest.
# Usage: bench/serve/soak.sh [BUILD_DIR] [--seconds N] [--kinds LIST] [--clients N] [--seed N]
#        (the last three passed to soak.py; env: THREADS=2 SLOTS=4 CLIENTS=6 VENV=.venv
#        LLMKIT_MODELS)
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=build
if [[ $# -gt 0 && $1 != --* ]]; then BUILD=$1; shift; fi
SECS=600
extra=()
while [[ $# -gt 0 ]]; do
  case $1 in
    --seconds) SECS=$2; shift 2 ;;
    --kinds|--clients|--seed) extra+=("$1" "$2"); shift 2 ;;
    *) echo "usage: $0 [BUILD_DIR] [--seconds N] [--kinds LIST] [--clients N] [--seed N]" >&2; exit 2 ;;
  esac
done
THREADS=${THREADS:-2}
SLOTS=${SLOTS:-4}
CLIENTS=${CLIENTS:-6}
MAX_BODY=65536
py=${VENV:-.venv}/bin/python
llmkit=$BUILD/llmkit
model=${LLMKIT_MODELS:-$HOME/.cache/llmkit/models}/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf
out=bench/out/serve
[[ -x $llmkit ]] || { echo "soak: no llmkit binary at $llmkit" >&2; exit 1; }
[[ -f $model ]] || { echo "soak: $model not found (scripts/get-models.sh)" >&2; exit 1; }
mkdir -p "$out"
export OMP_WAIT_POLICY=PASSIVE

log=$out/soak-server.log
"$llmkit" serve --model "$model" --host 127.0.0.1 --port 0 --threads "$THREADS" --slots "$SLOTS" \
  --max-body "$MAX_BODY" --quiet 2>"$log" &
pid=$!
trap 'kill -TERM $pid 2>/dev/null || true; wait $pid 2>/dev/null || true' EXIT
url=
for _ in $(seq 600); do
  kill -0 "$pid" 2>/dev/null || { cat "$log" >&2; echo "soak: llmkit serve exited" >&2; exit 1; }
  url=$(grep -o 'listening on http://127\.0\.0\.1:[0-9]*' "$log" | sed 's/listening on //') || true
  [[ -n $url ]] && break
  sleep 0.1
done
[[ -n $url ]] || { echo "soak: llmkit serve did not start" >&2; exit 1; }
cat "$log"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
status=0
"$py" bench/serve/soak.py --url "$url" --pid "$pid" --seconds "$SECS" --clients "$CLIENTS" \
  --max-body "$MAX_BODY" ${extra[@]+"${extra[@]}"} --json "$out/soak.json" | tee "$out/soak.txt" || status=1
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$out/soak.txt"
# A clean stop: SIGTERM, exit status 0.
kill -TERM "$pid"
rc=0
for _ in $(seq 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$pid" 2>/dev/null; then
  echo "FAIL: llmkit serve still running 30 s after SIGTERM" | tee -a "$out/soak.txt"
  kill -KILL "$pid"; status=1
else
  wait "$pid" || rc=$?
  if [[ $rc -eq 0 ]]; then
    echo "PASS: SIGTERM: llmkit serve exited 0" | tee -a "$out/soak.txt"
  else
    echo "FAIL: SIGTERM: llmkit serve exited $rc" | tee -a "$out/soak.txt"; status=1
  fi
fi
trap - EXIT
exit $status
