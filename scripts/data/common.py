"""Shared helpers of the data-set scripts (scripts/get-data.sh runs them with /usr/bin/python3).

What a data set is here: a folder with train.tsv, val.tsv and test.tsv, each `text<TAB>label` with
the header line `text\tlabel`, one example a line (tabs and newlines inside a text become spaces).
This module cleans text, makes the fixed split (stratified by label, ordered by a SHA-256 of a
stable id, so the same source always gives the same split), writes the files and validates them
by reading them back. Standard library only. It is not a loader for the fine-tuning code (C++).
"""

import hashlib
import os
import re
import sys
import unicodedata

SPLITS = ("train", "val", "test")


def fail(msg):
    """One clear line on stderr and a non-zero exit: how the scripts report a bad source or set."""
    sys.exit(f"get-data: {msg}")


def clean(text):
    """NFC; a run of whitespace (tabs, newlines, NBSP, ...) to one space; no control characters."""
    text = unicodedata.normalize("NFC", text)
    text = "".join(" " if unicodedata.category(c)[0] in "CZ" else c for c in text)
    return re.sub(r" +", " ", text).strip()


def hangul_count(text):
    """Hangul syllables and jamo in text."""
    return sum(1 for c in text if "\uac00" <= c <= "\ud7a3"  # syllables
               or "\u1100" <= c <= "\u11ff" or "\u3130" <= c <= "\u318f")  # jamo


def letter_count(text):
    return sum(1 for c in text if c.isalpha())


def stable_hash(name, key):
    return hashlib.sha256(f"{name}\0{key}".encode("utf-8")).hexdigest()


def split_stratified(name, items, fractions=(0.8, 0.1, 0.1)):
    """items: list of (id, text, label). Returns {split: [(id, text, label)]}.

    Within each label the items are ordered by SHA-256(name, id); the first 10% go to test, the
    next 10% to val, the rest to train (rounded per label), so every split has every label in the
    set's proportions and the split depends only on the ids, not on the order of the source.
    """
    by_label = {}
    for item in items:
        by_label.setdefault(item[2], []).append(item)
    out = {s: [] for s in SPLITS}
    for label in sorted(by_label):
        group = sorted(by_label[label], key=lambda it: stable_hash(name, it[0]))
        n_test = round(len(group) * fractions[2])
        n_val = round(len(group) * fractions[1])
        out["test"] += group[:n_test]
        out["val"] += group[n_test:n_test + n_val]
        out["train"] += group[n_test + n_val:]
    for s in SPLITS:
        out[s].sort(key=lambda it: stable_hash(name, it[0]))
    return out


def dedupe(items):
    """Drops repeated texts (same text after clean()): one copy is kept when the copies agree on the
    label, none when they disagree. Keeps the first by id order. Returns (kept, n_dropped)."""
    by_text = {}
    for item in items:
        by_text.setdefault(item[1], []).append(item)
    kept = []
    for copies in by_text.values():
        if len({c[2] for c in copies}) == 1:
            kept.append(min(copies, key=lambda c: c[0]))
    kept.sort(key=lambda c: c[0])
    return kept, len(items) - len(kept)


def write_tsv(path, rows):
    """rows: (text, label); text already cleaned. Written atomically (path.part, then rename)."""
    with open(path + ".part", "w", encoding="utf-8", newline="\n") as f:
        f.write("text\tlabel\n")
        for text, label in rows:
            f.write(f"{text}\t{label}\n")
    os.replace(path + ".part", path)


def write_set(out_dir, splits):
    """splits: {split: [(id, text, label)]} -> out_dir/{train,val,test}.tsv."""
    os.makedirs(out_dir, exist_ok=True)
    for s in SPLITS:
        write_tsv(os.path.join(out_dir, f"{s}.tsv"), [(t, l) for _, t, l in splits[s]])


def read_tsv(path):
    """Reads a set's file back: [(text, label)]; fails on a malformed line."""
    rows = []
    with open(path, encoding="utf-8", newline="\n") as f:
        header = f.readline()
        if header != "text\tlabel\n":
            fail(f"{path}: the first line is {header!r}, not 'text<TAB>label'")
        for n, line in enumerate(f, start=2):
            if not line.endswith("\n"):
                fail(f"{path}:{n}: the last line has no newline")
            fields = line[:-1].split("\t")
            if len(fields) != 2:
                fail(f"{path}:{n}: {len(fields)} fields, not 2")
            rows.append((fields[0], fields[1]))
    return rows


def label_counts(rows):
    counts = {}
    for _, label in rows:
        counts[label] = counts.get(label, 0) + 1
    return counts


def validate_file(path, labels=None, number_range=None, min_rows=1):
    """Checks one file: header, 2 fields, no empty or untrimmed text, labels in `labels` (or, for
    regression, numbers within number_range). Returns the rows."""
    rows = read_tsv(path)
    if len(rows) < min_rows:
        fail(f"{path}: {len(rows)} examples, expected at least {min_rows}")
    for n, (text, label) in enumerate(rows, start=2):
        if not text or text != text.strip() or "  " in text:
            fail(f"{path}:{n}: empty or unclean text")
        if labels is not None and label not in labels:
            fail(f"{path}:{n}: label {label!r} is not one of {sorted(labels)}")
        if number_range is not None:
            try:
                value = float(label)
            except ValueError:
                fail(f"{path}:{n}: label {label!r} is not a number")
            if not number_range[0] <= value <= number_range[1]:
                fail(f"{path}:{n}: label {value} outside {number_range}")
    return rows


def validate_set(out_dir, labels=None, number_range=None, expected=None):
    """Validates a whole set: each file as above, no text in two splits, and, when `expected` is
    given ({split: {label: count}}), exactly those counts. Returns {split: {label: count}}."""
    seen = {}
    counts = {}
    for s in SPLITS:
        path = os.path.join(out_dir, f"{s}.tsv")
        if not os.path.isfile(path):
            fail(f"{path} is missing")
        rows = validate_file(path, labels, number_range)
        for text, _ in rows:
            if seen.setdefault(text, s) != s:
                fail(f"{out_dir}: a text is both in {seen[text]} and {s}: {text[:60]!r}")
        counts[s] = label_counts(rows) if number_range is None else {"(score)": len(rows)}
    if labels is not None:
        for s in SPLITS:
            missing = set(labels) - set(counts[s])
            if missing:
                fail(f"{out_dir}/{s}.tsv has no example of {sorted(missing)}")
    if expected is not None and counts != expected:
        fail(f"{out_dir}: counts {counts} differ from the expected {expected}")
    return counts


def print_counts(name, counts):
    """One line per split: `name split total label=count ...`."""
    for s in SPLITS:
        c = counts[s]
        parts = " ".join(f"{label}={c[label]}" for label in sorted(c))
        print(f"{name:20} {s:5} {sum(c.values()):6}  {parts}")
