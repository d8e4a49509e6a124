"""Re-validates data sets that get-data.sh made earlier, without remaking them: the same checks
the making scripts run (file format, labels, splits disjoint, pinned counts; for korean-corpus,
Korean lines, no repeats, its size). get-data.sh runs it for every set it skips.

Usage: check.py DATA_DIR LIBREOFFICE_HELP_KO_VERSION NAME...  Exits non-zero with one line on the
first problem.
"""

import os
import sys

import korean_corpus
import reuters
import sentiment_en
import topics_ko


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
        else:
            sys.exit(f"get-data: check.py knows no data set {name}")


if __name__ == "__main__":
    main()
