#!/usr/bin/python3
"""Real passages for the ANN benchmark: WordNet 3.0's 117,659 synsets (Debian's wordnet-base,
/usr/share/wordnet, under the WordNet 3.0 licence: free use with its notice kept, see
docs/datasets.md), one passage per synset: "lemma, lemma (part of speech): gloss; examples".

  wordnet.py passages BASE.txt QUERY.txt [--queries 1000] [--seed 20261203]
      every synset once, shuffled by the seed; the first --queries lines go to QUERY.txt (held
      out: they are not in the base), the rest to BASE.txt.
  wordnet.py fvecs EMBED.jsonl OUT.fvecs
      `llmkit embed` output (one {"embedding": [...]} per line) to .fvecs (per vector an int32
      dimension, then the float32 values), the format ann_bench and ann_peer.py read.

Python standard library only (the fvecs step uses the array module), run with /usr/bin/python3.
"""
import argparse
import array
import json
import os
import random
import struct
import sys

WORDNET = "/usr/share/wordnet"
POS = {"noun": "noun", "verb": "verb", "adj": "adjective", "adv": "adverb"}


def synsets(directory):
    """Yields (words, part of speech, gloss) from the data.* files; the licence header lines
    start with two spaces."""
    for suffix, pos in POS.items():
        path = os.path.join(directory, "data." + suffix)
        with open(path, encoding="utf-8", errors="strict") as f:
            for n, line in enumerate(f, 1):
                if line.startswith("  "):
                    continue
                head, sep, gloss = line.partition(" | ")
                fields = head.split()
                if not sep or len(fields) < 4:
                    raise SystemExit(f"wordnet: {path}:{n}: not a synset line")
                count = int(fields[3], 16)
                words = []
                for i in range(count):
                    w = fields[4 + 2 * i]
                    # Adjective markers such as "(a)", "(p)", "(ip)" follow the lemma.
                    w = w.split("(")[0] if w.endswith(")") else w
                    words.append(w.replace("_", " "))
                yield words, pos, gloss.strip()


def cmd_passages(args):
    rows = [f"{', '.join(w)} ({pos}): {g}" for w, pos, g in synsets(args.wordnet)]
    random.Random(args.seed).shuffle(rows)
    if args.queries >= len(rows):
        raise SystemExit(f"wordnet: --queries {args.queries} leaves no base ({len(rows)} synsets)")
    for path, part in ((args.query, rows[:args.queries]), (args.base, rows[args.queries:])):
        tmp = path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.writelines(r + "\n" for r in part)
        os.replace(tmp, path)
    print(f"wordnet: {len(rows) - args.queries} base passages -> {args.base}, "
          f"{args.queries} queries -> {args.query}", file=sys.stderr)


def cmd_fvecs(args):
    n = 0
    dim = None
    tmp = args.out + ".tmp"
    with open(args.jsonl, encoding="utf-8") as f, open(tmp, "wb") as out:
        for line_no, line in enumerate(f, 1):
            v = json.loads(line)["embedding"]
            if dim is None:
                dim = len(v)
            if len(v) != dim:
                raise SystemExit(
                    f"wordnet: {args.jsonl}:{line_no}: {len(v)} values, expected {dim}")
            out.write(struct.pack("<i", dim))
            array.array("f", v).tofile(out)
            n += 1
    os.replace(tmp, args.out)
    print(f"wordnet: {n} vectors of {dim} -> {args.out}", file=sys.stderr)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("passages", help="WordNet synsets as passages, base and held-out queries")
    s.add_argument("base")
    s.add_argument("query")
    s.add_argument("--queries", type=int, default=1000)
    s.add_argument("--seed", type=int, default=20261203)
    s.add_argument("--wordnet", default=WORDNET)
    s.set_defaults(fn=cmd_passages)
    s = sub.add_parser("fvecs", help="llmkit embed JSON lines to .fvecs")
    s.add_argument("jsonl")
    s.add_argument("out")
    s.set_defaults(fn=cmd_fvecs)
    args = p.parse_args()
    args.fn(args)


if __name__ == "__main__":
    main()
