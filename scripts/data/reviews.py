"""Makes reviews and reviews-prompts: the prompts of the controlled-sentiment experiment (the DPO
paper's IMDb task, here on the VADER movie-review snippets).

Usage: reviews.py DATA_ROOT. Reads DATA_ROOT/sentiment-en-score/{train,val,test}.tsv (made by
sentiment_en.py: every movie snippet, with the split that sentiment-en's reward-classifier
training uses, so no test prompt is a review the classifier was trained on) and writes
  DATA_ROOT/reviews/{train,val,test}.jsonl   {"prompt": first 2-8 words, "completion": the rest}
      for every snippet of 3+ words; the prompt's length is drawn per snippet from a hash of its
      text (capped so that at least one word is left). The completion starts with the space that
      separated it from the prompt, so prompt + completion is the snippet exactly (a GPT-2 style
      tokenizer sees " word" as it would in the whole text).
  DATA_ROOT/reviews-prompts/{train,test}.jsonl  {"prompt": ...}: reviews' train prompts (each
      distinct prompt once) and a seeded sample of N_TEST_PROMPTS distinct test prompts.
Not in it: the scores (sentiment-en-score has them) and any text other than the movie snippets.
"""

import os
import sys

import jsonl
from common import SPLITS, fail, read_tsv, stable_hash

NAME = "reviews"
MIN_WORDS, MAX_WORDS = 2, 8
N_TEST_PROMPTS = 200
# The counts the vaderSentiment sdist pinned in get-data.sh gives.
EXPECTED = {"train": {"(lines)": 8430}, "val": {"(lines)": 1056}, "test": {"(lines)": 1049}}
EXPECTED_PROMPTS = {"train": {"(lines)": 8181}, "test": {"(lines)": N_TEST_PROMPTS}}


def split_snippet(text):
    """(prompt, completion) of one snippet, or None for a snippet under 3 words."""
    words = text.split(" ")
    if len(words) < MIN_WORDS + 1:
        return None
    k = MIN_WORDS + int(stable_hash(NAME, text), 16) % (MAX_WORDS - MIN_WORDS + 1)
    k = min(k, len(words) - 1)
    return " ".join(words[:k]), " " + " ".join(words[k:])


def main():
    root = sys.argv[1]
    src = os.path.join(root, "sentiment-en-score")
    splits = {}
    for s in SPLITS:
        path = os.path.join(src, f"{s}.tsv")
        if not os.path.isfile(path):
            fail(f"{path} is missing: run scripts/get-data.sh sentiment-en-score first")
        rows = []
        for text, _ in read_tsv(path):
            pair = split_snippet(text)
            if pair:
                rows.append({"prompt": pair[0], "completion": pair[1]})
        splits[s] = rows
    jsonl.write_set(os.path.join(root, NAME), splits)

    train = sorted({r["prompt"] for r in splits["train"]}, key=lambda p: stable_hash(NAME, p))
    test = sorted({r["prompt"] for r in splits["test"]}, key=lambda p: stable_hash(NAME, p))
    jsonl.write_set(os.path.join(root, "reviews-prompts"),
                    {"train": [{"prompt": p} for p in train],
                     "test": [{"prompt": p} for p in test[:N_TEST_PROMPTS]]})
    check(root)


def check(root):
    """Validates both sets against the pinned counts and prints them."""
    counts = jsonl.validate_prompt_set(os.path.join(root, NAME), SPLITS, ("prompt", "completion"),
                                       EXPECTED)
    jsonl.print_counts(NAME, counts)
    prompts_dir = os.path.join(root, "reviews-prompts")
    counts = jsonl.validate_prompt_set(prompts_dir, jsonl.SPLITS_TEST, ("prompt",),
                                       EXPECTED_PROMPTS)
    for s in jsonl.SPLITS_TEST:  # each prompt comes from the reviews of the same split
        source = {r["prompt"] for r in jsonl.read_jsonl(os.path.join(root, NAME, f"{s}.jsonl"))}
        for r in jsonl.read_jsonl(os.path.join(prompts_dir, f"{s}.jsonl")):
            if r["prompt"] not in source:
                fail(f"{prompts_dir}/{s}.jsonl: {r['prompt']!r} is no prompt of {NAME}/{s}.jsonl")
    jsonl.print_counts("reviews-prompts", counts)


if __name__ == "__main__":
    main()
