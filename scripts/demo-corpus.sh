#!/usr/bin/env bash
# Writes the demo corpus: the King James Bible from Debian's bible-kjv package, one verse per line
# (chapter headings kept, verse numbers dropped), ~4.1 MB of English. Usage: demo-corpus.sh OUT
set -euo pipefail
out=${1:?usage: demo-corpus.sh OUT}
[[ -s "$out" ]] && exit 0
command -v bible >/dev/null || { echo "demo-corpus: 'bible' not found; run scripts/install-deps.sh" >&2; exit 1; }
mkdir -p "$(dirname "$out")"
bible -l100000 "Genesis 1:1-Revelation 22:21" | sed -E 's/^ +[0-9]+ //' > "$out.tmp"
mv "$out.tmp" "$out"
