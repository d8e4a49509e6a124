// HTML -> text for extract.h: a small hand-written tag scanner (no parser library, no DOM), good
// for the documentation HTML that generators write (DocBook XSL, Sphinx, pandoc). It reads tags
// and their attributes, drops what a reader never sees (<head> but its <title>, <script>,
// <style>, comments) and navigation chrome (<nav>, role="navigation", DocBook's navheader /
// navfooter and tables of contents, Sphinx's page footer, Sphinx's "¶" headerlink anchors), and
// decodes entities. Not here: error recovery of a browser (unclosed elements simply run on),
// character sets other than UTF-8 (the caller's UTF-8 check rejects them), CSS visibility.
#include <algorithm>
#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>

#include "llmkit/retrieval/extract_internal.h"
#include "llmkit/tokenizer/unicode.h"

namespace llmkit::retrieval::detail {

namespace {

// Named entities beyond the XML five: those documentation generators actually emit. Anything
// else is left as written, so an unknown "&foo;" stays readable rather than vanishing.
const std::unordered_map<std::string_view, std::string_view>& named_entities() {
  static const std::unordered_map<std::string_view, std::string_view> table = {
      {"amp", "&"},         {"lt", "<"},          {"gt", ">"},          {"quot", "\""},
      {"apos", "'"},        {"nbsp", " "},        {"mdash", "\u2014"},  {"ndash", "\u2013"},
      {"hellip", "\u2026"}, {"copy", "\u00A9"},   {"reg", "\u00AE"},    {"trade", "\u2122"},
      {"rsquo", "\u2019"},  {"lsquo", "\u2018"},  {"ldquo", "\u201C"},  {"rdquo", "\u201D"},
      {"sbquo", "\u201A"},  {"bdquo", "\u201E"},  {"laquo", "\u00AB"},  {"raquo", "\u00BB"},
      {"bull", "\u2022"},   {"middot", "\u00B7"}, {"deg", "\u00B0"},    {"times", "\u00D7"},
      {"divide", "\u00F7"}, {"plusmn", "\u00B1"}, {"euro", "\u20AC"},   {"pound", "\u00A3"},
      {"yen", "\u00A5"},    {"cent", "\u00A2"},   {"sect", "\u00A7"},   {"para", "\u00B6"},
      {"larr", "\u2190"},   {"rarr", "\u2192"},   {"uarr", "\u2191"},   {"darr", "\u2193"},
      {"harr", "\u2194"},   {"rArr", "\u21D2"},   {"lArr", "\u21D0"},   {"le", "\u2264"},
      {"ge", "\u2265"},     {"ne", "\u2260"},     {"asymp", "\u2248"},  {"infin", "\u221E"},
      {"minus", "\u2212"},  {"prime", "\u2032"},  {"dagger", "\u2020"}, {"frac12", "\u00BD"},
      {"frac14", "\u00BC"}, {"frac34", "\u00BE"}, {"shy", ""},          {"zwj", "\u200D"},
      {"zwnj", "\u200C"},   {"thinsp", "\u2009"}, {"ensp", "\u2002"},   {"emsp", "\u2003"},
      {"iexcl", "\u00A1"},  {"iquest", "\u00BF"}, {"aacute", "\u00E1"}, {"eacute", "\u00E9"},
      {"iacute", "\u00ED"}, {"oacute", "\u00F3"}, {"uacute", "\u00FA"}, {"agrave", "\u00E0"},
      {"egrave", "\u00E8"}, {"auml", "\u00E4"},   {"ouml", "\u00F6"},   {"uuml", "\u00FC"},
      {"Auml", "\u00C4"},   {"Ouml", "\u00D6"},   {"Uuml", "\u00DC"},   {"szlig", "\u00DF"},
      {"ccedil", "\u00E7"}, {"ntilde", "\u00F1"}, {"aring", "\u00E5"},  {"oslash", "\u00F8"},
  };
  return table;
}

bool is_alnum(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0;
}

}  // namespace

size_t decode_entity(std::string_view s, size_t i, std::string& out) {
  size_t j = i + 1;
  if (j < s.size() && s[j] == '#') {
    ++j;
    const bool hex = j < s.size() && (s[j] == 'x' || s[j] == 'X');
    if (hex) ++j;
    const size_t digits = j;
    int64_t cp = 0;
    while (j < s.size() && j - digits < 8 &&
           (hex ? std::isxdigit(static_cast<unsigned char>(s[j])) != 0
                : (s[j] >= '0' && s[j] <= '9'))) {
      cp = cp * (hex ? 16 : 10) + (std::isdigit(static_cast<unsigned char>(s[j]))
                                       ? s[j] - '0'
                                       : std::tolower(static_cast<unsigned char>(s[j])) - 'a' + 10);
      ++j;
    }
    if (j == digits) {
      out += '&';
      return 1;
    }
    if (j < s.size() && s[j] == ';') ++j;
    // NUL, surrogates and values past Unicode cannot be text: the replacement character, as a
    // browser shows them.
    if (cp == 0 || (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) cp = 0xFFFD;
    tokenizer::utf8_append(out, static_cast<int32_t>(cp));
    return j - i;
  }
  while (j < s.size() && j - i <= 32 && is_alnum(s[j])) ++j;
  if (j < s.size() && s[j] == ';' && j > i + 1) {
    const auto& table = named_entities();
    if (auto it = table.find(s.substr(i + 1, j - i - 1)); it != table.end()) {
      out += it->second;
      return j + 1 - i;
    }
  }
  out += '&';
  return 1;
}

namespace {

// U+00A0 (no-break space, "&nbsp;" or the raw character) -> ' ': DocBook writes "Chapter 1."
// with one, and text for search and embedding gains nothing from telling them apart.
void nbsp_to_space(std::string& s) {
  size_t w = 0;
  for (size_t r = 0; r < s.size(); ++r) {
    if (s[r] == '\xC2' && r + 1 < s.size() && s[r + 1] == '\xA0') {
      s[w++] = ' ';
      ++r;
    } else {
      s[w++] = s[r];
    }
  }
  s.resize(w);
}

std::string decode_entities(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    const size_t amp = s.find('&', i);
    if (amp == std::string_view::npos) {
      out.append(s.substr(i));
      break;
    }
    out.append(s.substr(i, amp - i));
    i = amp + decode_entity(s, amp, out);
  }
  nbsp_to_space(out);
  return out;
}

std::string ascii_lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Case-insensitive find of an ASCII lower-case needle.
size_t find_icase(std::string_view s, std::string_view needle, size_t from) {
  for (size_t i = s.find('<', from); i != std::string_view::npos; i = s.find('<', i + 1)) {
    if (i + needle.size() <= s.size() && ascii_lower(s.substr(i, needle.size())) == needle) {
      return i;
    }
  }
  return std::string_view::npos;
}

struct Tag {
  std::string name;  // lower case
  bool end = false;
  bool self_closing = false;
  std::string_view attrs;  // the raw text between the name and '>'
};

// The value of attribute `name` (lower case) in a tag's attribute text, entities decoded;
// `found` says whether it is there.
std::string attribute(std::string_view attrs, std::string_view name, bool& found) {
  found = false;
  size_t i = 0;
  while (i < attrs.size()) {
    while (i < attrs.size() && (is_blank(attrs[i]) || attrs[i] == '/')) ++i;
    const size_t name_begin = i;
    while (i < attrs.size() && !is_blank(attrs[i]) && attrs[i] != '=' && attrs[i] != '/') ++i;
    const std::string attr_name = ascii_lower(attrs.substr(name_begin, i - name_begin));
    while (i < attrs.size() && is_blank(attrs[i])) ++i;
    std::string_view value;
    if (i < attrs.size() && attrs[i] == '=') {
      ++i;
      while (i < attrs.size() && is_blank(attrs[i])) ++i;
      if (i < attrs.size() && (attrs[i] == '"' || attrs[i] == '\'')) {
        const char quote = attrs[i++];
        const size_t close = std::min(attrs.find(quote, i), attrs.size());
        value = attrs.substr(i, close - i);
        i = close + 1;
      } else {
        const size_t begin = i;
        while (i < attrs.size() && !is_blank(attrs[i])) ++i;
        value = attrs.substr(begin, i - begin);
      }
    }
    if (attr_name == name) {
      found = true;
      return decode_entities(value);
    }
    if (i == name_begin) ++i;  // a stray character: step over it
  }
  return "";
}

std::string attribute(std::string_view attrs, std::string_view name) {
  bool found = false;
  return attribute(attrs, name, found);
}

bool has_class(std::string_view attrs, std::string_view cls) {
  const std::string classes = attribute(attrs, "class");
  size_t i = 0;
  while (i < classes.size()) {
    while (i < classes.size() && is_blank(classes[i])) ++i;
    const size_t begin = i;
    while (i < classes.size() && !is_blank(classes[i])) ++i;
    if (std::string_view(classes).substr(begin, i - begin) == cls) return true;
  }
  return false;
}

bool is_void(std::string_view name) {
  static constexpr std::array<std::string_view, 14> kVoid = {
      "area",  "base", "br",   "col",   "embed",  "hr",    "img",
      "input", "link", "meta", "param", "source", "track", "wbr"};
  return std::find(kVoid.begin(), kVoid.end(), name) != kVoid.end();
}

// Elements that start and end a paragraph of their own.
bool is_block(std::string_view name) {
  static constexpr std::array<std::string_view, 33> kBlock = {
      "address",    "article", "aside",  "blockquote", "body",    "caption", "center",
      "dd",         "details", "dialog", "div",        "dl",      "dt",      "fieldset",
      "figcaption", "figure",  "footer", "form",       "header",  "hr",      "li",
      "main",       "ol",      "p",      "section",    "summary", "table",   "tbody",
      "thead",      "tfoot",   "tr",     "ul",         "html"};
  return std::find(kBlock.begin(), kBlock.end(), name) != kBlock.end();
}

// Elements whose whole content is dropped: not text a reader of the page reads as the document.
bool drops_content(const Tag& tag) {
  if (tag.name == "nav" || tag.name == "noscript" || tag.name == "template" || tag.name == "svg") {
    return true;
  }
  if (tag.attrs.empty()) return false;
  const std::string role = attribute(tag.attrs, "role");
  if (role == "navigation" || role == "contentinfo") return true;
  // Sphinx's page footer (copyright, licence, "last updated"): the same text on every page of
  // the Python documentation, which would otherwise sit in a chunk of each.
  if (tag.name == "div" && has_class(tag.attrs, "footer")) return true;
  if (tag.name == "a") return has_class(tag.attrs, "headerlink");  // Sphinx's "¶" permalinks
  // DocBook XSL's navigation bars and its tables of contents (a list of the headings that
  // follow, which would only make a chunk that matches every question about the chapter).
  return has_class(tag.attrs, "navheader") || has_class(tag.attrs, "navfooter") ||
         has_class(tag.attrs, "toc");
}

// Parses the tag at s[i] == '<'; returns the index after its '>' (s.size() when unterminated),
// or i when s[i] does not start a tag (then '<' is text).
size_t parse_tag(std::string_view s, size_t i, Tag& tag) {
  size_t j = i + 1;
  tag = Tag{};
  if (j < s.size() && s[j] == '/') {
    tag.end = true;
    ++j;
  }
  const size_t name_begin = j;
  if (j >= s.size() || !std::isalpha(static_cast<unsigned char>(s[j]))) return i;
  while (j < s.size() && (is_alnum(s[j]) || s[j] == '-' || s[j] == ':' || s[j] == '_')) ++j;
  tag.name = ascii_lower(s.substr(name_begin, j - name_begin));
  const size_t attrs_begin = j;
  char quote = 0;
  while (j < s.size()) {
    if (quote != 0) {
      if (s[j] == quote) quote = 0;
    } else if (s[j] == '"' || s[j] == '\'') {
      // Quotes only open inside an attribute value (after '='), not in a stray apostrophe.
      size_t k = j;
      while (k > attrs_begin && is_blank(s[k - 1])) --k;
      if (k > attrs_begin && s[k - 1] == '=') quote = s[j];
    } else if (s[j] == '>') {
      break;
    }
    ++j;
  }
  tag.attrs = s.substr(attrs_begin, j - attrs_begin);
  if (!tag.attrs.empty() && tag.attrs.back() == '/') {
    tag.self_closing = true;
    tag.attrs.remove_suffix(1);
  }
  return std::min(j + 1, s.size());
}

class HtmlReader {
 public:
  explicit HtmlReader(std::string_view s) : s_(s) {}

  Extracted read() {
    size_t i = 0;
    while (i < s_.size()) {
      if (s_[i] != '<') {
        const size_t next = std::min(s_.find('<', i), s_.size());
        text(s_.substr(i, next - i));
        i = next;
      } else {
        i = markup(i);
      }
    }
    Extracted out;
    out.text = b_.finish(out.headings);
    out.title = collapse_whitespace(title_);
    if (out.title.empty()) {
      for (const Heading& h : out.headings) {
        if (h.level == 1) {
          out.title = h.text;
          break;
        }
      }
    }
    out.lang = lang_;
    return out;
  }

 private:
  bool hidden() const { return skip_depth_ > 0 || in_head_; }

  void text(std::string_view raw) {
    if (!hidden()) b_.put(decode_entities(raw));
  }

  // Handles the markup starting at s_[i] == '<' and returns where scanning continues.
  size_t markup(size_t i) {
    const std::string_view rest = s_.substr(i);
    if (rest.starts_with("<!--")) {
      const size_t close = s_.find("-->", i + 4);
      return close == std::string_view::npos ? s_.size() : close + 3;
    }
    if (rest.starts_with("<![CDATA[")) {
      const size_t close = std::min(s_.find("]]>", i + 9), s_.size());
      if (!hidden()) b_.put(s_.substr(i + 9, close - i - 9));
      return std::min(close + 3, s_.size());
    }
    if (rest.starts_with("<!") || rest.starts_with("<?")) {  // doctype, XML declaration
      const size_t close = s_.find('>', i);
      return close == std::string_view::npos ? s_.size() : close + 1;
    }
    Tag tag;
    const size_t after = parse_tag(s_, i, tag);
    if (after == i) {  // a '<' that starts no tag ("a < b") is text
      text("<");
      return i + 1;
    }
    if (!tag.end && (tag.name == "script" || tag.name == "style" || tag.name == "title")) {
      // Raw text: everything up to the matching end tag, with no markup inside.
      const size_t close = std::min(find_icase(s_, "</" + tag.name, after), s_.size());
      if (tag.name == "title" && title_.empty())
        title_ = decode_entities(s_.substr(after, close - after));
      const size_t gt = s_.find('>', close);
      return gt == std::string_view::npos ? s_.size() : gt + 1;
    }
    element(tag);
    return after;
  }

  void element(const Tag& tag) {
    const bool opens = !tag.end && !tag.self_closing && !is_void(tag.name);
    if (skip_depth_ > 0) {
      if (tag.name == skip_name_) skip_depth_ += opens ? 1 : (tag.end ? -1 : 0);
      return;
    }
    if (!tag.end && opens && drops_content(tag)) {
      skip_name_ = tag.name;
      skip_depth_ = 1;
      return;
    }
    const std::string& n = tag.name;
    if (n == "html" && !tag.end) {
      lang_ = attribute(tag.attrs, "lang");
      if (lang_.empty()) lang_ = attribute(tag.attrs, "xml:lang");
    }
    if (n == "head") in_head_ = !tag.end;
    if (n == "body") in_head_ = false;
    if (in_head_) return;
    if (n.size() == 2 && n[0] == 'h' && n[1] >= '1' && n[1] <= '6') {
      if (tag.end) {
        b_.end_heading();
      } else {
        b_.begin_heading(n[1] - '0');
      }
    } else if (n == "pre" || n == "listing" || n == "xmp") {
      b_.paragraph_break();
      pre_depth_ = std::max(0, pre_depth_ + (tag.end ? -1 : 1));
      b_.set_preformatted(pre_depth_ > 0);
    } else if (n == "br") {
      b_.line_break();
    } else if (n == "td" || n == "th") {
      if (!tag.end) b_.put(" ");
    } else if (is_block(n)) {
      b_.paragraph_break();
    }
  }

  std::string_view s_;
  TextBuilder b_;
  std::string title_, lang_;
  bool in_head_ = false;
  int pre_depth_ = 0;
  std::string skip_name_;  // the element whose content is being dropped
  int skip_depth_ = 0;     // its nesting depth; 0 when nothing is dropped
};

}  // namespace

Extracted extract_html(std::string_view content) {
  return HtmlReader(content).read();
}

}  // namespace llmkit::retrieval::detail
