// Plain text out of the files a knowledge base is made of (9.x RAG's "trusted documents"): plain
// text, Markdown, HTML and man pages (roff), each possibly gzip-compressed (.gz, as Debian ships
// its documentation). The result is the readable text with paragraphs separated by blank lines,
// the document's title and its headings with their byte offsets, so that a chunk can be cited as
// "file § heading". Decoding is strict: the text must be valid UTF-8 after extraction (HTML
// entities decoded), else an Error names the file and the byte offset.
// Not here: splitting into chunks (chunker.h), storage (store.h).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace llmkit::retrieval {

enum class Format { Text, Markdown, Html, Man };

// "text" | "markdown" | "html" | "man".
const char* format_name(Format f);

struct Heading {
  size_t offset = 0;  // byte offset of the heading's first character in Extracted::text
  int level = 1;      // 1 = top (HTML h1, Markdown #, man .SH), 2 = below it, ...
  std::string text;   // the heading's text, one line, whitespace collapsed
};

struct Extracted {
  std::string text;   // paragraphs separated by "\n\n"; lines end in "\n"
  std::string title;  // HTML <title>, the first Markdown heading, man page NAME...
  std::string lang;   // HTML <html lang="..."> ("" when not stated)
  Format format = Format::Text;
  std::vector<Heading> headings;  // in text order
};

// The format from the file name (after dropping a ".gz"): .md/.markdown -> Markdown,
// .html/.htm/.xhtml -> Html, .1 ... .9 (man sections, with an optional suffix like .3pm or
// .1ssl) -> Man, anything else -> Text; a Text file whose content starts with "<!DOCTYPE html"
// or "<html" (case-insensitive, after blanks, a BOM or an "<?xml ...?>" declaration) is Html.
Format detect_format(std::string_view path, std::string_view content);

// Extracts `content` (already decompressed; a UTF-8 BOM is dropped) as `format`. `name` is only
// for error messages. In every format runs of blank lines become one, lines lose their trailing
// blanks, and the text has no leading or trailing blank lines.
//  - Text: as is ("\r\n" -> "\n"), headings none, title "".
//  - Markdown: headings from "#"-lines and setext underlines; code fences kept as text; link
//    targets, emphasis markers and HTML tags dropped. Each source line stays a line (lists and
//    tables keep their shape); the title is the first heading.
//  - Html: tags dropped; <script>, <style>, <head> content dropped; navigation chrome dropped
//    (<nav>, role="navigation", DocBook's navheader/navfooter and class="toc" tables of
//    contents, Sphinx's "¶" headerlink anchors); block elements (p, div, li, h1-h6, pre, tr, dt,
//    dd, ...) end a paragraph, <br> ends a line; whitespace collapsed outside <pre>; named and
//    numeric entities decoded (unknown named ones kept as written; U+00A0 no-break spaces become
//    plain spaces); h1-h6 become headings; the title is <title>, else the first h1.
//  - Man: roff requests interpreted enough to read: .SH/.SS headings, .PP/.LP/.P/.TP/.IP
//    paragraph breaks, .B/.I/.BR/... font macros as their text, \f font escapes, \- \(em \(aq
//    and other common escapes, .nf/.EX blocks and tbl tables line by line, .ds strings, .if n
//    (nroff) branches; comments, macro definitions and unknown requests dropped. The title is the
//    NAME section's line ("ls - list directory contents"), else .TH's page name.
Extracted extract(std::string_view content, Format format, std::string_view name = "");

// Reads `path` (gunzipping it when it ends in .gz or starts with the gzip magic), detects the
// format and extracts it. Errors: cannot read, corrupt gzip, invalid UTF-8, each naming `path`.
Extracted extract_file(const std::string& path);

// The whole file, gunzipped when it is gzip (by magic), as bytes. Errors name the path.
std::string read_maybe_gzipped(const std::string& path);

}  // namespace llmkit::retrieval
