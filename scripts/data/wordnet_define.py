"""Makes wordnet-define: "Define the word X." -> "X (noun): gloss. Example: "..."", as chat JSONL.

Usage: wordnet_define.py WORDNET_DIR OUT_DIR, WORDNET_DIR = /usr/share/wordnet (Debian's
wordnet-base, WordNet 3.0: index.<pos>, data.<pos>, cntlist.rev). Which words: single lower-case
words of 3+ letters that are common, i.e. tagged at least MIN_TAGGED times in the SemCor counts
(cntlist.rev, summed over the word's senses of one part of speech); for each word the part of
speech it is tagged most in, among those whose first sense (WordNet lists senses most frequent
first) has an example sentence that uses the word. The answer is that first sense: its definition
(the gloss before the first quoted example) and that example. A seeded sample of N_WORDS words
(ordered by SHA-256 of the word); the prompt's phrasing is picked by a hash of the word too.
10% of the words go to test. Adverbs and multi-word entries are not in it.
"""

import os
import re
import sys

import jsonl
from common import fail, stable_hash

NAME = "wordnet-define"
POS = {"noun": "noun", "verb": "verb", "adj": "adjective"}
# cntlist.rev sense keys: lemma%<ss_type>:...; 1 noun, 2 verb, 3 adjective, 4 adverb, 5 satellite.
SS_TYPE = {"1": "noun", "2": "verb", "3": "adj", "5": "adj"}
MIN_TAGGED = 3
N_WORDS = 3000
PHRASINGS = ("Define the word {w}.", "What does {w} mean?", "What is the meaning of the word {w}?",
             "Give a dictionary definition of \"{w}\".", "What does the word \"{w}\" mean?")
PINNED = "1:3.0-37"
EXPECTED = {"train": {"en": 2700}, "test": {"en": 300}}


def read_lines(path):
    """The file's lines without the license header (its lines start with two spaces)."""
    if not os.path.isfile(path):
        fail(f"{path} is missing: run scripts/install-deps.sh --data (wordnet-base)")
    with open(path, encoding="utf-8") as f:
        return [line for line in f if not line.startswith("  ")]


def tag_counts(wordnet_dir):
    """{(lemma, pos): times tagged in SemCor}."""
    counts = {}
    for line in read_lines(os.path.join(wordnet_dir, "cntlist.rev")):
        key, _, n = line.split()
        lemma, rest = key.split("%")
        pos = SS_TYPE.get(rest.split(":")[0])
        if pos:
            counts[(lemma, pos)] = counts.get((lemma, pos), 0) + int(n)
    return counts


def first_sense(index_line, data):
    """(definition, [examples]) of the word's first sense; index_line: `lemma pos synset_cnt
    p_cnt [ptr_symbol...] sense_cnt tagsense_cnt synset_offset...` (wndb(5WN))."""
    fields = index_line.split()
    n_synsets = int(fields[2])
    offset = fields[-n_synsets]
    gloss = data[offset].split(" | ", 1)[1].strip()
    definition = gloss.split('"', 1)[0].strip().rstrip(";").strip()
    return definition, re.findall(r'"([^"]+)"', gloss)


def candidates(wordnet_dir):
    """{word: (tagged count, pos, definition, example)}: see the module comment."""
    counts = tag_counts(wordnet_dir)
    out = {}
    for pos in POS:
        data = {line[:8]: line for line in read_lines(os.path.join(wordnet_dir, f"data.{pos}"))}
        for line in read_lines(os.path.join(wordnet_dir, f"index.{pos}")):
            word = line.split(" ", 1)[0]
            n = counts.get((word, pos), 0)
            if not re.fullmatch(r"[a-z]{3,}", word) or n < MIN_TAGGED:
                continue
            definition, examples = first_sense(line, data)
            uses = [e.strip() for e in examples if re.search(rf"\b{word}", e, re.IGNORECASE)]
            if definition and uses and (word not in out or out[word][0] < n):
                out[word] = (n, pos, definition, uses[0])
    return out


def main():
    wordnet_dir, out = sys.argv[1:3]
    words = candidates(wordnet_dir)
    if len(words) < N_WORDS:
        fail(f"{wordnet_dir}: only {len(words)} words qualify, fewer than {N_WORDS}")
    sample = sorted(words, key=lambda w: stable_hash(NAME, w))[:N_WORDS]
    split_of = jsonl.split_ids(NAME, sample)
    splits = {s: [] for s in jsonl.SPLITS_TEST}
    for word in sample:
        _, pos, definition, example = words[word]
        phrasing = PHRASINGS[int(stable_hash(NAME + "/phrasing", word), 16) % len(PHRASINGS)]
        answer = f'{word} ({POS[pos]}): {definition}. Example: "{example}"'
        splits[split_of[word]].append(
            jsonl.chat([phrasing.format(w=word), answer], "en", "wordnet", word))
    jsonl.write_set(out, splits)
    check(out)


def check(out):
    """Validates wordnet-define (exact counts for the PINNED package) and prints its counts."""
    version = jsonl.package_version("wordnet-base")
    expected = EXPECTED if version == PINNED else None
    if expected is None:
        print(f"{NAME}: wordnet-base {version}, counts pinned for {PINNED} only")
    counts = jsonl.validate_chat_set(out, jsonl.SPLITS_TEST, expected)
    jsonl.print_counts(NAME, counts)


if __name__ == "__main__":
    main()
