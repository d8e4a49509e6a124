"""Makes chatterbot: the English and Korean dialogues of chatterbot-corpus, as chat JSONL.

Usage: chatterbot.py DATA_DIR OUT_DIR, DATA_DIR = chatterbot_corpus/data unpacked from the
chatterbot-corpus 1.3.3 sdist (PyPI, SHA-256 pinned in get-data.sh): <language>/<topic>.yml, each
`conversations:` a list of lists of statements. Read with python3-yaml's BaseLoader, so every
scalar stays the text it was written as (the default loader would turn `no` into False and
'1963' into a number). A list means one of two things, by topic (looked at file by file):
  ALTERNATIVES (emotion, computers, food, humor): a prompt, then alternative answers to it
      ("You are arrogant" / "Arrogance is not one of my emotions." / "I have no real emotions,
      so ..."): one example per answer;
  the other topics: a dialogue, each statement answering the one before: one multi-turn example
      (user, assistant, user, ...), a trailing user turn dropped.
Exact repeats are kept once (tech_support.yml repeats 10 pairs 1,050 times); an entry that is not
a list (one malformed trivia entry) is skipped. The id (the unit of the split, 10% test) is
shared by every example whose first turn is the same after lower-casing and dropping
punctuation, so one prompt never straddles train and test. Not in it: the other 26 languages.
"""

import glob
import os
import re
import sys
import unicodedata

import jsonl
from common import fail, stable_hash

NAME = "chatterbot"
LANGS = {"english": "en", "korean": "ko"}
ALTERNATIVES = {"emotion", "computers", "food", "humor"}
# The counts the pinned sdist gives (a change is an error).
EXPECTED = {"train": {"en": 959, "ko": 562}, "test": {"en": 123, "ko": 80}}


def clean_turn(text):
    """NFC; line breaks kept (coding.yml's answers hold code in `|` blocks), each line's trailing
    space and other control characters dropped, blank lines at the ends removed. YAML has
    already folded the plain multi-line scalars into one line."""
    text = unicodedata.normalize("NFC", text)
    text = "".join(c if c == "\n" or unicodedata.category(c)[0] != "C" else " " for c in text)
    return "\n".join(line.rstrip() for line in text.split("\n")).strip()


def prompt_key(text):
    """What makes two first turns the same prompt: case and punctuation ignored."""
    return " ".join(re.findall(r"\w+", text.casefold()))


def read_topic(path):
    """The conversations of one file as lists of cleaned statements; skips a malformed entry."""
    import yaml  # python3-yaml, imported here so that check.py runs without it for other sets

    with open(path, encoding="utf-8") as f:
        doc = yaml.load(f, Loader=yaml.BaseLoader)
    if not isinstance(doc, dict) or not isinstance(doc.get("conversations"), list):
        fail(f"{path}: no conversations list")
    out = []
    for conv in doc["conversations"]:
        if isinstance(conv, list) and all(isinstance(t, str) for t in conv):
            turns = [clean_turn(t) for t in conv]
            if len(turns) >= 2 and all(turns):
                out.append(turns)
    return out


def build(data_dir):
    """[(id, lang, turns)] for both languages; turns alternate user/assistant."""
    items, seen = [], set()
    for folder, lang in LANGS.items():
        paths = sorted(glob.glob(os.path.join(data_dir, folder, "*.yml")))
        if not paths:
            fail(f"{data_dir}/{folder} has no .yml files")
        group = {}  # prompt_key -> id
        for path in paths:
            topic = os.path.basename(path)[:-len(".yml")]
            convs = read_topic(path)
            for n, turns in enumerate(convs):
                if topic in ALTERNATIVES:
                    examples = [[turns[0], answer] for answer in turns[1:]]
                else:
                    examples = [turns[:len(turns) // 2 * 2]]
                id_ = group.setdefault(prompt_key(turns[0]), f"{lang}/{topic}/{n}")
                for ex in examples:
                    if (lang, tuple(ex)) not in seen:
                        seen.add((lang, tuple(ex)))
                        items.append((id_, lang, ex))
    return items


def main():
    data_dir, out = sys.argv[1:3]
    items = build(data_dir)
    split_of = jsonl.split_ids(NAME, [id_ for id_, _, _ in items])
    splits = {s: [] for s in jsonl.SPLITS_TEST}
    for id_, lang, turns in sorted(items, key=lambda it: stable_hash(NAME, it[0])):
        splits[split_of[id_]].append(jsonl.chat(turns, lang, "chatterbot-corpus", id_))
    jsonl.write_set(out, splits)
    check(out)


def check(out):
    """Validates chatterbot against the pinned counts and prints them."""
    counts = jsonl.validate_chat_set(out, jsonl.SPLITS_TEST, EXPECTED)
    jsonl.print_counts(NAME, counts)


if __name__ == "__main__":
    main()
