// Man pages (roff with the man macros) -> text for extract.h: enough of troff to read a page the
// way man(1) shows it: filled paragraphs, .SH/.SS headings, .TP/.IP tagged paragraphs, font
// macros as their plain text, no-fill blocks (.nf, .EX) and tbl tables line by line, \f font
// escapes dropped and the common named glyphs (\(em, \[aq], \[u00E9]) decoded; strings (.ds)
// are expanded. Not here: macro definitions (.de bodies are skipped, not run), conditionals (the
// .if/.ie/.el bodies are dropped, but a .ds inside one is kept), number registers, mdoc beyond
// its section macros, hyphenation and justification.
#include <algorithm>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "llmkit/retrieval/extract_internal.h"
#include "llmkit/tokenizer/unicode.h"

namespace llmkit::retrieval::detail {

namespace {

// groff's special character names that man pages use (groff_char(7)); unknown ones vanish.
std::string_view glyph(std::string_view name) {
  static const std::map<std::string_view, std::string_view> table = {
      {"em", "\u2014"}, {"en", "\u2013"}, {"aq", "'"},      {"dq", "\""},     {"lq", "\u201C"},
      {"rq", "\u201D"}, {"oq", "\u2018"}, {"cq", "\u2019"}, {"bu", "\u2022"}, {"co", "\u00A9"},
      {"rg", "\u00AE"}, {"tm", "\u2122"}, {"mu", "\u00D7"}, {"di", "\u00F7"}, {"+-", "\u00B1"},
      {"de", "\u00B0"}, {"ti", "~"},      {"ha", "^"},      {"ga", "`"},      {"rs", "\\"},
      {"hy", "-"},      {"ul", "_"},      {"ba", "|"},      {"or", "|"},      {"->", "\u2192"},
      {"<-", "\u2190"}, {">=", "\u2265"}, {"<=", "\u2264"}, {"!=", "\u2260"}, {"aa", "\u00B4"},
      {"ss", "\u00DF"}, {"a:", "\u00E4"}, {"o:", "\u00F6"}, {"u:", "\u00FC"}, {"e'", "\u00E9"},
      {"Fo", "\u00AB"}, {"Fc", "\u00BB"}, {"fo", "\u2039"}, {"fc", "\u203A"}, {"sl", "/"},
      {"dg", "\u2020"}, {"ps", "\u00B6"}, {"sc", "\u00A7"}, {"ct", "\u00A2"}, {"Po", "\u00A3"},
      {"Eu", "\u20AC"}, {"Ye", "\u00A5"}, {"pl", "+"},      {"mi", "\u2212"}, {"eq", "="},
      {"sh", "#"},      {"at", "@"},      {"lB", "["},      {"rB", "]"},      {"lC", "{"},
      {"rC", "}"},      {"la", "\u27E8"}, {"ra", "\u27E9"}, {"ap", "~"},      {"bq", "\u201E"},
      {"sq", "\u25A1"}, {"ci", "\u25CB"}, {"rh", "\u261E"}, {"lh", "\u261C"}, {"OK", "\u2713"},
      {"==", "\u2261"}, {"tf", "\u2234"}, {"fm", "\u2032"}, {"12", "\u00BD"}, {"14", "\u00BC"},
      {"34", "\u00BE"}, {"r!", "\u00A1"}, {"r?", "\u00BF"}, {"vb", "|"},      {"nb", "\u2260"},
  };
  const auto it = table.find(name);
  return it == table.end() ? std::string_view{} : it->second;
}

// Reads an escape's name argument at s[i]: "(xx", "[name]" or one character. Returns the name and
// moves i past it.
std::string_view escape_name(std::string_view s, size_t& i) {
  if (i >= s.size()) return {};
  if (s[i] == '(') {
    const std::string_view name = s.substr(i + 1, 2);
    i = std::min(i + 3, s.size());
    return name;
  }
  if (s[i] == '[') {
    const size_t close = std::min(s.find(']', i + 1), s.size());
    const std::string_view name = s.substr(i + 1, close - i - 1);
    i = std::min(close + 1, s.size());
    return name;
  }
  return s.substr(i++, 1);
}

// Skips a delimited argument ('...' or any other delimiter character) at s[i].
void skip_delimited(std::string_view s, size_t& i) {
  if (i >= s.size()) return;
  const size_t close = s.find(s[i], i + 1);
  i = close == std::string_view::npos ? s.size() : close + 1;
}

bool is_hex(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return std::isxdigit(static_cast<unsigned char>(c)) != 0;
  });
}

int count(std::string_view s, std::string_view needle) {
  int n = 0;
  for (size_t i = s.find(needle); i != std::string_view::npos; i = s.find(needle, i + 1)) ++n;
  return n;
}

class ManReader {
 public:
  Extracted read(std::string_view content);

 private:
  std::string unescape(std::string_view s) const;
  void special(std::string_view name, std::string& out) const;
  static std::string_view strip_comment(std::string_view line);
  static std::vector<std::string> arguments(std::string_view s);
  void request(std::string_view line);
  void text_line(const std::string& text);
  void define_string(std::string_view args);
  void conditional(std::string_view name, std::string_view rest);
  void line(std::string_view line);

  TextBuilder b_;
  std::map<std::string, std::string, std::less<>> strings_;
  std::string page_name_;         // .TH's first argument
  int heading_next_ = 0;          // .SH with no argument: the next line is the heading, this level
  bool tag_next_ = false;         // .TP: the next line is the tag
  bool fill_ = true;              // false inside .nf / .EX
  bool skip_definition_ = false;  // inside .de / .ig, up to ".."
  int brace_depth_ = 0;           // inside a dropped \{ ... \} conditional block
  int kept_depth_ = 0;            // inside a kept one (its lines are read as usual)
  int else_taken_ = -1;           // after .ie: 1 when its .el applies, 0 when not, -1 unknown
  int table_ = 0;                 // 1 in a tbl's options and format lines, 2 in its data
};

void ManReader::special(std::string_view name, std::string& out) const {
  if (name.size() > 1 && name[0] == 'u' && is_hex(name.substr(1))) {  // \[u00E9]
    const int32_t cp = static_cast<int32_t>(std::stol(std::string(name.substr(1)), nullptr, 16));
    if (cp > 0 && cp <= 0x10FFFF && (cp < 0xD800 || cp > 0xDFFF)) tokenizer::utf8_append(out, cp);
    return;
  }
  out += glyph(name);
}

std::string ManReader::unescape(std::string_view s) const {
  std::string out;
  size_t i = 0;
  while (i < s.size()) {
    if (s[i] != '\\') {
      out += s[i++];
      continue;
    }
    if (i + 1 >= s.size()) break;  // a trailing backslash joins lines; nothing to show
    const char e = s[i + 1];
    i += 2;
    switch (e) {
      case 'f':  // fonts, colours, environments: formatting only
      case 'F':
      case 'm':
      case 'M':
      case 'g':
      case 'k':
      case 'n':
      case '$':
      case 'O':
        if (e == 'n' && i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
        escape_name(s, i);
        break;
      case '(':
      case '[':
        --i;
        special(escape_name(s, i), out);
        break;
      case '*': {
        const std::string_view name = escape_name(s, i);
        if (auto it = strings_.find(name); it != strings_.end()) out += it->second;
        break;
      }
      case 's':  // \s+2, \s-1, \s0, \s(12, \s[..]
        if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
        if (i < s.size() && (s[i] == '(' || s[i] == '[')) {
          escape_name(s, i);
        } else if (i < s.size() && s[i] == '\'') {
          skip_delimited(s, i);
        } else if (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) {
          // Old troff: \s10 .. \s39 are two digits, any other size one.
          const char d = s[i++];
          if (d >= '1' && d <= '3' && i < s.size() &&
              std::isdigit(static_cast<unsigned char>(s[i]))) {
            ++i;
          }
        }
        break;
      case 'N': {  // \N'65': a character by number
        const size_t begin = i + 1;
        skip_delimited(s, i);
        const std::string_view num = s.substr(begin, i > begin ? i - begin - 1 : 0);
        if (!num.empty() && std::all_of(num.begin(), num.end(), ::isdigit) && num.size() < 8) {
          const int32_t cp = std::stoi(std::string(num));
          if (cp > 0 && cp <= 0x10FFFF && (cp < 0xD800 || cp > 0xDFFF)) {
            tokenizer::utf8_append(out, cp);
          }
        }
        break;
      }
      case 'h':  // motions, widths, drawing, device controls: no text
      case 'v':
      case 'w':
      case 'l':
      case 'L':
      case 'D':
      case 'o':
      case 'X':
      case 'Z':
      case 'x':
      case 'b':
      case 'C':
      case 'R':
      case 'A':
      case 'B':
      case 'H':
      case 'S':
      case 'Y':
      case 'V':
        skip_delimited(s, i);
        break;
      case 'e':
      case 'E':
      case '\\':
        out += '\\';
        break;
      case '-':
        out += '-';
        break;
      case ' ':
      case '~':
      case '0':
        out += ' ';
        break;
      case '\'':
        out += '\'';
        break;
      case '`':
        out += '`';
        break;
      case '.':
        out += '.';
        break;
      case '"':
      case '#':
        return out;  // a comment to the end of the line
      case '&':
      case ':':
      case '%':
      case '/':
      case ',':
      case '^':
      case '|':
      case ')':
      case 'c':
      case 'd':
      case 'u':
      case 'a':
      case 't':
      case 'p':
      case 'r':
      case 'z':
      case '{':
      case '}':
      case '\n':
        break;
      default:
        out += e;
        break;
    }
  }
  return out;
}

// The line without a \" comment (a \\" is an escaped backslash, not a comment).
std::string_view ManReader::strip_comment(std::string_view line) {
  for (size_t i = 0; i + 1 < line.size(); ++i) {
    if (line[i] != '\\') continue;
    if (line[i + 1] == '"' || line[i + 1] == '#') return line.substr(0, i);
    ++i;  // skip the escaped character
  }
  return line;
}

// A request's arguments: blank-separated, "quoted" ones may hold blanks ("" is a quote).
std::vector<std::string> ManReader::arguments(std::string_view s) {
  std::vector<std::string> args;
  size_t i = 0;
  while (true) {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
    if (i >= s.size()) break;
    std::string arg;
    if (s[i] == '"') {
      ++i;
      while (i < s.size()) {
        if (s[i] == '"') {
          if (i + 1 < s.size() && s[i + 1] == '"') {
            arg += '"';
            i += 2;
            continue;
          }
          ++i;
          break;
        }
        arg += s[i++];
      }
    } else {
      while (i < s.size() && s[i] != ' ' && s[i] != '\t') {
        if (s[i] == '\\' && i + 1 < s.size()) arg += s[i++];  // "\ " stays in the argument
        arg += s[i++];
      }
    }
    args.push_back(std::move(arg));
  }
  return args;
}

void ManReader::define_string(std::string_view args) {
  args = trim(args);
  const size_t blank = std::min(args.find_first_of(" \t"), args.size());
  const std::string name(args.substr(0, blank));
  std::string_view value = args.substr(blank);
  while (!value.empty() && (value[0] == ' ' || value[0] == '\t')) value.remove_prefix(1);
  if (!value.empty() && value[0] == '"') value.remove_prefix(1);  // a leading quote is syntax
  // The first definition wins: of a .ie/.el pair the .ie branch (the groff one) comes first.
  if (!name.empty() && !strings_.contains(name)) strings_[name] = unescape(value);
}

void ManReader::text_line(const std::string& text) {
  if (heading_next_ > 0) {
    b_.begin_heading(heading_next_);
    b_.put(text);
    b_.end_heading();
    heading_next_ = 0;
    return;
  }
  b_.put(text);
  if (tag_next_) {
    b_.line_break();
    tag_next_ = false;
  } else if (!fill_ || table_ > 0) {
    b_.put("\n");
  } else {
    b_.put(" ");  // filled text: a newline is a word space
  }
}

// .if / .ie / .el. We format for a terminal, as man(1) does: "n" (nroff) is true, "t" (troff)
// false; a kept body is read as a line of its own (a \{ block as the lines up to \}). Other
// conditions (registers, string comparisons) are unknown: the body is dropped, but a string
// definition in it is kept (pod2man's ".ie \n(.g .ds Aq \(aq").
void ManReader::conditional(std::string_view name, std::string_view rest) {
  while (!rest.empty() && (rest[0] == ' ' || rest[0] == '\t')) rest.remove_prefix(1);
  int taken = -1;
  if (name == "el") {
    taken = else_taken_;
    else_taken_ = -1;
  } else {
    const size_t blank = std::min(rest.find_first_of(" \t"), rest.size());
    const std::string_view cond = rest.substr(0, blank);
    if (cond == "n" || cond == "!t") taken = 1;
    if (cond == "t" || cond == "!n") taken = 0;
    rest = rest.substr(blank);
    while (!rest.empty() && (rest[0] == ' ' || rest[0] == '\t')) rest.remove_prefix(1);
    if (name == "ie") else_taken_ = taken < 0 ? -1 : 1 - taken;
  }
  const bool block = rest.starts_with("\\{");
  if (taken == 1) {
    if (block) {
      ++kept_depth_;
      rest.remove_prefix(2);
      while (rest.starts_with("\\")) rest.remove_prefix(1);  // "\{\" continues on the next line
    }
    if (!trim(rest).empty()) line(rest);
    return;
  }
  if (block || rest.find("\\{") != std::string_view::npos) {
    brace_depth_ = 1;  // drop the block; nested braces are counted as lines are skipped
  } else if (taken < 0) {
    if (const size_t ds = rest.find(".ds "); ds != std::string_view::npos) {
      define_string(rest.substr(ds + 4));
    }
  }
}

void ManReader::request(std::string_view line) {
  line = strip_comment(line.substr(1));
  while (!line.empty() && (line[0] == ' ' || line[0] == '\t')) line.remove_prefix(1);
  const size_t blank = std::min(line.find_first_of(" \t"), line.size());
  const std::string_view name = line.substr(0, blank);
  const std::string_view rest = line.substr(blank);
  const auto joined = [&](const char* sep) {
    std::string s;
    for (const std::string& a : arguments(rest)) s += (s.empty() ? "" : sep) + unescape(a);
    return s;
  };
  if (table_ > 0 && name == "TE") {
    table_ = 0;
    b_.set_preformatted(!fill_);
    b_.paragraph_break();
  } else if (name == "SH" || name == "SS" || name == "Sh" || name == "Ss") {
    const int level = (name == "SH" || name == "Sh") ? 1 : 2;
    tag_next_ = false;
    std::string heading = joined(" ");
    if (heading.empty()) {
      heading_next_ = level;
    } else {
      b_.begin_heading(level);
      b_.put(heading);
      b_.end_heading();
    }
  } else if (name == "TH") {
    const std::vector<std::string> args = arguments(rest);
    if (!args.empty()) page_name_ = unescape(args[0]);
  } else if (name == "PP" || name == "LP" || name == "P" || name == "Pp" || name == "sp" ||
             name == "HP" || name == "YS") {
    b_.paragraph_break();
  } else if (name == "br") {
    b_.line_break();
  } else if (name == "TP") {
    b_.paragraph_break();
    tag_next_ = true;
  } else if (name == "IP") {
    b_.paragraph_break();
    const std::vector<std::string> args = arguments(rest);
    if (!args.empty() && !args[0].empty()) {
      b_.put(unescape(args[0]));
      b_.line_break();
    }
  } else if (name == "nf" || name == "EX") {
    fill_ = false;
    b_.line_break();
    b_.set_preformatted(true);
  } else if (name == "fi" || name == "EE") {
    fill_ = true;
    b_.set_preformatted(false);
    b_.line_break();
  } else if (name == "B" || name == "I" || name == "SM" || name == "SB") {
    if (std::string text = joined(" "); !text.empty()) text_line(text);
  } else if (name == "BR" || name == "BI" || name == "IB" || name == "IR" || name == "RB" ||
             name == "RI") {
    if (std::string text = joined(""); !text.empty()) text_line(text);
  } else if (name == "SY") {
    b_.paragraph_break();
    if (std::string text = joined(" "); !text.empty()) b_.put(text + " ");
  } else if (name == "OP") {
    // Three puts, not "[" + ... : GCC 12 warns falsely (-Wrestrict) on the concatenation.
    b_.put("[");
    b_.put(joined(" "));
    b_.put("] ");
  } else if (name == "UE" || name == "ME") {
    if (std::string text = joined(""); !text.empty()) b_.put(text + " ");
  } else if (name == "de" || name == "de1" || name == "am" || name == "ig") {
    skip_definition_ = true;
  } else if (name == "ds" || name == "ds1") {
    define_string(rest);
  } else if (name == "if" || name == "ie" || name == "el") {
    conditional(name, rest);
  } else if (name == "TS") {
    table_ = 1;
    b_.paragraph_break();
    b_.set_preformatted(true);
  }
  // Anything else (.RS, .RE, .in, .ne, .PD, .UR, .MT, mdoc's .Nm ...) does not change the text.
}

void ManReader::line(std::string_view line) {
  if (line.empty()) {
    if (fill_ && table_ == 0) {
      b_.paragraph_break();  // roff: a blank line is a break and a blank line
    } else {
      b_.put("\n");
    }
    return;
  }
  if (line[0] == '.' || line[0] == '\'') {
    request(line);
    return;
  }
  if (table_ == 1) {
    if (trim(strip_comment(line)).ends_with('.')) table_ = 2;  // the format's last line
    return;
  }
  if (table_ == 2) {
    const std::string_view t = trim(line);
    if (t == "_" || t == "=") return;  // horizontal rules
    std::string row = unescape(line);
    std::replace(row.begin(), row.end(), '\t', ' ');
    text_line(row);
    return;
  }
  text_line(unescape(line));
}

Extracted ManReader::read(std::string_view content) {
  size_t start = 0;
  while (start < content.size()) {
    size_t end = std::min(content.find('\n', start), content.size());
    std::string_view line = content.substr(start, end - start);
    start = end + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (skip_definition_) {
      if (trim(line).starts_with("..")) skip_definition_ = false;
      continue;
    }
    if (brace_depth_ > 0) {
      brace_depth_ += count(line, "\\{") - count(line, "\\}");
      continue;
    }
    if (kept_depth_ > 0 && line.find("\\}") != std::string_view::npos) {
      // The end of a kept block: the rest of the line (usually nothing, or ".\}") is read.
      kept_depth_ = std::max(0, kept_depth_ - count(line, "\\}"));
      std::string without(line);
      for (size_t at = without.find("\\}"); at != std::string::npos; at = without.find("\\}")) {
        without.erase(at, 2);
      }
      if (!trim(without).empty() && trim(without) != ".") this->line(without);
      continue;
    }
    this->line(line);
  }
  Extracted out;
  out.text = b_.finish(out.headings);
  // The title is the NAME section's line ("ls - list directory contents"), else .TH's name.
  for (size_t k = 0; k < out.headings.size(); ++k) {
    if (out.headings[k].text != "NAME") continue;
    const size_t begin = out.headings[k].offset + out.headings[k].text.size();
    const size_t end = k + 1 < out.headings.size() ? out.headings[k + 1].offset : out.text.size();
    const std::string_view body = trim(std::string_view(out.text).substr(begin, end - begin));
    out.title = collapse_whitespace(body.substr(0, std::min(body.find("\n\n"), body.size())));
    break;
  }
  if (out.title.empty()) out.title = page_name_;
  return out;
}

}  // namespace

Extracted extract_man(std::string_view content) {
  return ManReader().read(content);
}

}  // namespace llmkit::retrieval::detail
