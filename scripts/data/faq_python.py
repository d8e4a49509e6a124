"""Makes faq-python: the Python FAQ's questions and answers (English), as chat JSONL.

Usage: faq_python.py FAQ_DIR OUT_DIR, FAQ_DIR = /usr/share/doc/python3.11/html/faq (Debian's
python3.11-doc: Sphinx HTML, one page per FAQ: general, programming, design, library, extending,
windows, gui, installed). A question is a heading (h2-h4) of the page's main text that has text
below it before the next heading (group headings such as "Core Language" have none and are left
out); its answer is that text, code blocks kept line by line, cut to ~1200 characters at a block
boundary (faq_html.cut_answer). The id is <page>/<anchor>; 10% of the ids go to test. Not in it:
the index page, the sidebars, and the Korean language (the Python docs ship in English only).
"""

import os
import sys

import faq_html
import jsonl
from common import fail

NAME = "faq-python"
PAGES = ("general", "programming", "design", "library", "extending", "windows", "gui",
         "installed")
# The counts python3.11-doc PINNED gives; another version is checked for structure only.
PINNED = "3.11.2-6+deb12u9"
EXPECTED = {"train": {"en": 160}, "test": {"en": 18}}


def build(faq_dir):
    """[(id, question, answer)] in page order."""
    items, seen = [], set()
    for page in PAGES:
        path = os.path.join(faq_dir, f"{page}.html")
        if not os.path.isfile(path):
            fail(f"{path} is missing: run scripts/install-deps.sh --data (python3.11-doc)")
        for question, anchor, blocks in faq_html.sections(
                path, ("h2", "h3", "h4"), start=("div", "role", "main"),
                stop=("div", "class", "sphinxsidebar")):
            if not blocks:
                continue
            if not anchor:
                fail(f"{path}: the heading {question!r} has no anchor")
            if question in seen:  # the same question twice would straddle the split
                continue
            seen.add(question)
            answer, _ = faq_html.cut_answer(blocks)
            items.append((f"{page}/{anchor}", question, answer))
    return items


def main():
    faq_dir, out = sys.argv[1:3]
    items = build(faq_dir)
    split_of = jsonl.split_ids(NAME, [id_ for id_, _, _ in items])
    splits = {s: [] for s in jsonl.SPLITS_TEST}
    for id_, question, answer in items:
        splits[split_of[id_]].append(jsonl.chat([question, answer], "en", "python-faq", id_))
    jsonl.write_set(out, splits)
    check(out)


def check(out):
    """Validates faq-python (exact counts for the PINNED package) and prints its counts."""
    version = jsonl.package_version("python3.11-doc")
    expected = EXPECTED if version == PINNED else None
    if expected is None:
        print(f"{NAME}: python3.11-doc {version}, counts pinned for {PINNED} only")
    counts = jsonl.validate_chat_set(out, jsonl.SPLITS_TEST, expected)
    jsonl.print_counts(NAME, counts)


if __name__ == "__main__":
    main()
