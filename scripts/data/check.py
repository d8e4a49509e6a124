"""Re-validates data sets that get-data.sh made earlier, without remaking them: the same checks
the making scripts run (file format, labels, splits disjoint, pinned counts; for korean-corpus,
Korean lines, no repeats, its size; for the JSONL sets, every line a JSON object with its fields
non-empty, UTF-8, no id or prompt in two splits). get-data.sh runs it for every set it skips.

Usage: check.py DATA_DIR LIBREOFFICE_HELP_KO_VERSION NAME...  Exits non-zero with one line on the
first problem.
"""

import os
import sys

import chatterbot
import faq_debian
import faq_python
import instruct
import korean_corpus
import reuters
import reviews
import sentiment_en
import topics_ko
import wordnet_define


# name -> (module, whether check() takes the set's folder rather than the data root)
JSONL_SETS = {
    "faq-debian": (faq_debian, True),
    "faq-python": (faq_python, True),
    "chatterbot": (chatterbot, True),
    "wordnet-define": (wordnet_define, True),
    "instruct": (instruct, False),
    "instruct-ko": (instruct, False),
    "reviews": (reviews, False),
    "reviews-prompts": (reviews, False),
}


def main():
    root, version, names = sys.argv[1], sys.argv[2], sys.argv[3:]
    done = set()
    for name in names:
        if name in ("sentiment-en", "sentiment-en-score"):
            if "sentiment" not in done:
                sentiment_en.check(root)
                done.add("sentiment")
        elif name in ("reuters-corn", "reuters-grain"):
            reuters.check(root, name.split("-")[1].capitalize())
        elif name == "topics-ko":
            topics_ko.check(os.path.join(root, name), version)
        elif name == "korean-corpus":
            korean_corpus.check(os.path.join(root, name))
        elif name in JSONL_SETS:
            module, folder = JSONL_SETS[name]
            if module not in done:
                module.check(os.path.join(root, name) if folder else root)
                done.add(module)
        else:
            sys.exit(f"get-data: check.py knows no data set {name}")


if __name__ == "__main__":
    main()
