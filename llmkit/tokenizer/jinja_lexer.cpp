// The Jinja lexer (see jinja_lexer.h). It follows jinja2/lexer.py's rules one by one: the root
// rule finds the next tag and applies '-' stripping or lstrip_blocks to the text before it
// (lstrip only when the tag starts its line), the tag rules skip whitespace and read literals,
// names and operators, and an end tag is recognised only when brackets are balanced.
#include "llmkit/tokenizer/jinja_lexer.h"

#include <cctype>
#include <cstdlib>

#include "llmkit/core/error.h"
#include "llmkit/tokenizer/jinja_value.h"

namespace llmkit::tokenizer::jinja {
namespace {

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

int count_newlines(std::string_view s) {
  int n = 0;
  for (char c : s) n += c == '\n';
  return n;
}

std::string normalize_newlines(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\r') {
      out += '\n';
      if (i + 1 < s.size() && s[i + 1] == '\n') ++i;
    } else {
      out += s[i];
    }
  }
  return out;
}

// Python's "unicode-escape" decoding of a string literal's body, as jinja2 applies it.
std::string unescape(std::string_view body, int line) {
  std::u32string in = utf8_decode(normalize_newlines(body)), out;
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] != U'\\' || i + 1 == in.size()) {
      out += in[i];
      continue;
    }
    const char32_t c = in[++i];
    auto hex = [&](int n) {
      char32_t v = 0;
      for (int k = 0; k < n; ++k) {
        if (i + 1 >= in.size() || !std::isxdigit(static_cast<int>(in[i + 1] & 0x7f)) ||
            in[i + 1] > 0x7f)
          fail("chat template line ", line, ": truncated \\x/\\u escape in a string");
        const char d = static_cast<char>(in[++i]);
        v = v * 16 + (std::isdigit(d) ? d - '0' : std::tolower(d) - 'a' + 10);
      }
      return v;
    };
    switch (c) {
      case U'\n':
        break;  // line continuation
      case U'\\':
        out += U'\\';
        break;
      case U'\'':
        out += U'\'';
        break;
      case U'"':
        out += U'"';
        break;
      case U'a':
        out += U'\a';
        break;
      case U'b':
        out += U'\b';
        break;
      case U'f':
        out += U'\f';
        break;
      case U'n':
        out += U'\n';
        break;
      case U'r':
        out += U'\r';
        break;
      case U't':
        out += U'\t';
        break;
      case U'v':
        out += U'\v';
        break;
      case U'x':
        out += hex(2);
        break;
      case U'u':
        out += hex(4);
        break;
      case U'U':
        out += hex(8);
        break;
      case U'N':
        fail("chat template line ", line, ": \\N{...} escapes are not supported");
      default:
        if (c >= U'0' && c <= U'7') {
          char32_t v = c - U'0';
          for (int k = 0; k < 2 && i + 1 < in.size() && in[i + 1] >= U'0' && in[i + 1] <= U'7'; ++k)
            v = v * 8 + (in[++i] - U'0');
          out += v;
        } else {
          out += U'\\';
          out += c;
        }
    }
  }
  return utf8_encode(out);
}

class Lexer {
 public:
  explicit Lexer(std::string_view src) : src_(src) {
    // keep_trailing_newline=False: one trailing newline of the template is dropped.
    if (src_.ends_with("\r\n"))
      src_.remove_suffix(2);
    else if (src_.ends_with("\n") || src_.ends_with("\r"))
      src_.remove_suffix(1);
  }

  std::vector<Token> run() {
    while (pos_ < src_.size()) root();
    push(TokenKind::kEnd, "");
    return std::move(tokens_);
  }

 private:
  [[noreturn]] void error(const std::string& what) const {
    fail("chat template line ", line_, ": ", what);
  }

  void push(TokenKind kind, std::string text) {
    Token t;
    t.kind = kind;
    t.text = std::move(text);
    t.line = line_;
    tokens_.push_back(std::move(t));
  }

  // Text before a tag, with '-' stripping or lstrip_blocks applied as jinja2's OptionalLStrip.
  void emit_text(std::string_view text, char sign, bool lstrip_allowed) {
    const int lines = count_newlines(text);
    if (sign == '-') {
      size_t end = text.size();
      while (end > 0 && is_space(text[end - 1])) --end;
      text = text.substr(0, end);
    } else if (sign != '+' && lstrip_allowed) {
      const size_t nl = text.rfind('\n');
      const size_t l_pos = nl == std::string_view::npos ? 0 : nl + 1;
      if (l_pos > 0 || line_starting_) {
        bool all_space = l_pos < text.size();
        for (size_t i = l_pos; i < text.size(); ++i) all_space = all_space && is_space(text[i]);
        if (all_space) text = text.substr(0, l_pos);
      }
    }
    if (!text.empty()) push(TokenKind::kText, normalize_newlines(text));
    line_ += lines;
  }

  // Consumes a tag end at pos_ (`%}` / `-%}` / `+%}`, and the newline trim_blocks removes); false
  // when there is none.
  bool block_end(std::string_view end, bool trim) {
    size_t p = pos_;
    char sign = 0;
    if (p < src_.size() && (src_[p] == '-' || src_[p] == '+')) sign = src_[p++];
    if (src_.substr(p, end.size()) != end) return false;
    if (sign == '+' && !trim) return false;  // `+}}` is not an end tag
    p += end.size();
    if (sign == '-') {
      while (p < src_.size() && is_space(src_[p])) ++p;
    } else if (sign == 0 && trim && p < src_.size() && src_[p] == '\n') {
      ++p;
    }
    finish_match(p);
    return true;
  }

  // Advances to p, counting lines and remembering whether the match ended a line.
  void finish_match(size_t p) {
    line_ += count_newlines(src_.substr(pos_, p - pos_));
    line_starting_ = p > pos_ && src_[p - 1] == '\n';
    pos_ = p;
  }

  void root() {
    const size_t first = src_.find('{', pos_);
    size_t t = first;
    while (
        t != std::string_view::npos &&
        (t + 1 >= src_.size() || (src_[t + 1] != '{' && src_[t + 1] != '%' && src_[t + 1] != '#')))
      t = src_.find('{', t + 1);
    if (t == std::string_view::npos) {
      emit_text(src_.substr(pos_), 0, false);
      pos_ = src_.size();
      return;
    }
    const char type = src_[t + 1];
    char sign = t + 2 < src_.size() ? src_[t + 2] : 0;
    if (sign != '-' && sign != '+') sign = 0;
    const std::string_view text = src_.substr(pos_, t - pos_);
    if (type == '%' && raw_begin(t, sign, text)) return;
    emit_text(text, sign, type != '{');
    pos_ = t;
    finish_match(t + 2 + (sign ? 1 : 0));
    if (type == '#') {
      comment();
    } else {
      push(type == '{' ? TokenKind::kVarBegin : TokenKind::kBlockBegin, "");
      tag(type == '{' ? "}}" : "%}", type == '%');
    }
  }

  // `{% raw %}...{% endraw %}` at t: the body becomes text. False when the tag is not `raw`.
  bool raw_begin(size_t t, char sign, std::string_view text) {
    size_t p = t + 2 + (sign ? 1 : 0);
    while (p < src_.size() && is_space(src_[p])) ++p;
    if (src_.substr(p, 3) != "raw") return false;
    p += 3;
    while (p < src_.size() && is_space(src_[p])) ++p;
    const bool strip_after = src_.substr(p, 3) == "-%}";
    if (!strip_after && src_.substr(p, 2) != "%}") return false;
    emit_text(text, sign, true);
    pos_ = t;
    p += strip_after ? 3 : 2;
    if (strip_after)
      while (p < src_.size() && is_space(src_[p])) ++p;
    finish_match(p);
    // The body runs to the first {% endraw %}; the text before it is stripped like any text.
    for (size_t e = src_.find("{%", pos_); e != std::string_view::npos;
         e = src_.find("{%", e + 1)) {
      size_t q = e + 2;
      char esign = q < src_.size() && (src_[q] == '-' || src_[q] == '+') ? src_[q++] : 0;
      while (q < src_.size() && is_space(src_[q])) ++q;
      if (src_.substr(q, 6) != "endraw") continue;
      q += 6;
      while (q < src_.size() && is_space(src_[q])) ++q;
      emit_text(src_.substr(pos_, e - pos_), esign, true);
      pos_ = q;
      if (!block_end("%}", true)) error("missing end of raw directive");
      return true;
    }
    error("missing end of raw directive");
  }

  void comment() {
    const size_t e = src_.find("#}", pos_);
    if (e == std::string_view::npos) error("missing end of comment tag");
    const char sign = e > pos_ && (src_[e - 1] == '-' || src_[e - 1] == '+') ? src_[e - 1] : 0;
    line_ += count_newlines(src_.substr(pos_, e - pos_));
    pos_ = sign ? e - 1 : e;
    block_end("#}", true);
  }

  void tag(std::string_view end, bool is_block) {
    std::vector<char> balance;
    const int start_line = line_;
    while (true) {
      if (pos_ >= src_.size())
        fail("chat template line ", start_line, ": unexpected end of template, expected '", end,
             "'");
      if (balance.empty() && block_end(end, is_block)) {
        push(is_block ? TokenKind::kBlockEnd : TokenKind::kVarEnd, "");
        return;
      }
      const char c = src_[pos_];
      if (is_space(c)) {
        size_t p = pos_;
        while (p < src_.size() && is_space(src_[p])) ++p;
        finish_match(p);
      } else if (std::isdigit(static_cast<unsigned char>(c))) {
        number();
      } else if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
        size_t p = pos_;
        while (p < src_.size() &&
               (std::isalnum(static_cast<unsigned char>(src_[p])) || src_[p] == '_'))
          ++p;
        push(TokenKind::kName, std::string(src_.substr(pos_, p - pos_)));
        finish_match(p);
      } else if (c == '\'' || c == '"') {
        string_literal(c);
      } else {
        op(balance);
      }
    }
  }

  void number() {
    size_t p = pos_;
    auto digits = [&] {
      const size_t s = p;
      while (p < src_.size() &&
             (std::isdigit(static_cast<unsigned char>(src_[p])) || src_[p] == '_'))
        ++p;
      return p > s;
    };
    digits();
    bool is_float = false;
    const bool after_dot = pos_ > 0 && src_[pos_ - 1] == '.';
    if (!after_dot && p + 1 < src_.size() && src_[p] == '.' &&
        std::isdigit(static_cast<unsigned char>(src_[p + 1]))) {
      ++p;
      digits();
      is_float = true;
    }
    if (!after_dot && p < src_.size() && (src_[p] == 'e' || src_[p] == 'E')) {
      size_t q = p + 1;
      if (q < src_.size() && (src_[q] == '+' || src_[q] == '-')) ++q;
      if (q < src_.size() && std::isdigit(static_cast<unsigned char>(src_[q]))) {
        p = q;
        digits();
        is_float = true;
      }
    }
    std::string text;
    for (char ch : src_.substr(pos_, p - pos_))
      if (ch != '_') text += ch;
    push(is_float ? TokenKind::kFloat : TokenKind::kInteger, text);
    if (is_float)
      tokens_.back().number = std::strtod(text.c_str(), nullptr);
    else
      tokens_.back().integer = std::strtoll(text.c_str(), nullptr, 10);
    finish_match(p);
  }

  void string_literal(char quote) {
    size_t p = pos_ + 1;
    while (p < src_.size() && src_[p] != quote) p += src_[p] == '\\' ? 2 : 1;
    if (p >= src_.size()) error("unterminated string");
    push(TokenKind::kString, unescape(src_.substr(pos_ + 1, p - pos_ - 1), line_));
    finish_match(p + 1);
  }

  void op(std::vector<char>& balance) {
    static const char* const kTwo[] = {"//", "**", "==", "!=", ">=", "<="};
    std::string o(1, src_[pos_]);
    for (const char* two : kTwo)
      if (src_.substr(pos_, 2) == two) o = two;
    if (o.size() == 1 &&
        std::string_view("+-/*%~[](){}><=.:|,;").find(o[0]) == std::string_view::npos)
      error("unexpected character '" + o + "'");
    if (o == "(" || o == "[" || o == "{") balance.push_back(o == "(" ? ')' : o == "[" ? ']' : '}');
    if (o == ")" || o == "]" || o == "}") {
      if (balance.empty()) error("unexpected '" + o + "'");
      if (balance.back() != o[0])
        error("unexpected '" + o + "', expected '" + balance.back() + "'");
      balance.pop_back();
    }
    push(TokenKind::kOperator, o);
    finish_match(pos_ + o.size());
  }

  std::string_view src_;
  size_t pos_ = 0;
  int line_ = 1;
  bool line_starting_ = true;
  std::vector<Token> tokens_;
};

}  // namespace

std::vector<Token> tokenize(std::string_view source) {
  return Lexer(source).run();
}

}  // namespace llmkit::tokenizer::jinja
