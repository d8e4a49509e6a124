"""Makes topics-ko: Korean LibreOffice help pages labelled by the module they document.

Usage: topics_ko.py HELP_DIR OUT_DIR PACKAGE_VERSION (HELP_DIR: /usr/share/libreoffice/help/ko,
from Debian's libreoffice-help-ko). The Korean help is only partly translated: many paragraphs are
still English. A page's text is its Korean paragraphs only (Hangul >= half of the letters), joined
by spaces; a page with fewer than 100 Hangul characters there is dropped as near-empty. The label
is the help folder (text/<module>/): swriter writer, scalc calc, simpress and sdraw impress-draw
(one drawing layer, and Draw alone has ~30 pages), smath math, schart chart, sbasic basic,
shared shared (features common to all modules); sdatabase (Base) is dropped, its help is almost
untranslated (2 pages). Split 80/10/10 per label by SHA-256 of the page path; also writes
pages.tsv (path, label, split). Validates what it writes; the counts are pinned for PINNED.
"""

import os
import sys

from common import SPLITS, dedupe, hangul_count, letter_count, print_counts, split_stratified
from common import fail, validate_set, write_set

import helpko

LABEL = {"swriter": "writer", "scalc": "calc", "simpress": "impress-draw", "sdraw": "impress-draw",
         "smath": "math", "schart": "chart", "sbasic": "basic", "shared": "shared"}
MIN_HANGUL = 100
PINNED = "4:7.4.7-1+deb12u14"
EXPECTED = {
    "train": {"basic": 103, "calc": 178, "chart": 40, "impress-draw": 126, "math": 44,
              "shared": 388, "writer": 225},
    "val": {"basic": 13, "calc": 22, "chart": 5, "impress-draw": 16, "math": 5, "shared": 48,
            "writer": 28},
    "test": {"basic": 13, "calc": 22, "chart": 5, "impress-draw": 16, "math": 5, "shared": 48,
             "writer": 28},
}


def is_korean(paragraph):
    h = hangul_count(paragraph)
    return h > 0 and 2 * h >= letter_count(paragraph)


def build(help_dir):
    """Returns (splits, paragraphs): splits {split: [(path, text, label)]}, and for each kept
    page path its Korean paragraphs (korean_corpus.py keeps val/test paragraphs out)."""
    items, paragraphs = [], {}
    for rel, module, paras in helpko.pages(help_dir):
        if module not in LABEL:
            continue
        korean = [p for p in paras if is_korean(p)]
        text = " ".join(korean)
        if hangul_count(text) < MIN_HANGUL:
            continue
        items.append((rel, text, LABEL[module]))
        paragraphs[rel] = korean
    items, _ = dedupe(items)
    return split_stratified("topics-ko", items), paragraphs


def main():
    help_dir, out, version = sys.argv[1:4]
    if not os.path.isdir(os.path.join(help_dir, "text")):
        fail(f"{help_dir}/text is missing: run scripts/install-deps.sh --data")
    splits, _ = build(help_dir)
    write_set(out, splits)
    with open(os.path.join(out, "pages.tsv"), "w", encoding="utf-8") as f:
        f.write("path\tlabel\tsplit\n")
        for s in SPLITS:
            for rel, _, label in sorted(splits[s]):
                f.write(f"{rel}\t{label}\t{s}\n")
    check(out, version)


def check(out, version):
    """Validates topics-ko (exact counts if made from the PINNED package), prints its counts."""
    expected = EXPECTED if version == PINNED else None
    if expected is None:
        print(f"topics-ko: libreoffice-help-ko {version}, counts pinned for {PINNED} only")
    counts = validate_set(out, set(LABEL.values()), expected=expected)
    for s in SPLITS:
        for label, n in counts[s].items():
            if n < 3:
                fail(f"{out}/{s}.tsv: only {n} examples of {label}")
    print_counts("topics-ko", counts)

if __name__ == "__main__":
    main()
