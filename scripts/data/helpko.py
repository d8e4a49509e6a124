"""Reads the Korean LibreOffice help pages (Debian's libreoffice-help-ko) as plain text.

pages(HELP_DIR) walks HELP_DIR/text/<module>/.../*.html (HELP_DIR: /usr/share/libreoffice/help/ko)
and gives each page's path (relative to HELP_DIR), module folder and paragraphs: the text of the
block elements (p, h1-h6, li, td, pre, ...) inside <div id="DisplayArea">, without scripts, the
search and donation frames and the debug footer. Used by topics_ko.py and korean_corpus.py.
Not a general HTML-to-text converter: it knows this help's layout only.
"""

import html.parser
import os

from common import clean

BLOCKS = {"p", "h1", "h2", "h3", "h4", "h5", "h6", "li", "td", "th", "pre", "div", "br", "tr",
          "table", "ul", "ol", "dt", "dd"}
SKIP = {"script", "style", "footer", "head", "title"}


class _PageText(html.parser.HTMLParser):
    def __init__(self, whole_body=False):
        super().__init__(convert_charrefs=True)
        self.paragraphs = []
        self._buf = []
        self._skip = 0
        self._in_display = whole_body

    def _flush(self):
        text = clean("".join(self._buf))
        if text:
            self.paragraphs.append(text)
        self._buf = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "div" and attrs.get("id") == "DisplayArea":
            self._in_display = True
        elif tag == "div" and attrs.get("id") in ("SearchFrame", "DonationFrame"):
            self._in_display = False
            self._flush()
        if tag in SKIP:
            self._skip += 1
        if tag in BLOCKS:
            self._flush()

    def handle_endtag(self, tag):
        if tag in SKIP and self._skip:
            self._skip -= 1
        if tag in BLOCKS:
            self._flush()

    def handle_data(self, data):
        if self._in_display and not self._skip:
            self._buf.append(data)


def page_paragraphs(path, whole_body=False):
    """The page's paragraphs; whole_body: every block's text, not only the help's DisplayArea
    (for other HTML documents, e.g. the Debian FAQ)."""
    with open(path, encoding="utf-8") as f:
        parser = _PageText(whole_body)
        parser.feed(f.read())
        parser.close()
    parser._flush()
    return parser.paragraphs


def pages(help_dir):
    """[(relative path, module folder, [paragraph])] sorted by path."""
    out = []
    text_dir = os.path.join(help_dir, "text")
    for dirpath, _, files in os.walk(text_dir):
        for f in files:
            if f.endswith(".html"):
                path = os.path.join(dirpath, f)
                rel = os.path.relpath(path, help_dir)
                module = rel.split(os.sep)[1]
                out.append((rel, module, page_paragraphs(path)))
    out.sort()
    return out
