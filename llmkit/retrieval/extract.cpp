// Text extraction for the retrieval layer (extract.h): the TextBuilder that every format writes
// into (it owns whitespace collapsing, paragraph breaks and heading offsets, so the formats agree
// on what "a paragraph" is), plain text, a line-based Markdown reader, gzip through zlib, format
// detection and the UTF-8 check. The HTML tag scanner is in extract_html.cpp, the roff reader
// for man pages in extract_man.cpp.
// Not here: chunking (chunker.cpp).
#include "llmkit/retrieval/extract.h"

#include <zlib.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <sstream>

#include "llmkit/core/error.h"
#include "llmkit/retrieval/extract_internal.h"
#include "llmkit/tokenizer/unicode.h"

namespace llmkit::retrieval {

namespace detail {

bool is_blank(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_blank(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_blank(s.back())) s.remove_suffix(1);
  return s;
}

std::string collapse_whitespace(std::string_view s) {
  std::string out;
  bool space = false;
  for (char c : s) {
    if (is_blank(c)) {
      space = !out.empty();
    } else {
      if (space) out += ' ';
      space = false;
      out += c;
    }
  }
  return out;
}

void TextBuilder::put(std::string_view s) {
  for (char c : s) {
    if (preformatted_) {
      put_preformatted(c);
    } else if (is_blank(c)) {
      pending_space_ = true;
    } else {
      put_visible(c);
    }
  }
}

void TextBuilder::put_preformatted(char c) {
  if (c == '\r') return;
  if (c == '\n') {
    // One newline ends a line, two (a blank line) end a paragraph, more are the same paragraph
    // break: the output's paragraphs are always separated by exactly one blank line.
    pending_break_ = std::min(pending_break_ + 1, 2);
    pending_space_ = false;
    indent_.clear();  // a line of only blanks is a blank line
    return;
  }
  if (c == ' ' || c == '\t') {
    // Indentation is content in preformatted text, but only once the line has something else:
    // it waits in indent_ until then. Blanks inside a line go out (trailing ones are trimmed at
    // the line's end).
    if (pending_break_ > 0 || out_.empty() || out_.back() == '\n') {
      indent_ += c;
    } else {
      out_ += c;
    }
    return;
  }
  put_visible(c);
}

void TextBuilder::flush_breaks() {
  if (pending_break_ > 0 && !out_.empty()) {
    while (!out_.empty() && (out_.back() == ' ' || out_.back() == '\t')) out_.pop_back();
    // out_ never ends in more than "\n\n": count what is there and add the rest.
    int have = 0;
    if (!out_.empty() && out_.back() == '\n') {
      have = (out_.size() >= 2 && out_[out_.size() - 2] == '\n') ? 2 : 1;
    }
    for (int k = have; k < pending_break_; ++k) out_ += '\n';
    pending_space_ = false;
  }
  pending_break_ = 0;
}

void TextBuilder::put_visible(char c) {
  const bool had_break = pending_break_ > 0 && !out_.empty();
  flush_breaks();
  if (pending_space_ && !had_break && !out_.empty() && out_.back() != '\n') out_ += ' ';
  pending_space_ = false;
  out_ += indent_;
  indent_.clear();
  if (heading_level_ > 0 && heading_start_ == kNone) heading_start_ = out_.size();
  out_ += c;
}

void TextBuilder::line_break() {
  pending_break_ = std::max(pending_break_, 1);
  pending_space_ = false;
}

void TextBuilder::paragraph_break() {
  pending_break_ = 2;
  pending_space_ = false;
}

void TextBuilder::begin_heading(int level) {
  end_heading();  // a heading opened inside another ends it, as <h2> inside an open <h1> does
  paragraph_break();
  heading_level_ = level;
  heading_start_ = kNone;
}

void TextBuilder::end_heading() {
  if (heading_level_ == 0) return;
  if (heading_start_ != kNone && heading_start_ < out_.size()) {
    std::string text = collapse_whitespace(std::string_view(out_).substr(heading_start_));
    if (!text.empty()) headings_.push_back({heading_start_, heading_level_, std::move(text)});
  }
  heading_level_ = 0;
  heading_start_ = kNone;
  paragraph_break();
}

std::string TextBuilder::finish(std::vector<Heading>& headings) {
  end_heading();
  while (!out_.empty() && is_blank(out_.back())) out_.pop_back();
  if (!out_.empty()) out_ += '\n';
  headings = std::move(headings_);
  return std::move(out_);
}

}  // namespace detail

using detail::is_blank;
using detail::TextBuilder;
using detail::trim;

const char* format_name(Format f) {
  switch (f) {
    case Format::Text:
      return "text";
    case Format::Markdown:
      return "markdown";
    case Format::Html:
      return "html";
    case Format::Man:
      return "man";
  }
  return "?";
}

namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool starts_with_icase(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && lower(s.substr(0, prefix.size())) == prefix;
}

// ---- Plain text -------------------------------------------------------------------------------

std::string extract_plain(std::string_view content) {
  TextBuilder b;
  b.set_preformatted(true);
  b.put(content);
  std::vector<Heading> none;
  return b.finish(none);
}

// ---- Markdown ---------------------------------------------------------------------------------

// A fence line: up to 3 spaces, then 3+ backticks or tildes. Returns the fence characters.
std::string_view md_fence(std::string_view line) {
  size_t i = 0;
  while (i < line.size() && i < 3 && line[i] == ' ') ++i;
  if (i >= line.size() || (line[i] != '`' && line[i] != '~')) return {};
  size_t j = i;
  while (j < line.size() && line[j] == line[i]) ++j;
  return j - i >= 3 ? line.substr(i, j - i) : std::string_view{};
}

// "===" / "---" under a line (setext heading): 1 or 2, else 0.
int md_setext_level(std::string_view line) {
  line = trim(line);
  if (line.empty()) return 0;
  const char c = line[0];
  if (c != '=' && c != '-') return 0;
  for (char d : line) {
    if (d != c) return 0;
  }
  return c == '=' ? 1 : 2;
}

bool md_thematic_break(std::string_view line) {
  line = trim(line);
  if (line.size() < 3 || (line[0] != '-' && line[0] != '*' && line[0] != '_')) return false;
  int n = 0;
  for (char c : line) {
    if (c == line[0]) {
      ++n;
    } else if (c != ' ') {
      return false;
    }
  }
  return n >= 3;
}

bool is_word_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || (static_cast<unsigned char>(c) & 0x80);
}

// The readable text of one line of Markdown inline syntax: [text](url) -> text, ![alt](src) ->
// alt, `code` -> code, emphasis markers and HTML tags dropped, backslash escapes and entities
// resolved. Emphasis is recognised only at word edges so snake_case and "a * b" survive.
std::string md_inline(std::string_view s) {
  std::string out;
  size_t i = 0;
  while (i < s.size()) {
    const char c = s[i];
    if (c == '\\' && i + 1 < s.size() && std::ispunct(static_cast<unsigned char>(s[i + 1]))) {
      out += s[i + 1];
      i += 2;
    } else if (c == '`') {
      size_t n = 0;
      while (i + n < s.size() && s[i + n] == '`') ++n;
      const size_t close = s.find(std::string(n, '`'), i + n);
      if (close == std::string_view::npos) {
        out.append(s.substr(i, n));
        i += n;
      } else {
        out.append(s.substr(i + n, close - i - n));
        i = close + n;
      }
    } else if (c == '!' && i + 1 < s.size() && s[i + 1] == '[') {
      ++i;  // an image is its alt text: the '[' is handled next
    } else if (c == '[') {
      // [text](target) or [text][ref]: keep the text, drop the target. Brackets nest (a linked
      // image is "[![alt](src)](target)").
      size_t close = i + 1;
      for (int depth = 1; close < s.size(); ++close) {
        if (s[close] == '\\') {
          ++close;
        } else if (s[close] == '[') {
          ++depth;
        } else if (s[close] == ']' && --depth == 0) {
          break;
        }
      }
      if (close >= s.size()) close = std::string_view::npos;
      if (close == std::string_view::npos) {
        out += c;
        ++i;
        continue;
      }
      out += md_inline(s.substr(i + 1, close - i - 1));
      i = close + 1;
      if (i < s.size() && (s[i] == '(' || s[i] == '[')) {
        const size_t end = s.find(s[i] == '(' ? ')' : ']', i + 1);
        if (end != std::string_view::npos) i = end + 1;
      }
    } else if (c == '<') {
      const size_t close = s.find('>', i + 1);
      const std::string_view inner =
          close == std::string_view::npos ? std::string_view{} : s.substr(i + 1, close - i - 1);
      const bool one_word = inner.find_first_of(" \t") == std::string_view::npos;
      if (one_word && (inner.find("://") != std::string_view::npos ||
                       inner.find('@') != std::string_view::npos)) {
        out.append(inner);  // an autolink: the address is the visible text
        i = close + 1;
      } else if (!inner.empty() && (std::isalpha(static_cast<unsigned char>(inner[0])) ||
                                    inner[0] == '/' || inner[0] == '!')) {
        i = close + 1;  // an inline HTML tag
      } else {
        out += c;
        ++i;
      }
    } else if (c == '*' || c == '_' || c == '~') {
      size_t n = 0;
      while (i + n < s.size() && s[i + n] == c) ++n;
      const bool word_before = i > 0 && is_word_char(s[i - 1]);
      const bool word_after = i + n < s.size() && is_word_char(s[i + n]);
      const bool blank_before = i == 0 || is_blank(s[i - 1]);
      const bool blank_after = i + n >= s.size() || is_blank(s[i + n]);
      const bool marker = (c != '~' || n == 2) && !(word_before && word_after && c != '*') &&
                          !(blank_before && blank_after);
      if (!marker) out.append(s.substr(i, n));
      i += n;
    } else if (c == '&') {
      i += detail::decode_entity(s, i, out);
    } else {
      out += c;
      ++i;
    }
  }
  return out;
}

// A list item or block quote marker at the start of a (trimmed) line is kept as text, except the
// quote marker ">", which is only syntax.
std::string_view md_strip_quote(std::string_view line) {
  while (!line.empty() && line[0] == '>') line = trim(line.substr(1));
  return line;
}

// A link reference definition ("[id]: http://...") is not text.
bool md_reference_definition(std::string_view line) {
  if (line.empty() || line[0] != '[') return false;
  const size_t close = line.find("]:");
  return close != std::string_view::npos && line.find(']') == close;
}

std::vector<std::string_view> split_lines(std::string_view s) {
  std::vector<std::string_view> lines;
  size_t start = 0;
  while (start < s.size()) {
    size_t end = s.find('\n', start);
    if (end == std::string_view::npos) end = s.size();
    std::string_view line = s.substr(start, end - start);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    lines.push_back(line);
    start = end + 1;
  }
  return lines;
}

Extracted extract_markdown(std::string_view content) {
  TextBuilder b;
  const std::vector<std::string_view> lines = split_lines(content);
  std::string_view fence;     // the open code fence, empty outside one
  bool in_paragraph = false;  // the previous line was paragraph text (for setext headings)
  for (size_t i = 0; i < lines.size(); ++i) {
    const std::string_view raw = lines[i];
    if (!fence.empty()) {
      const std::string_view f = md_fence(raw);
      if (!f.empty() && f[0] == fence[0] && f.size() >= fence.size() &&
          trim(raw).size() == f.size()) {
        fence = {};
        b.set_preformatted(false);
        b.paragraph_break();
      } else {
        b.put(raw);
        b.put("\n");
      }
      continue;
    }
    const std::string_view line = trim(raw);
    if (line.starts_with("<!--")) {  // an HTML comment, possibly over several lines
      const size_t close = line.find("-->");
      while (close == std::string_view::npos && i + 1 < lines.size() &&
             lines[i].find("-->") == std::string_view::npos) {
        ++i;
      }
      if (close == std::string_view::npos || trim(line.substr(close + 3)).empty()) continue;
    }
    if (line.empty()) {
      b.paragraph_break();
      in_paragraph = false;
      continue;
    }
    if (const std::string_view f = md_fence(raw); !f.empty()) {
      fence = f;
      b.paragraph_break();
      b.set_preformatted(true);
      in_paragraph = false;
      continue;
    }
    if (line[0] == '#') {
      size_t level = 0;
      while (level < line.size() && line[level] == '#') ++level;
      if (level <= 6 && (level == line.size() || line[level] == ' ' || line[level] == '\t')) {
        std::string_view text = trim(line.substr(level));
        while (!text.empty() && text.back() == '#') text.remove_suffix(1);  // closing #s
        b.begin_heading(static_cast<int>(level));
        b.put(md_inline(trim(text)));
        b.end_heading();
        in_paragraph = false;
        continue;
      }
    }
    if (!in_paragraph && i + 1 < lines.size() && md_setext_level(lines[i + 1]) > 0 &&
        !md_thematic_break(line)) {
      b.begin_heading(md_setext_level(lines[i + 1]));
      b.put(md_inline(line));
      b.end_heading();
      ++i;  // the underline
      in_paragraph = false;
      continue;
    }
    if (md_thematic_break(line)) {
      b.paragraph_break();
      in_paragraph = false;
      continue;
    }
    if (md_reference_definition(line)) continue;
    // Markdown source keeps its line structure (lists, tables, short lines): one output line per
    // source line; indented code keeps its indentation.
    if (raw.size() >= 4 && (raw.substr(0, 4) == "    " || raw[0] == '\t') && !in_paragraph) {
      b.set_preformatted(true);
      b.put(raw);
      b.put("\n");
      b.set_preformatted(false);
      continue;
    }
    b.line_break();
    b.put(md_inline(md_strip_quote(line)));
    in_paragraph = true;
  }
  Extracted out;
  out.text = b.finish(out.headings);
  if (!out.headings.empty()) out.title = out.headings.front().text;
  return out;
}

}  // namespace

// ---- Entry points -----------------------------------------------------------------------------

Format detect_format(std::string_view path, std::string_view content) {
  std::string name = lower(path);
  if (const size_t slash = name.find_last_of('/'); slash != std::string::npos) {
    name.erase(0, slash + 1);
  }
  if (name.size() > 3 && name.ends_with(".gz")) name.resize(name.size() - 3);
  const size_t dot = name.find_last_of('.');
  const std::string ext = dot == std::string::npos ? "" : name.substr(dot + 1);
  if (ext == "md" || ext == "markdown") return Format::Markdown;
  if (ext == "html" || ext == "htm" || ext == "xhtml") return Format::Html;
  // Man sections: a digit 1-9 and an optional alphabetic suffix (".3pm", ".1ssl").
  if (!ext.empty() && ext[0] >= '1' && ext[0] <= '9' &&
      std::all_of(ext.begin() + 1, ext.end(), [](char c) { return c >= 'a' && c <= 'z'; })) {
    return Format::Man;
  }
  std::string_view head = trim(content.substr(0, 4096));
  if (head.starts_with("\xEF\xBB\xBF")) head = trim(head.substr(3));  // a UTF-8 BOM
  if (starts_with_icase(head, "<?xml")) {  // XHTML: an XML declaration before the doctype
    const size_t end = head.find("?>");
    head = end == std::string_view::npos ? std::string_view{} : trim(head.substr(end + 2));
  }
  if (starts_with_icase(head, "<!doctype html") || starts_with_icase(head, "<html")) {
    return Format::Html;
  }
  return Format::Text;
}

Extracted extract(std::string_view content, Format format, std::string_view name) {
  if (content.starts_with("\xEF\xBB\xBF")) content.remove_prefix(3);
  Extracted out;
  switch (format) {
    case Format::Text:
      out.text = extract_plain(content);
      break;
    case Format::Markdown:
      out = extract_markdown(content);
      break;
    case Format::Html:
      out = detail::extract_html(content);
      break;
    case Format::Man:
      out = detail::extract_man(content);
      break;
  }
  out.format = format;
  const int64_t bad = tokenizer::utf8_find_invalid(out.text);
  if (bad >= 0) {
    const int64_t bad_in_file = tokenizer::utf8_find_invalid(content);
    fail("extract: ", name.empty() ? "(text)" : name, ": invalid UTF-8 at byte ", bad,
         " of the extracted text",
         bad_in_file >= 0 ? " (first invalid byte of the file: " + std::to_string(bad_in_file) + ")"
                          : std::string());
  }
  // The title and headings are copies of text, except an HTML <title> (outside the body).
  if (tokenizer::utf8_find_invalid(out.title) >= 0) out.title = tokenizer::utf8_repair(out.title);
  return out;
}

namespace {

// The gzip stream `data` decompressed; concatenated members (gzip allows them) are all read.
std::string gunzip(std::string_view data, const std::string& path) {
  // A decompressed size far beyond any document is a gzip bomb, not documentation.
  constexpr size_t kMaxBytes = size_t{1} << 30;
  z_stream zs{};
  LLMKIT_CHECK(inflateInit2(&zs, 16 + MAX_WBITS) == Z_OK, "gunzip: ", path, ": zlib init failed");
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  zs.avail_in = static_cast<uInt>(data.size());
  std::string out;
  char buf[1 << 16];
  int rc = Z_OK;
  while (true) {
    zs.next_out = reinterpret_cast<Bytef*>(buf);
    zs.avail_out = sizeof(buf);
    rc = inflate(&zs, Z_NO_FLUSH);
    out.append(buf, sizeof(buf) - zs.avail_out);
    if (rc == Z_STREAM_END) {
      if (zs.avail_in == 0) break;
      inflateReset(&zs);  // another member follows
      continue;
    }
    if (rc != Z_OK || out.size() > kMaxBytes) break;
  }
  const std::string msg = zs.msg ? zs.msg : "";
  inflateEnd(&zs);
  if (out.size() > kMaxBytes) fail("gunzip: ", path, ": decompresses to more than 1 GiB");
  if (rc == Z_BUF_ERROR) fail("gunzip: ", path, ": truncated gzip data");
  if (rc != Z_STREAM_END) fail("gunzip: ", path, ": corrupt gzip data (", msg, ")");
  return out;
}

bool is_gzip(std::string_view data) {
  return data.size() >= 2 && static_cast<uint8_t>(data[0]) == 0x1f &&
         static_cast<uint8_t>(data[1]) == 0x8b;
}

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  LLMKIT_CHECK(in, "read: cannot open ", path);
  std::ostringstream ss;
  ss << in.rdbuf();
  LLMKIT_CHECK(!in.bad(), "read: error reading ", path);
  return std::move(ss).str();
}

}  // namespace

std::string read_maybe_gzipped(const std::string& path) {
  std::string data = read_all(path);
  return is_gzip(data) ? gunzip(data, path) : data;
}

Extracted extract_file(const std::string& path) {
  std::string data = read_all(path);
  if (lower(path).ends_with(".gz")) {
    LLMKIT_CHECK(is_gzip(data), "extract: ", path, ": named .gz but not gzip data");
  }
  if (is_gzip(data)) data = gunzip(data, path);
  return extract(data, detect_format(path, data), path);
}

}  // namespace llmkit::retrieval
