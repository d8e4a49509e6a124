"""Reads an FAQ's HTML page (DocBook's Debian FAQ, Sphinx's Python FAQ) as questions and answers.

sections(PATH, heading_tags, start, stop) gives, in page order, each heading of the given levels
with its anchor id and the text blocks below it up to the next such heading: a paragraph's
whitespace collapsed to single spaces, a list item prefixed "- ", a <pre> block kept line by line
(code and shell sessions need their line breaks). Markup is dropped, entities decoded; the
permalink sign Sphinx puts into headings is removed. cut_answer() shortens an answer at a block
boundary. Standard library only; not a general HTML-to-text converter (no tables as tables,
no nested list indentation).
"""

import html.parser
import re

from common import clean

BLOCKS = {"p", "li", "pre", "dt", "dd", "td", "th", "div", "ul", "ol", "dl", "table", "tr",
          "blockquote", "h4", "h5", "h6", "br"}
SKIP = {"script", "style", "head", "title"}
PERMALINK = "\u00b6"  # ¶, Sphinx's headerlink text
# Invisible Hangul fillers (U+115F, U+1160, U+3164): stray keystrokes in the Korean FAQ
# ("줄\u115f인" in 1.7), dropped.
FILLERS = dict.fromkeys(map(ord, "\u115f\u1160\u3164"))


class _FaqParser(html.parser.HTMLParser):
    def __init__(self, heading_tags, start, stop):
        super().__init__(convert_charrefs=True)
        self.heading_tags = set(heading_tags)
        self.start = start  # (tag, attribute, value) of the element that opens the main text
        self.stop = stop  # the same for the first element after it (navigation, sidebar)
        self.started = start is None
        self.stopped = False
        self.sections = []  # [heading_text, anchor_id, [block]]
        self._buf = []
        self._skip = 0
        self._pre = 0
        self._heading = None  # [text parts, anchor id] while inside a heading
        self._bullet = False  # the next block starts a list item
        self._last_id = None  # the last id="..." seen: Sphinx puts a heading's on its <section>

    def _flush(self):
        text = "".join(self._buf)
        self._buf = []
        if self._pre:
            return  # a <pre> block ends at its own end tag
        text = clean(text)
        if text and self.sections:
            if self._bullet:
                text = "- " + text
                self._bullet = False
            self.sections[-1][2].append(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if not self.started:
            self.started = _matches(self.start, tag, attrs)
            return
        if self.stopped or _matches(self.stop, tag, attrs):
            if not self.stopped:
                self._flush()
            self.stopped = True
            return
        if attrs.get("id"):
            self._last_id = attrs["id"]
        if tag in SKIP:
            self._skip += 1
        if tag in self.heading_tags:
            self._flush()
            self._heading = [[], self._last_id]
        elif self._heading is not None:
            if tag == "a" and attrs.get("id"):  # DocBook: <h2><a id="whatisfaq"></a>1.1. ...
                self._heading[1] = attrs["id"]
        elif tag == "pre":
            self._flush()
            self._pre += 1
        elif tag in BLOCKS and not self._pre:
            self._flush()
            if tag == "li":
                self._bullet = True

    def handle_endtag(self, tag):
        if not self.started or self.stopped:
            return
        if tag in SKIP and self._skip:
            self._skip -= 1
        if tag in self.heading_tags and self._heading is not None:
            text = clean("".join(self._heading[0]).replace(PERMALINK, ""))
            self.sections.append([text, self._heading[1], []])
            self._heading = None
            self._bullet = False
        elif tag == "pre" and self._pre:
            self._pre -= 1
            if not self._pre:
                lines = [ln.rstrip() for ln in "".join(self._buf).split("\n")]
                self._buf = []
                text = "\n".join(lines).strip("\n")
                if text.strip() and self.sections:
                    self.sections[-1][2].append(text)
        elif tag in BLOCKS and not self._pre:
            self._flush()

    def handle_data(self, data):
        if not self.started or self.stopped or self._skip:
            return
        data = data.translate(FILLERS)
        if self._heading is not None:
            self._heading[0].append(data)
        else:
            self._buf.append(data)


def _matches(marker, tag, attrs):
    """marker (tag, attribute, value): tag has that attribute among its space-separated values."""
    return marker is not None and tag == marker[0] and \
        marker[2] in (attrs.get(marker[1]) or "").split()


def sections(path, heading_tags, start=None, stop=None):
    """[(heading text, anchor id, [block])] of the page at path, in order. Only the text between
    the element start and the element stop is read, each given as (tag, attribute, value), e.g.
    ("div", "role", "main"): what is around (navigation, sidebars) is not."""
    with open(path, encoding="utf-8") as f:
        parser = _FaqParser(heading_tags, start, stop)
        parser.feed(f.read())
        parser.close()
    parser._flush()
    return [(t, i, blocks) for t, i, blocks in parser.sections]


def cut_answer(blocks, limit=1200):
    """Joins blocks with blank lines, keeping whole blocks while the total stays within limit
    characters (at least the first block). A first block longer than limit is cut at the last
    sentence end before limit (or the last space) and gets " ...". Returns (text, was_cut)."""
    out, size = [], 0
    for b in blocks:
        extra = len(b) + (2 if out else 0)
        if out and size + extra > limit:
            return "\n\n".join(out), True
        out.append(b)
        size += extra
    text = "\n\n".join(out)
    if len(text) <= limit:
        return text, False
    head = text[:limit]
    ends = [m.end() for m in re.finditer(r"[.!?。](\s|$)", head)]
    cut = ends[-1] if ends and ends[-1] > limit // 2 else head.rfind(" ")
    return head[:cut].rstrip() + " ...", True
