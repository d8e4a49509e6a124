"""Prints the table get-data.sh ends with: per data set, the examples per split and per label.

Usage: table.py DATA_DIR NAME... (a NAME without train.tsv, e.g. korean-corpus, gets its size;
a JSONL set, lines per split and language).
Only reads; the validation is done by the script that made each set.
"""

import os
import sys

from common import SPLITS, label_counts, read_tsv
from jsonl import read_jsonl


def jsonl_row(name, d):
    """`name train val test  en=../../.. ko=..` for a JSONL set (a missing split counts 0)."""
    counts = {}
    for s in SPLITS:
        path = os.path.join(d, f"{s}.jsonl")
        for row in read_jsonl(path) if os.path.isfile(path) else []:
            c = counts.setdefault(s, {})
            key = row.get("lang", "lines")
            c[key] = c.get(key, 0) + 1
    totals = [sum(counts.get(s, {}).values()) for s in SPLITS]
    keys = sorted(set().union(*counts.values()))
    desc = " ".join(k + "=" + "/".join(str(counts.get(s, {}).get(k, 0)) for s in SPLITS)
                    for k in keys)
    print(f"{name:20} {totals[0]:6} {totals[1]:6} {totals[2]:6}  {desc}")


def main():
    root, names = sys.argv[1], sys.argv[2:]
    print(f"{'set':20} {'train':>6} {'val':>6} {'test':>6}  labels (train/val/test)")
    for name in names:
        d = os.path.join(root, name)
        if os.path.isfile(os.path.join(d, "train.jsonl")):
            jsonl_row(name, d)
            continue
        if not os.path.isfile(os.path.join(d, "train.tsv")):
            path = os.path.join(d, "corpus.txt")
            with open(path, encoding="utf-8") as f:
                text = f.read()
            print(f"{name:20} {text.count(chr(10))} lines, {len(text)} characters, "
                  f"{os.path.getsize(path) / 1e6:.2f} MB")
            continue
        counts = {s: label_counts(read_tsv(os.path.join(d, f"{s}.tsv"))) for s in SPLITS}
        totals = [sum(counts[s].values()) for s in SPLITS]
        labels = sorted(set().union(*counts.values()))
        if name.endswith("-score"):
            desc = "score -4..+4"
        else:
            per_label = (label + "=" + "/".join(str(counts[s].get(label, 0)) for s in SPLITS)
                         for label in labels)
            desc = " ".join(per_label)
        print(f"{name:20} {totals[0]:6} {totals[1]:6} {totals[2]:6}  {desc}")


if __name__ == "__main__":
    main()
