"""Makes faq-debian: the Debian FAQ's questions and answers in English and Korean, as chat JSONL.

Usage: faq_debian.py FAQ_DIR OUT_DIR, FAQ_DIR = /usr/share/doc/debian/FAQ (Debian's debian-faq,
<chapter>.en.html; debian-faq-ko, ko/<chapter>.ko.html; both DocBook HTML of the same version).
A question is a section heading (h2 or h3) whose English text has a "?" (headings such as
"8.1.1. dpkg" or "16.2. Feedback" are topics, not questions, and are left out); its answer is the
section's text up to the next heading, cut to ~1200 characters at a paragraph boundary
(faq_html.cut_answer). The two languages are matched by section number, and the heading's anchor
id must agree in both (the check that the numbering is the same document). The Korean
translation is partial: a Korean example is left out (the English one kept) when its question
has no Hangul or a paragraph of its answer is still English prose (untranslated()).
10% of the section numbers go to test (the same in both languages); also writes
questions-test.txt (id, lang, question) for before/after comparisons. Not in it: the FAQ's
chapter intros, tables and figures as such.
"""

import glob
import os
import re
import sys

import faq_html
import jsonl
from common import fail, hangul_count

NAME = "faq-debian"
CHAPTERS = ("basic-defs", "getting-debian", "choosing", "compatibility", "software",
            "ftparchives", "pkg-basics", "pkgtools", "uptodate", "kernel", "customizing",
            "support", "contributing", "redistributing", "nextrelease", "faqinfo")
# The counts debian-faq / debian-faq-ko PINNED give; another version is checked for structure.
PINNED = "11.1"
EXPECTED = {"train": {"en": 110, "ko": 83}, "test": {"en": 12, "ko": 10}}
NUMBERED = re.compile(r"^(\d+(?:\.\d+)+)\.\s+(.+)$")
# English function words: three of them in a paragraph without Hangul make it English prose, not
# a command, a path or a list of package names (which the translation rightly keeps as they are).
FUNCTION_WORDS = {"the", "a", "an", "is", "are", "to", "of", "and", "in", "for", "with", "that",
                  "this", "you", "be", "can", "it", "on", "by", "from", "or", "will", "not"}


def untranslated(answer):
    """True when a paragraph of the (Korean) answer is English prose."""
    for block in answer.split("\n\n"):
        words = re.findall(r"[a-z]+", block.lower())
        if not hangul_count(block) and sum(w in FUNCTION_WORDS for w in words) >= 3:
            return True
    return False


def read_lang(path):
    """{section number: (anchor id, question, answer)} of one chapter page."""
    out = {}
    for heading, anchor, blocks in faq_html.sections(path, ("h2", "h3"),
                                                     stop=("div", "class", "navfooter")):
        m = NUMBERED.match(heading)
        if not m:
            fail(f"{path}: a heading without a section number: {heading!r}")
        answer, _ = faq_html.cut_answer(blocks)
        out[m.group(1)] = (anchor, m.group(2), answer)
    return out


def build(faq_dir):
    """[(section id, lang, question, answer)] for both languages, English first."""
    pages = sorted(glob.glob(os.path.join(faq_dir, "*.en.html")))
    names = {os.path.basename(p)[:-len(".en.html")] for p in pages} - {"index"}
    if names != set(CHAPTERS):
        fail(f"{faq_dir}: chapters {sorted(names)} differ from the expected {sorted(CHAPTERS)}")
    items = []
    for chapter in CHAPTERS:
        en = read_lang(os.path.join(faq_dir, f"{chapter}.en.html"))
        ko_path = os.path.join(faq_dir, "ko", f"{chapter}.ko.html")
        if not os.path.isfile(ko_path):
            fail(f"{ko_path} is missing: run scripts/install-deps.sh --data (debian-faq-ko)")
        ko = read_lang(ko_path)
        if en.keys() != ko.keys():
            fail(f"{chapter}: sections differ: en {sorted(en.keys() - ko.keys())}, "
                 f"ko {sorted(ko.keys() - en.keys())}")
        for number, (anchor, question, answer) in en.items():
            if ko[number][0] != anchor:
                fail(f"{chapter} {number}: anchor {anchor!r} in English, "
                     f"{ko[number][0]!r} in Korean")
            if "?" not in question or not answer:
                continue
            items.append((number, "en", question, answer))
            _, q_ko, a_ko = ko[number]
            if hangul_count(q_ko) and not untranslated(a_ko):
                items.append((number, "ko", q_ko, a_ko))
    return items


def main():
    faq_dir, out = sys.argv[1:3]
    items = build(faq_dir)
    split_of = jsonl.split_ids(NAME, sorted({number for number, *_ in items}))
    splits = {s: [] for s in jsonl.SPLITS_TEST}
    for number, lang, question, answer in items:
        splits[split_of[number]].append(
            jsonl.chat([question, answer], lang, "debian-faq", number))
    jsonl.write_set(out, splits)
    with open(os.path.join(out, "questions-test.txt"), "w", encoding="utf-8") as f:
        for row in splits["test"]:
            f.write(f"{row['id']}\t{row['lang']}\t{row['messages'][0]['content']}\n")
    check(out)


def check(out):
    """Validates faq-debian (exact counts for the PINNED package) and prints its counts."""
    version = jsonl.package_version("debian-faq")
    expected = EXPECTED if version == PINNED else None
    if expected is None:
        print(f"{NAME}: debian-faq {version}, counts pinned for {PINNED} only")
    counts = jsonl.validate_chat_set(out, jsonl.SPLITS_TEST, expected)
    jsonl.print_counts(NAME, counts)


if __name__ == "__main__":
    main()
