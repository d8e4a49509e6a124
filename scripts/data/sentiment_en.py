"""Makes sentiment-en and sentiment-en-score from the VADER paper's human-rated sentences.

Usage: sentiment_en.py HUTTO_DIR OUT_ROOT, where HUTTO_DIR is hutto_ICWSM_2014/ unpacked from the
vaderSentiment 3.3.2 sdist (additional_resources/hutto_ICWSM_2014.tar.gz). Reads the
*_GroundTruth.txt files (ID<TAB>mean rating -4..+4<TAB>text, CRLF, UTF-8), writes
  OUT_ROOT/sentiment-en/{train,val,test}.tsv        movie reviews, > 0.5 positive, < -0.5 negative
  OUT_ROOT/sentiment-en/test-{tweets,amazon,nyt}.tsv the other domains, binarised alike, test only
  OUT_ROOT/sentiment-en-score/{train,val,test}.tsv  movie reviews, label = the mean rating
and validates them (check(), also run by check.py). The score set keeps the binary set's split
for the examples they share.
"""

import html
import os
import sys

from common import SPLITS, clean, dedupe, fail, label_counts, print_counts, split_stratified
from common import validate_file, validate_set, write_set, write_tsv

FILES = {
    "movie": ("movieReviewSnippets_GroundTruth.txt", 10605),
    "tweets": ("tweets_GroundTruth.txt", 4200),
    "amazon": ("amazonReviewSnippets_GroundTruth.txt", 3708),
    "nyt": ("nytEditorialSnippets_GroundTruth.txt", 5190),
}
LABELS = {"negative", "positive"}
# The counts this source (the sdist pinned by SHA-256 in get-data.sh) gives; a change is an error.
EXPECTED = {
    "sentiment-en": {
        "train": {"negative": 4048, "positive": 3985},
        "val": {"negative": 506, "positive": 498},
        "test": {"negative": 506, "positive": 498},
    },
    "sentiment-en-score": {
        "train": {"(score)": 8481},
        "val": {"(score)": 1060},
        "test": {"(score)": 1060},
    },
    "test-tweets": {"negative": 1062, "positive": 2300},
    "test-amazon": {"negative": 1216, "positive": 1719},
    "test-nyt": {"negative": 1663, "positive": 1088},
}


def read_ground_truth(path, expected_rows):
    """[(id, text, score)]: HTML entities (&amp; in the tweets) decoded, whitespace cleaned."""
    with open(path, "rb") as f:
        raw = f.read()
    try:
        data = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        fail(f"{path} is not UTF-8 ({e})")
    rows = []
    for n, line in enumerate(data.splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != 3:
            fail(f"{path}:{n}: {len(fields)} fields, not 3 (ID, mean rating, text)")
        score = float(fields[1])
        if not -4 <= score <= 4:
            fail(f"{path}:{n}: rating {score} outside -4..+4")
        text = clean(html.unescape(fields[2]))
        if text:
            rows.append((fields[0], text, score))
    if len(rows) != expected_rows:
        fail(f"{path}: {len(rows)} rows, the paper's README says {expected_rows}")
    return rows


def binarise(rows):
    """Keeps the clearly rated: > 0.5 positive, < -0.5 negative; the rest (near 0) is dropped."""
    out = []
    for id_, text, score in rows:
        if score > 0.5:
            out.append((id_, text, "positive"))
        elif score < -0.5:
            out.append((id_, text, "negative"))
    return out


def sort_key(id_):
    """Movie IDs are numbers, the others `review_sentence`; sort them as numbers."""
    return tuple(int(p) for p in id_.split("_"))


def main():
    hutto, root = sys.argv[1], sys.argv[2]
    data = {k: read_ground_truth(os.path.join(hutto, f), n) for k, (f, n) in FILES.items()}

    # Binary movie reviews: dedupe (a repeated text keeps one copy), split by the snippet ID.
    movie = sorted(binarise(data["movie"]), key=lambda r: sort_key(r[0]))
    items, _ = dedupe([(f"{sort_key(i)[0]:06d}", t, l) for i, t, l in movie])
    splits = split_stratified("sentiment-en", items)
    out = os.path.join(root, "sentiment-en")
    write_set(out, splits)
    for domain in ("tweets", "amazon", "nyt"):
        rows, _ = dedupe(binarise(sorted(data[domain], key=lambda r: sort_key(r[0]))))
        write_tsv(os.path.join(out, f"test-{domain}.tsv"), [(t, l) for _, t, l in rows])

    # Scores: every movie snippet (also the near-neutral ones); a snippet in the binary set keeps
    # its split there, the others are split alone by the same rule.
    split_of = {t: s for s in SPLITS for _, t, _ in splits[s]}
    scored, _ = dedupe([(f"{sort_key(i)[0]:06d}", t, f"{s:.4f}") for i, t, s in data["movie"]])
    rest = [(i, t, "near-zero") for i, t, _ in scored if t not in split_of]
    for s, part in split_stratified("sentiment-en-score", rest).items():
        for _, t, _ in part:
            split_of[t] = s
    score_splits = {s: [it for it in scored if split_of[it[1]] == s] for s in SPLITS}
    write_set(os.path.join(root, "sentiment-en-score"), score_splits)

    check(root)


def check(root):
    """Validates both sets (and the extra test files) and prints their counts."""
    out = os.path.join(root, "sentiment-en")
    counts = validate_set(out, LABELS, expected=EXPECTED["sentiment-en"])
    print_counts("sentiment-en", counts)
    for domain in ("tweets", "amazon", "nyt"):
        rows = validate_file(os.path.join(out, f"test-{domain}.tsv"), LABELS)
        c = label_counts(rows)
        if c != EXPECTED[f"test-{domain}"]:
            fail(f"{out}/test-{domain}.tsv: counts {c} differ from {EXPECTED[f'test-{domain}']}")
        print(f"{'sentiment-en':20} {'test-' + domain:12} {len(rows):6}  "
              + " ".join(f"{k}={c[k]}" for k in sorted(c)))
    counts = validate_set(os.path.join(root, "sentiment-en-score"), number_range=(-4, 4),
                          expected=EXPECTED["sentiment-en-score"])
    print_counts("sentiment-en-score", counts)

if __name__ == "__main__":
    main()
