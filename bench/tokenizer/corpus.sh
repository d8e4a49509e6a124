#!/usr/bin/env bash
# Builds the benchmark corpora under bench/out/tokenizer/ from Debian packages:
#   english.txt  the King James Bible (bible-kjv) + the fortunes databases (fortunes)
#   korean.txt   the Korean translations (msgstr) of every installed .mo file (gettext's msgunfmt)
set -euo pipefail
out=${1:-bench/out/tokenizer}
mkdir -p "$out"
if [[ ! -s $out/english.txt ]]; then
  bible gen1:1-rev22:21 > "$out/english.txt"
  for f in /usr/share/games/fortunes/*; do
    [[ $f == *.dat || $f == *.u8 || -d $f ]] && continue
    cat "$f" >> "$out/english.txt"
  done
fi
if [[ ! -s $out/korean.txt ]]; then
  for mo in /usr/share/locale/ko/LC_MESSAGES/*.mo; do
    msgunfmt "$mo" 2>/dev/null | msgcat --no-wrap - 2>/dev/null | sed -n 's/^msgstr "\(.*\)"$/\1/p' \
      | sed 's/\\n/\n/g; s/\\"/"/g; s/\\t/\t/g' | grep -v '^$' || true
  done > "$out/korean.txt"
fi
wc -c "$out"/english.txt "$out"/korean.txt
