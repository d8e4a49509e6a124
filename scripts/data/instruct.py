"""Makes instruct and instruct-ko: the union of the instruction sets, for supervised fine-tuning.

Usage: instruct.py DATA_ROOT. Reads DATA_ROOT/{faq-debian,faq-python,chatterbot,wordnet-define}/
{train,test}.jsonl and writes
  DATA_ROOT/instruct/{train,val,test}.jsonl     all their lines: test = the sets' test lines,
      val = the train lines of 5% of the train (source, id) units (SHA-256, as elsewhere), train
      = the rest; each file shuffled with the fixed seed SEED
  DATA_ROOT/instruct-ko/{train,val,test}.jsonl  the Korean lines of instruct's files, in the same
      split and order (debian-faq ko and chatterbot ko)
and validates them: the chat checks of jsonl.py, and that every line of the sets is in exactly one
file, in its set's split. No lines of its own: it only regroups.
"""

import json
import os
import random
import sys

import jsonl
from common import fail

NAME = "instruct"
PARTS = ("faq-debian", "faq-python", "chatterbot", "wordnet-define")
SEED = 13
VAL = 0.05


def read_parts(root):
    """{split: [row]} of the four sets, in set and file order."""
    rows = {s: [] for s in jsonl.SPLITS_TEST}
    for part in PARTS:
        for s in jsonl.SPLITS_TEST:
            path = os.path.join(root, part, f"{s}.jsonl")
            if not os.path.isfile(path):
                fail(f"{path} is missing: run scripts/get-data.sh {part} first")
            rows[s] += jsonl.read_jsonl(path)
    return rows


def as_lines(rows):
    """Sorted canonical JSON of rows: two lists of rows hold the same lines iff these are equal."""
    return sorted(json.dumps(r, ensure_ascii=False, sort_keys=True) for r in rows)


def unit(row):
    return f"{row['source']}\0{row['id']}"


def main():
    root = sys.argv[1]
    parts = read_parts(root)
    val_of = jsonl.split_ids(NAME, [unit(r) for r in parts["train"]], test=0.0, val=VAL)
    splits = {"train": [r for r in parts["train"] if val_of[unit(r)] == "train"],
              "val": [r for r in parts["train"] if val_of[unit(r)] == "val"],
              "test": parts["test"]}
    rng = random.Random(SEED)
    for s in jsonl.SPLITS_VAL:
        rng.shuffle(splits[s])
    jsonl.write_set(os.path.join(root, NAME), splits)
    jsonl.write_set(os.path.join(root, "instruct-ko"),
                    {s: [r for r in rows if r["lang"] == "ko"] for s, rows in splits.items()})
    check(root)


def check(root):
    """Validates both sets and that they regroup the four sets' lines exactly."""
    parts = read_parts(root)
    made = {s: jsonl.read_jsonl(os.path.join(root, NAME, f"{s}.jsonl")) for s in jsonl.SPLITS_VAL}
    if as_lines(made["train"] + made["val"]) != as_lines(parts["train"]) or \
            as_lines(made["test"]) != as_lines(parts["test"]):
        fail(f"{root}/{NAME}: its lines are not exactly the lines of {', '.join(PARTS)}")
    counts = jsonl.validate_chat_set(os.path.join(root, NAME), jsonl.SPLITS_VAL)
    jsonl.print_counts(NAME, counts)
    ko = {s: [r for r in made[s] if r["lang"] == "ko"] for s in jsonl.SPLITS_VAL}
    for s in jsonl.SPLITS_VAL:
        path = os.path.join(root, "instruct-ko", f"{s}.jsonl")
        if jsonl.read_jsonl(path) != ko[s]:
            fail(f"{path} is not the Korean lines of {NAME}/{s}.jsonl")
    counts = jsonl.validate_chat_set(os.path.join(root, "instruct-ko"), jsonl.SPLITS_VAL)
    jsonl.print_counts("instruct-ko", counts)


if __name__ == "__main__":
    main()
