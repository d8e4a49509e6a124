"""Makes korean-corpus/corpus.txt: Korean text from Debian packages, one paragraph a line, for
pretraining a small Korean BERT.

Usage: korean_corpus.py HELP_DIR TOPICS_DIR OUT_DIR. Sources, in this order:
  1. libreoffice-help-ko: the Korean paragraphs of the help pages (as topics_ko.py reads them),
     except every paragraph that occurs in a topics-ko val or test page, so a model pretrained
     here has not seen the topic test text;
  2. libreoffice-l10n-ko: the Korean user-interface messages (msgstr of its .mo catalogs);
  3. debian-faq-ko: the Debian FAQ in Korean (its HTML pages);
  4. installation-guide-<arch>: the Debian installation guide in Korean (its HTML pages);
  5. the Korean manual pages under /usr/share/man/ko (man-db, login, passwd, psmisc, xz-utils),
     rendered by `man` with no line wrapping.
A line is kept when Hangul is at least half of its letters and it has >= 10 Hangul characters;
repeated lines are kept once. Validates the result (sizes, no val/test paragraph) and prints them.
"""

import glob
import os
import re
import struct
import subprocess
import sys

from common import clean, fail, hangul_count, letter_count, read_tsv

import topics_ko

MO_DIR = "/usr/lib/libreoffice/program/resource/ko/LC_MESSAGES"
FAQ_DIR = "/usr/share/doc/debian/FAQ/ko"
GUIDE_GLOB = "/usr/share/doc/installation-guide-*/ko"
MAN_DIR = "/usr/share/man/ko"
MIN_HANGUL = 10
MIN_CHARS = 800_000  # the packages of Debian 12 give ~0.9 M; far less means a source is missing


def keep(line):
    h = hangul_count(line)
    return h >= MIN_HANGUL and 2 * h >= letter_count(line)


def mo_messages(path):
    """The msgstr strings of a GNU .mo catalog (plural forms split), UTF-8."""
    with open(path, "rb") as f:
        data = f.read()
    magic = struct.unpack("<I", data[:4])[0]
    order = "<" if magic == 0x950412DE else ">"
    _, n, _, tr_off = struct.unpack(order + "4I", data[4:20])
    out = []
    for i in range(n):
        length, offset = struct.unpack(order + "2I", data[tr_off + 8 * i:tr_off + 8 * i + 8])
        text = data[offset:offset + length].decode("utf-8", errors="strict")
        if text.startswith("Project-Id-Version") or text.startswith("Content-Type"):
            continue  # the header entry
        out += text.split("\0")
    return out


def ui_lines():
    lines = []
    for path in sorted(glob.glob(os.path.join(MO_DIR, "*.mo"))):
        for msg in mo_messages(path):
            msg = re.sub(r"\(~?[A-Za-z0-9]\)", "", msg).replace("~", "")  # accelerator marks
            lines.append(clean(msg))
    return lines


def html_lines(pattern):
    lines = []
    for path in sorted(glob.glob(pattern)):
        lines += topics_ko.helpko.page_paragraphs(path, whole_body=True)
    return lines


def man_lines():
    """Each man page rendered with MANWIDTH large enough that a paragraph is one line."""
    lines = []
    env = dict(os.environ, MANWIDTH="100000", MAN_KEEP_FORMATTING="", LC_ALL="C.UTF-8")
    for path in sorted(glob.glob(os.path.join(MAN_DIR, "man*", "*"))):
        out = subprocess.run(["man", "--nh", "--nj", "-l", path], env=env, capture_output=True,
                             check=True).stdout.decode("utf-8")
        out = re.sub(r".\x08", "", out)  # overstrike bold/underline, as col -b removes it
        lines += [clean(line) for line in out.split("\n")[1:-2]]  # no running header, footer
    return lines


def held_out_paragraphs(help_dir, topics_dir):
    """The Korean paragraphs of the topics-ko val and test pages; checks that topics_ko.build
    gives the files that are there (same code, same package)."""
    splits, paragraphs = topics_ko.build(help_dir)
    held = set()
    for s in ("val", "test"):
        on_disk = [t for t, _ in read_tsv(os.path.join(topics_dir, f"{s}.tsv"))]
        if on_disk != [t for _, t, _ in splits[s]]:
            fail(f"{topics_dir}/{s}.tsv is not what topics_ko.py makes now: remake topics-ko first")
        for rel, _, _ in splits[s]:
            held.update(paragraphs[rel])
    return held


def write_corpus(path, sources, held):
    """Writes the kept lines of each (name, lines) source; returns [(name, lines, chars)]."""
    seen, stats = set(), []
    with open(path + ".part", "w", encoding="utf-8", newline="\n") as f:
        for name, lines in sources:
            n = chars = 0
            for line in lines:
                if keep(line) and line not in held and line not in seen:
                    seen.add(line)
                    f.write(line + "\n")
                    n += 1
                    chars += len(line)
            if n == 0:
                fail(f"korean-corpus: no Korean text from {name}")
            stats.append((name, n, chars))
    os.replace(path + ".part", path)
    return stats


def check(out_dir, held=frozenset()):
    """Reads corpus.txt back: every line Korean and once, none in `held` (the topics-ko val/test
    paragraphs, when given), at least MIN_CHARS characters. Prints its size."""
    path = os.path.join(out_dir, "corpus.txt")
    with open(path, encoding="utf-8") as f:
        text = f.read()
    lines = text.split("\n")[:-1]
    if not text.endswith("\n") or any(not keep(line) or line in held for line in lines):
        fail(f"{path}: a line is not Korean, or is a topics-ko val/test paragraph")
    if len(set(lines)) != len(lines):
        fail(f"{path}: a line is repeated")
    size = os.path.getsize(path)
    print(f"{'korean-corpus':20} {'total':20} {len(lines):7} lines {len(text):9} chars "
          f"{hangul_count(text)} Hangul, {size / 1e6:.2f} MB")
    if len(text) < MIN_CHARS:
        fail(f"{path}: {len(text)} characters, expected at least {MIN_CHARS}")


def main():
    help_dir, topics_dir, out_dir = sys.argv[1:4]
    held = held_out_paragraphs(help_dir, topics_dir)
    help_lines = [p for _, module, paras in topics_ko.helpko.pages(help_dir) for p in paras
                  if module in topics_ko.LABEL or module == "sdatabase"]
    sources = [("libreoffice-help-ko", help_lines),
               ("libreoffice-l10n-ko", ui_lines()),
               ("debian-faq-ko", html_lines(os.path.join(FAQ_DIR, "*.ko.html"))),
               ("installation-guide", html_lines(os.path.join(GUIDE_GLOB, "*.html"))),
               ("man pages (ko)", man_lines())]
    os.makedirs(out_dir, exist_ok=True)
    stats = write_corpus(os.path.join(out_dir, "corpus.txt"), sources, held)
    for name, n, chars in stats:
        print(f"{'korean-corpus':20} {name:20} {n:7} lines {chars:9} chars")
    check(out_dir, held)

if __name__ == "__main__":
    main()
