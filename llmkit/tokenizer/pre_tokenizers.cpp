// Hugging Face pre-tokenizers: ByteLevel, Split, Digits, BertPreTokenizer, Whitespace,
// WhitespaceSplit, Punctuation, Metaspace and Sequence, all built on split_pieces, which does
// what the Rust crate's NormalizedString::split does for each SplitDelimiterBehavior. ByteLevel
// splits with the GPT-2 scanner (pretokenizer.h, exact against the regex) and leaves the bytes
// raw: the model maps them to byte-level characters, so ByteLevel must come last in a Sequence.
#include "llmkit/core/error.h"
#include "llmkit/tokenizer/hf_pipeline.h"
#include "llmkit/tokenizer/pretokenizer.h"
#include "llmkit/tokenizer/unicode.h"

namespace llmkit::tokenizer::hf {

SplitBehavior parse_behavior(const json& j, const std::string& file) {
  const std::string b = j.is_string() ? j.get<std::string>() : "";
  if (b == "Removed") return SplitBehavior::kRemoved;
  if (b == "Isolated") return SplitBehavior::kIsolated;
  if (b == "MergedWithPrevious") return SplitBehavior::kMergedWithPrevious;
  if (b == "MergedWithNext") return SplitBehavior::kMergedWithNext;
  if (b == "Contiguous") return SplitBehavior::kContiguous;
  fail(file, ": split behavior ", j.dump(), " is not one of Removed, Isolated, ",
       "MergedWithPrevious, MergedWithNext, Contiguous");
}

FindFn find_chars(std::function<bool(int32_t)> pred) {
  return [pred = std::move(pred)](std::string_view s) {
    std::vector<std::pair<size_t, size_t>> out;
    size_t i = 0;
    while (i < s.size()) {
      int len = 0;
      const int32_t cp = utf8_decode(s, i, len);
      if (pred(cp)) out.emplace_back(i, i + len);
      i += len;
    }
    return out;
  };
}

namespace {

struct Span {
  size_t b, e;
  bool match;
};

// tokenizers/src/tokenizer/normalizer.rs, NormalizedString::split.
std::vector<Span> apply_behavior(std::vector<Span> m, SplitBehavior behavior) {
  std::vector<Span> out;
  bool prev = false;
  switch (behavior) {
    case SplitBehavior::kRemoved:
      return m;
    case SplitBehavior::kIsolated:
      for (Span& s : m) s.match = false;
      return m;
    case SplitBehavior::kContiguous:
      for (const Span& s : m) {
        if (s.match == prev && !out.empty())
          out.back().e = s.e;
        else
          out.push_back({s.b, s.e, false});
        prev = s.match;
      }
      return out;
    case SplitBehavior::kMergedWithPrevious:
      for (const Span& s : m) {
        if (s.match && !prev && !out.empty())
          out.back().e = s.e;
        else
          out.push_back({s.b, s.e, false});
        prev = s.match;
      }
      return out;
    case SplitBehavior::kMergedWithNext:
      for (auto it = m.rbegin(); it != m.rend(); ++it) {
        if (it->match && !prev && !out.empty())
          out.back().b = it->b;
        else
          out.push_back({it->b, it->e, false});
        prev = it->match;
      }
      std::reverse(out.begin(), out.end());
      return out;
  }
  return out;
}

}  // namespace

void split_pieces(std::vector<Piece>& pieces, const FindFn& find, SplitBehavior behavior,
                  bool invert) {
  std::vector<Piece> out;
  out.reserve(pieces.size());
  for (Piece& p : pieces) {
    std::vector<Span> spans;
    size_t prev = 0;
    for (const auto& [b, e] : find(p.text)) {
      if (b > prev) spans.push_back({prev, b, invert});
      spans.push_back({b, e, !invert});
      prev = e;
    }
    if (prev < p.text.size()) spans.push_back({prev, p.text.size(), invert});
    for (const Span& s : apply_behavior(std::move(spans), behavior)) {
      if (s.match || s.e == s.b) continue;
      out.push_back({p.text.substr(s.b, s.e - s.b), p.at_start && s.b == 0});
    }
  }
  pieces = std::move(out);
}

namespace {

FindFn find_pattern(const json& pattern, const std::string& file) {
  if (pattern.contains("String") && pattern["String"].is_string()) {
    const std::string s = pattern["String"].get<std::string>();
    return [s](std::string_view t) { return find_literal(t, s); };
  }
  if (pattern.contains("Regex") && pattern["Regex"].is_string()) {
    auto re = std::make_shared<Regex>(pattern["Regex"].get<std::string>(), file + ": Split");
    return [re](std::string_view t) { return re->find_all(t); };
  }
  fail(file, ": pre_tokenizer Split needs a pattern {\"String\": ...} or {\"Regex\": ...}");
}

// The first character of a one-character string field (Metaspace's replacement).
std::string one_char(const json& j, const char* key, const std::string& fallback,
                     const std::string& file) {
  const std::string s = j.value(key, fallback);
  int len = 0;
  if (s.empty() || utf8_decode(s, 0, len) < 0 || static_cast<size_t>(len) != s.size())
    fail(file, ": Metaspace.", key, " must be one character");
  return s;
}

PreTokenizeFn make_metaspace(const json& j, const std::string& file) {
  const std::string rep = one_char(j, "replacement", "\xE2\x96\x81", file);
  std::string scheme = j.value("prepend_scheme", std::string{});
  if (scheme.empty()) scheme = j.value("add_prefix_space", true) ? "always" : "never";
  if (scheme != "always" && scheme != "first" && scheme != "never")
    fail(file, ": Metaspace.prepend_scheme \"", scheme, "\" is not first, always or never");
  const bool split = j.value("split", true);
  return [=](std::vector<Piece>& pieces) {
    for (Piece& p : pieces) {
      std::string t;
      for (char c : p.text) c == ' ' ? t += rep : t += c;
      const bool starts = t.compare(0, rep.size(), rep) == 0;
      if (!starts && (scheme == "always" || (scheme == "first" && p.at_start))) t.insert(0, rep);
      p.text = std::move(t);
    }
    if (split)
      split_pieces(
          pieces, [rep](std::string_view t) { return find_literal(t, rep); },
          SplitBehavior::kMergedWithNext);
  };
}

PreTokenizeFn make_byte_level(const json& j) {
  const bool prefix = j.value("add_prefix_space", true), regex = j.value("use_regex", true);
  return [=](std::vector<Piece>& pieces) {
    std::vector<Piece> out;
    for (Piece& p : pieces) {
      if (prefix && (p.text.empty() || p.text[0] != ' ')) p.text.insert(0, " ");
      if (!regex) {
        out.push_back(std::move(p));
        continue;
      }
      bool first = true;
      gpt2_split(p.text, [&](std::string_view s) {
        out.push_back({std::string(s), p.at_start && first});
        first = false;
      });
    }
    pieces = std::move(out);
  };
}

// Rust regex's \w (Alphabetic, marks, decimal digits, connector punctuation, joiners) and \s.
constexpr const char* kWhitespacePattern =
    R"([\p{Alphabetic}\p{M}\p{Nd}\p{Pc}\x{200C}\x{200D}]+|[^\p{Alphabetic}\p{M}\p{Nd}\p{Pc}\x{200C}\x{200D}\s]+)";

}  // namespace

PreTokenizeFn make_pre_tokenizer(const json& j, const std::string& file, bool& byte_level) {
  byte_level = false;
  if (j.is_null()) return {};
  const std::string type = j.is_object() ? j.value("type", std::string{}) : "";
  if (type == "Sequence") {
    std::vector<PreTokenizeFn> steps;
    const json list = j.value("pretokenizers", json::array());
    for (size_t k = 0; k < list.size(); ++k) {
      bool bl = false;
      if (byte_level) fail(file, ": pre_tokenizer ByteLevel must be the last of a Sequence");
      if (auto f = make_pre_tokenizer(list[k], file, bl)) steps.push_back(std::move(f));
      byte_level = bl;
    }
    return [steps](std::vector<Piece>& p) {
      for (const auto& f : steps) f(p);
    };
  }
  if (type == "ByteLevel") {
    byte_level = true;
    return make_byte_level(j);
  }
  if (type == "Split") {
    const FindFn find = find_pattern(j.value("pattern", json::object()), file);
    const SplitBehavior b = parse_behavior(j.value("behavior", json("Isolated")), file);
    const bool invert = j.value("invert", false);
    return [=](std::vector<Piece>& p) { split_pieces(p, find, b, invert); };
  }
  if (type == "Digits") {
    const FindFn find = find_chars(is_numeric);
    const SplitBehavior b =
        j.value("individual_digits", false) ? SplitBehavior::kIsolated : SplitBehavior::kContiguous;
    return [=](std::vector<Piece>& p) { split_pieces(p, find, b); };
  }
  if (type == "BertPreTokenizer") {
    const FindFn space = find_chars(is_whitespace), punct = find_chars(is_bert_punctuation);
    return [=](std::vector<Piece>& p) {
      split_pieces(p, space, SplitBehavior::kRemoved);
      split_pieces(p, punct, SplitBehavior::kIsolated);
    };
  }
  if (type == "WhitespaceSplit") {
    const FindFn space = find_chars(is_whitespace);
    return [=](std::vector<Piece>& p) { split_pieces(p, space, SplitBehavior::kRemoved); };
  }
  if (type == "Whitespace") {
    auto re = std::make_shared<Regex>(kWhitespacePattern, file + ": Whitespace");
    return [re](std::vector<Piece>& p) {
      split_pieces(
          p, [re](std::string_view t) { return re->find_all(t); }, SplitBehavior::kRemoved, true);
    };
  }
  if (type == "Punctuation") {
    const FindFn punct = find_chars(is_bert_punctuation);
    const SplitBehavior b = parse_behavior(j.value("behavior", json("Isolated")), file);
    return [=](std::vector<Piece>& p) { split_pieces(p, punct, b); };
  }
  if (type == "Metaspace") return make_metaspace(j, file);
  fail(file, ": pre_tokenizer \"", type, "\" is not supported (supported: ByteLevel, Split, ",
       "Digits, BertPreTokenizer, Whitespace, WhitespaceSplit, Punctuation, Metaspace, Sequence)");
}

}  // namespace llmkit::tokenizer::hf
