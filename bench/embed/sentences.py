#!/usr/bin/env python3
"""Real sentences for bench/embed: the Debian FAQ's plain text (Debian's doc-debian package), then
the libpng manual (libpng16-16), their wrapped lines joined into paragraphs and split at sentence ends, headings, rules and
fragments under 4 words dropped, the first N kept (lengths 4 to ~100 words: a mix, as in a
corpus). Usage: sentences.py N [SOURCE.txt.gz ...]  -> one sentence a line on stdout."""
import gzip
import re
import sys

n = int(sys.argv[1])
srcs = sys.argv[2:] or ["/usr/share/doc/debian/FAQ/debian-faq.en.txt.gz",
                       "/usr/share/doc/libpng16-16/libpng-manual.txt.gz"]
out = []
for src in srcs:
    with gzip.open(src, "rt", encoding="utf-8", errors="replace") as f:
        text = f.read()
    for para in re.split(r"\n\s*\n", text):
        para = " ".join(para.split())
        for s in re.split(r"(?<=[.!?])\s+(?=[A-Z\"'(])", para):
            if len(s.split()) >= 4 and not re.fullmatch(r"[-=*_ ]+|[\d.]+ .*[^.!?:]", s):
                out.append(s)
if len(out) < n:
    sys.exit(f"sentences.py: {' '.join(srcs)} give {len(out)} sentences, fewer than {n}")
print("\n".join(out[:n]))
