"""Makes reuters-corn and reuters-grain from the Reuters-21578 ARFF files in Debian's weka package.

Usage: reuters.py EXAMPLES_DIR OUT_ROOT (EXAMPLES_DIR: /usr/share/doc/weka/examples). Each of
Reuters{Corn,Grain}-{train,test}.arff holds `'text',class` lines (class 1: the article is about
corn / grain). The package's train/test split is kept (a ModApte subset); val is 10% of train per
label, chosen by a SHA-256 of the text. A text repeated within a split keeps one copy; a train text
that is also in test is dropped from train, so the splits are disjoint. Validates what it writes.
"""

import hashlib
import html
import os
import re
import sys

from common import clean, dedupe, fail, print_counts, split_stratified, validate_set, write_set

# The four ARFF files of weka 3.6.14-3 (Debian bookworm); a different file is an error.
SHA256 = {
    "ReutersCorn-train.arff": "1855af1b69c21491a103ae414a1ffe5103c633aa5ad920abde2115aac9f55322",
    "ReutersCorn-test.arff": "e7b3cf0bc83bfa449abeacaef3083e3573f89b4fc2a36111fe59b18ff68e9e33",
    "ReutersGrain-train.arff": "87abc5c45221a5027329912a1ed85d670edf338e696a2a2744893ae71cc2ae1b",
    "ReutersGrain-test.arff": "957e519ba6094b5e1f5aaf0ab4c0829052c8c9b5fd3c586834ddbef77f704cea",
}
EXPECTED = {
    "reuters-corn": {
        "train": {"corn": 40, "other": 1354},
        "val": {"corn": 4, "other": 150},
        "test": {"corn": 24, "other": 578},
    },
    "reuters-grain": {
        "train": {"grain": 92, "other": 1301},
        "val": {"grain": 10, "other": 145},
        "test": {"grain": 57, "other": 545},
    },
}
ESCAPES = {"n": " ", "r": " ", "t": " ", "'": "'", '"': '"', "\\": "\\", "%": "%"}


def read_arff(path, positive):
    """[(text, label)] from one ARFF file: ARFF escapes, then HTML entities (&lt;, &#3;) decoded,
    the closing 'Reuter' dropped."""
    with open(path, "rb") as f:
        raw = f.read()
    name = os.path.basename(path)
    if hashlib.sha256(raw).hexdigest() != SHA256[name]:
        fail(f"{path} is not the file of weka 3.6.14-3 (SHA-256 differs): check, update reuters.py")
    body = raw.decode("utf-8").split("\n@data\n", 1)[1]
    rows = []
    for n, line in enumerate(body.strip().split("\n"), start=1):
        m = re.fullmatch(r"'((?:[^'\\]|\\.)*)',([01])", line)
        if not m:
            fail(f"{path}: instance {n} is not 'text',0|1")
        text = re.sub(r"\\(.)", lambda e: ESCAPES.get(e.group(1), e.group(1)), m.group(1))
        text = clean(html.unescape(text))
        text = re.sub(r"\s*Reuter$", "", text).strip()
        if text:
            rows.append((text, positive if m.group(2) == "1" else "other"))
    return rows


def make(examples, root, topic):
    name = f"reuters-{topic.lower()}"
    train = read_arff(os.path.join(examples, f"Reuters{topic}-train.arff"), topic.lower())
    test = read_arff(os.path.join(examples, f"Reuters{topic}-test.arff"), topic.lower())
    test, _ = dedupe([(f"{i:05d}", t, l) for i, (t, l) in enumerate(test)])
    in_test = {t for _, t, _ in test}
    train, _ = dedupe([(f"{i:05d}", t, l) for i, (t, l) in enumerate(train) if t not in in_test])
    # val: 10% of train per label, by the hash of the text (the id here), none for test.
    parts = split_stratified(name, [(t, t, l) for _, t, l in train], (0.9, 0.1, 0.0))
    splits = {"train": parts["train"], "val": parts["val"], "test": test}
    out = os.path.join(root, name)
    write_set(out, splits)
    check(root, topic)


def check(root, topic):
    """Validates reuters-<topic> and prints its counts."""
    name = f"reuters-{topic.lower()}"
    counts = validate_set(os.path.join(root, name), {topic.lower(), "other"},
                          expected=EXPECTED[name])
    print_counts(name, counts)


def main():
    examples, root = sys.argv[1], sys.argv[2]
    for topic in sys.argv[3:] or ["Corn", "Grain"]:
        make(examples, root, topic)


if __name__ == "__main__":
    main()
