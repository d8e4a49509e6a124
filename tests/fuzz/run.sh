#!/usr/bin/env bash
# Runs each libFuzzer target for a bounded time (make fuzz; docs/fuzzing.md).
# usage: tests/fuzz/run.sh BUILD_DIR SECONDS TARGET...
# Each target starts from the committed corpus (tests/fuzz/corpus/<t>) and crashers
# (tests/fuzz/regressions/<t>); what it finds goes to BUILD_DIR/fuzz/corpus/<t> (the committed
# folders are only read), crashers to BUILD_DIR/fuzz/crashes/<t>/, the log to
# BUILD_DIR/fuzz/logs/<t>.log. Exit status 1 when any target crashed. FUZZ_RSS_MB (2048) and
# FUZZ_TIMEOUT (30 s per input) set libFuzzer's limits.
set -u
build=$1 seconds=$2
shift 2
src=$(cd "$(dirname "$0")" && pwd)
# The file-based targets write each input to a file in TMPDIR: on tmpfs that is 65x faster than
# on /tmp's disk here (token_shard: 17878 vs 276 execs/s).
if [[ -z ${TMPDIR:-} && -w /dev/shm ]]; then export TMPDIR=/dev/shm; fi
out=$build/fuzz
status=0
for t in "$@"; do
  bin=$build/tests/fuzz/fuzz_$t
  [[ -x $bin ]] || { echo "fuzz: no $bin (build the fuzz_all target)" >&2; exit 2; }
  mkdir -p "$out/corpus/$t" "$out/crashes/$t" "$out/logs" "$src/regressions/$t"
  dict=() fork=()
  # FUZZ_FORK=1: run in a child process and go on after a crash, collecting every crasher.
  [[ ${FUZZ_FORK:-0} == 1 ]] && fork=(-fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1)
  [[ -f $src/dict/$t.dict ]] && dict=(-dict="$src/dict/$t.dict")
  echo "fuzz: $t for ${seconds}s (log $out/logs/$t.log)"
  "$bin" "$out/corpus/$t" "$src/corpus/$t" "$src/regressions/$t" "${dict[@]}" "${fork[@]}" \
    -max_total_time="$seconds" -rss_limit_mb="${FUZZ_RSS_MB:-2048}" -timeout="${FUZZ_TIMEOUT:-30}" \
    -print_final_stats=1 \
    -artifact_prefix="$out/crashes/$t/" >"$out/logs/$t.log" 2>&1
  rc=$?
  # The last status line: "#<execs> DONE ..." (or "#<execs>: ... time: <s>" with FUZZ_FORK=1).
  grep -E '^#[0-9]+(.*DONE|: cov)' "$out/logs/$t.log" | tail -n 1 | sed "s/^/  $t: /"
  ls "$out/crashes/$t" | grep -q . && rc=1
  if [[ $rc -ne 0 ]]; then
    status=1
    echo "fuzz: $t CRASHED (exit $rc): inputs in $out/crashes/$t/, tail of the log:" >&2
    tail -n 30 "$out/logs/$t.log" >&2
    echo "fuzz: fix the parser, then copy the crasher to tests/fuzz/regressions/$t/" >&2
  fi
done
exit $status
