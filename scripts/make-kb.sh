#!/usr/bin/env bash
# Builds the knowledge base that `llmkit rag` is demonstrated and evaluated on (docs/rag.md): an
# index of Debian's own documentation, installed from Debian packages and embedded with
# all-MiniLM-L6-v2. Sources (each a --source label for filters; licences in docs/datasets.md):
#   debian-faq        /usr/share/doc/debian/FAQ/*.en.html          (debian-faq, GPL-2+)
#   debian-faq-ko     /usr/share/doc/debian/FAQ/ko/*.ko.html       (debian-faq-ko, GPL-2+), Korean
#   debian-reference  /usr/share/debian-reference/*.en.html        (debian-reference-en, GPL-2+)
#   python-faq        /usr/share/doc/python3.11/html/faq/          (python3.11-doc, PSF-2.0)
#   python-docs       tutorial/, howto/, using/ of the same        (with --full: library/ and
#                     reference/ too, ~20x more chunks)
# Usage: scripts/make-kb.sh [--full] [DB]   (DB default: ~/.cache/llmkit/kb/debian-docs)
# Rebuilding is cheap: `index add` skips files whose text has not changed. Needs build/llmkit
# (make build) and the embedder (scripts/get-models.sh minilm); installs the Debian packages.
set -euo pipefail
cd "$(dirname "$0")/.."
full=0
if [[ ${1:-} == --full ]]; then full=1; shift; fi
DB=${1:-$HOME/.cache/llmkit/kb/debian-docs}
BIN=${LLMKIT_BIN:-build/llmkit}
MODELS=${LLMKIT_MODELS:-$HOME/.cache/llmkit/models}
[[ -x $BIN ]] || { echo "make-kb: $BIN is missing; run make build first" >&2; exit 1; }
scripts/install-deps.sh --data
scripts/get-models.sh minilm
if [[ ! -f $DB/llmkit.db ]]; then
  "$BIN" index create --db "$DB" --model "$MODELS/all-minilm-l6-v2"
fi
py=/usr/share/doc/python3.11/html
add() {  # add SOURCE LANG PATH...
  local source=$1 lang=$2
  shift 2
  echo "make-kb: $source"
  "$BIN" index add --db "$DB" --source "$source" --lang "$lang" "$@"
}
add debian-faq en /usr/share/doc/debian/FAQ/*.en.html
add debian-faq-ko ko /usr/share/doc/debian/FAQ/ko/*.ko.html
add debian-reference en /usr/share/debian-reference/*.en.html
add python-faq en "$py/faq"
add python-docs en "$py/tutorial" "$py/howto" "$py/using"
if [[ $full == 1 ]]; then
  add python-docs en "$py/library" "$py/reference"
fi
"$BIN" index stats --db "$DB"
echo "make-kb: ready. Try: $BIN rag --db $DB --model $MODELS/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf --question 'How do I install a package?'"
