#!/usr/bin/env bash
# `llmkit serve` under load, against llama-cpp-python's OpenAI-compatible server
# (python -m llama_cpp.server) on the same GGUF (SmolLM2-135M-Instruct Q4_1), the same prompts,
# the same max_tokens and the same thread count, both with OMP_WAIT_POLICY=PASSIVE (the load
# generator shares the cores). Runs load.py (streaming chat at concurrency CONC, SECS seconds
# per point) against
#   1. llmkit serve --slots SLOTS (--context 2048),
#   2. llmkit serve --slots 64 --context 1024, at C = 64 only, for SECS64 seconds (16 x 2048 and
#      64 x 1024 both fit the default --kv-memory of 4 GiB; 64 x 2048 does not),
#   3. llama_cpp.server (n_ctx 2048, --interrupt_requests False: by default it cuts a stream
#      short as soon as another request waits; --logits_all False: we ask for no logprobs),
# then wrk (non-streaming chat, max_tokens WRK_TOKENS, and GET /health) against llmkit serve
# --slots SLOTS and the chat run against llama_cpp.server too. Prints the versions, the load
# average, the tables (table.py) and writes JSON and text under bench/out/serve/. Not a test.
# Usage: bench/serve/run.sh [BUILD_DIR]
#   env: THREADS=2 SLOTS=16 CONC=1,4,16,64 SECS=40 SECS64=90 MAX_TOKENS=64 WRK_SECS=20
#        WRK_TOKENS=16 WRK_HEALTH_SECS=10
#        WRK_CONC="1 4 16 64" VENV=.venv LLMKIT_MODELS
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${1:-build}
THREADS=${THREADS:-2}
SLOTS=${SLOTS:-16}
CONC=${CONC:-1,4,16,64}
SECS=${SECS:-40}
SECS64=${SECS64:-90}
MAX_TOKENS=${MAX_TOKENS:-64}
WRK_SECS=${WRK_SECS:-20}
WRK_HEALTH_SECS=${WRK_HEALTH_SECS:-10}
WRK_TOKENS=${WRK_TOKENS:-16}
WRK_CONC=${WRK_CONC:-1 4 16 64}
py=${VENV:-.venv}/bin/python
llmkit=$BUILD/llmkit
models=${LLMKIT_MODELS:-$HOME/.cache/llmkit/models}
model=$models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf
out=bench/out/serve
die() { echo "serve bench: $*" >&2; exit 1; }
[[ -x $llmkit ]] || die "no llmkit binary at $llmkit"
[[ -f $model ]] || die "$model not found (scripts/get-models.sh)"
"$py" -c 'import llama_cpp.server.app, uvicorn' 2>/dev/null ||
  die "llama_cpp.server or its extras missing in $py (scripts/requirements-bench.txt)"
command -v wrk >/dev/null || die "wrk not installed (apt-get install wrk)"
mkdir -p "$out"
export OMP_WAIT_POLICY=PASSIVE OMP_NUM_THREADS=$THREADS LLMKIT_THREADS=$THREADS

server_pid=
cleanup() {
  if [[ -n $server_pid ]]; then
    kill -TERM "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
}
trap cleanup EXIT

# start_llmkit ARGS...: sets server_pid and url once the "listening on" line is printed.
start_llmkit() {
  local log=$out/llmkit-serve.log
  "$llmkit" serve --model "$model" --host 127.0.0.1 --port 0 --threads "$THREADS" --quiet "$@" \
    2>"$log" &
  server_pid=$!
  for _ in $(seq 600); do
    kill -0 "$server_pid" 2>/dev/null || { cat "$log" >&2; die "llmkit serve exited"; }
    url=$(grep -o 'listening on http://127\.0\.0\.1:[0-9]*' "$log" | sed 's/listening on //') || true
    [[ -n $url ]] && { cat "$log" >&2; return; }
    sleep 0.1
  done
  die "llmkit serve did not start"
}

start_llamacpp() {
  local log=$out/llamacpp-server.log port
  port=$("$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  "$py" -m llama_cpp.server --model "$model" --host 127.0.0.1 --port "$port" --n_ctx 2048 \
    --n_threads "$THREADS" --n_threads_batch "$THREADS" --interrupt_requests False \
    --logits_all False --verbose False >"$log" 2>&1 &
  server_pid=$!
  url=http://127.0.0.1:$port
  for _ in $(seq 600); do
    kill -0 "$server_pid" 2>/dev/null || { cat "$log" >&2; die "llama_cpp.server exited"; }
    curl -sf "$url/v1/models" >/dev/null && return
    sleep 0.2
  done
  die "llama_cpp.server did not start"
}

stop_server() {
  kill -TERM "$server_pid"
  wait "$server_pid" || true
  server_pid=
}

# wait_idle: llmkit's /health says nothing runs or waits (after wrk closes its connections).
wait_idle() {
  for _ in $(seq 600); do
    curl -s "$url/health" | grep -q '"queue":0,.*"slots_busy":0' && return
    sleep 0.2
  done
  echo "serve bench: server not idle after 120 s: $(curl -s "$url/health")" >&2
}

# run_wrk NAME SECS PATH [LUA]: wrk at each of WRK_CONC connections; output to $out/wrk-NAME.txt.
run_wrk() {
  local name=$1 secs=$2 path=$3 lua=${4:-} c t
  : >"$out/wrk-$name.txt"
  for c in $WRK_CONC; do
    t=$((c < 2 ? 1 : 2))
    echo "== wrk -t$t -c$c -d${secs}s $path ($name)" | tee -a "$out/wrk-$name.txt"
    WRK_MAX_TOKENS=$WRK_TOKENS wrk -t"$t" -c"$c" -d"${secs}s" --timeout 120s --latency \
      ${lua:+-s "$lua"} "$url$path" 2>&1 | tee -a "$out/wrk-$name.txt"
    if [[ $name == llmkit* ]]; then wait_idle; else sleep 2; fi
  done
}

src=$(sed -n 's/^CMAKE_HOME_DIRECTORY:INTERNAL=//p' "$BUILD/CMakeCache.txt" 2>/dev/null || true)
{
  echo "date: $(date -u +%FT%TZ)"
  echo "machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p'), flags: $(grep -o -w -E 'avx2|avx512f|avx512_vnni|amx_tile' /proc/cpuinfo | sort -u | tr '\n' ' ')"
  echo "llmkit: $("$llmkit" --version 2>&1), source ${src:-?} at $(git -C "${src:-.}" describe --always --dirty 2>/dev/null || echo ?), binary $(stat -c %y "$llmkit" | cut -d. -f1)"
  "$py" - <<'PY'
import ctypes, importlib.metadata as md
import llama_cpp
lib = llama_cpp.llama_cpp._lib
def s(name):
    f = getattr(lib, name); f.restype = ctypes.c_char_p; return f().decode()
print(f"llama-cpp-python {llama_cpp.__version__} (ggml {s('ggml_version')}, commit {s('ggml_commit')}); "
      f"system info: {llama_cpp.llama_print_system_info().decode().strip()}")
print("server stack: " + ", ".join(f"{p} {md.version(p)}" for p in
      ("fastapi", "starlette", "sse-starlette", "uvicorn", "pydantic")))
PY
  echo "wrk: $(wrk -v 2>&1 | head -1)"
  echo "threads: $THREADS per server, OMP_WAIT_POLICY=PASSIVE; load per point: ${SECS} s, max_tokens $MAX_TOKENS"
  echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$out/versions.txt"

t0=$SECONDS
start_llmkit --slots "$SLOTS"
"$py" bench/serve/load.py --url "$url" --pid "$server_pid" --label "llmkit --slots $SLOTS" \
  --conc "$CONC" --seconds "$SECS" --max-tokens "$MAX_TOKENS" --usage --json "$out/llmkit.json"
curl -s "$url/metrics" >"$out/llmkit-metrics.txt"
grep -E '^llmkit_(prompt_tokens|prompt_tokens_cached|generated_tokens|cancelled|batch_steps|batch_rows)_total' \
  "$out/llmkit-metrics.txt" | tr '\n' ' '; echo
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
run_wrk llmkit-chat "$WRK_SECS" /v1/chat/completions bench/serve/chat.lua
run_wrk llmkit-health "$WRK_HEALTH_SECS" /health
stop_server

if [[ ",$CONC," == *,64,* ]]; then
  start_llmkit --slots 64 --context 1024
  "$py" bench/serve/load.py --url "$url" --pid "$server_pid" --label "llmkit --slots 64" \
    --conc 64 --seconds "$SECS64" --max-tokens "$MAX_TOKENS" --usage --json "$out/llmkit-64.json"
  stop_server
fi
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"

start_llamacpp
"$py" bench/serve/load.py --url "$url" --pid "$server_pid" --label "llama_cpp.server" \
  --conc "$CONC" --seconds "$SECS" --max-tokens "$MAX_TOKENS" --json "$out/llamacpp.json"
run_wrk llamacpp-chat "$WRK_SECS" /v1/chat/completions bench/serve/chat.lua
stop_server
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$out/versions.txt"

"$py" bench/serve/table.py "$out" | tee "$out/table.md"
echo "serve bench: $((SECONDS - t0)) s" >&2
