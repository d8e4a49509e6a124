// Hugging Face normalizers: BertNormalizer, Lowercase, Prepend, Replace, Strip, NFC/NFD/NFKC/NFKD
// and Sequence, with the Rust crate's per-character semantics. Unicode data (normal forms, case
// mapping, general categories) comes from ICU, so NFx are exact up to the Unicode version ICU
// and the Rust crates were built with. Invalid UTF-8 bytes pass through every step unchanged,
// except the NFx forms, which see them as U+FFFD. Also the shared Regex (PCRE2) wrapper.
#include <unicode/normalizer2.h>
#include <unicode/uchar.h>
#include <unicode/unistr.h>

#include "llmkit/core/error.h"
#include "llmkit/tokenizer/hf_pipeline.h"
#include "llmkit/tokenizer/unicode.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

namespace llmkit::tokenizer::hf {

bool is_whitespace(int32_t cp) {
  return cp >= 0 && u_hasBinaryProperty(cp, UCHAR_WHITE_SPACE);
}

bool is_numeric(int32_t cp) {
  if (cp < 0) return false;
  const int8_t t = u_charType(cp);
  return t == U_DECIMAL_DIGIT_NUMBER || t == U_LETTER_NUMBER || t == U_OTHER_NUMBER;
}

bool is_alphanumeric(int32_t cp) {
  return cp >= 0 && (u_hasBinaryProperty(cp, UCHAR_ALPHABETIC) || is_numeric(cp));
}

bool is_bert_punctuation(int32_t cp) {
  if (cp < 0) return false;
  if (cp < 0x80) return std::ispunct(cp) != 0;
  return u_ispunct(cp) != 0;
}

namespace {

// Calls fn(cp, bytes) for each character (cp = -1 for an invalid byte).
template <typename Fn>
void for_each_char(std::string_view s, Fn&& fn) {
  size_t i = 0;
  while (i < s.size()) {
    int len = 0;
    const int32_t cp = utf8_decode(s, i, len);
    fn(cp, s.substr(i, len));
    i += len;
  }
}

// Rust's char::to_lowercase: ICU's simple mapping plus the one unconditional multi-character
// mapping of SpecialCasing.txt (U+0130 -> "i\u0307").
void append_lower(std::string& out, int32_t cp, std::string_view bytes) {
  if (cp < 0) {
    out += bytes;
  } else if (cp == 0x130) {
    out += "i\xCC\x87";
  } else {
    utf8_append(out, u_tolower(cp));
  }
}

void lowercase(std::string& s) {
  std::string out;
  out.reserve(s.size());
  for_each_char(s, [&](int32_t cp, std::string_view b) { append_lower(out, cp, b); });
  s = std::move(out);
}

void normalize_form(std::string& s, const icu::Normalizer2* n) {
  UErrorCode status = U_ZERO_ERROR;
  const icu::UnicodeString u = icu::UnicodeString::fromUTF8(s);
  if (n->isNormalized(u, status) && U_SUCCESS(status)) return;
  status = U_ZERO_ERROR;
  const icu::UnicodeString r = n->normalize(u, status);
  LLMKIT_CHECK(U_SUCCESS(status), "tokenizer: ICU normalisation failed (", u_errorName(status),
               ")");
  s.clear();
  r.toUTF8String(s);
}

const icu::Normalizer2* form(const std::string& type) {
  UErrorCode status = U_ZERO_ERROR;
  const icu::Normalizer2* n = nullptr;
  if (type == "NFC") n = icu::Normalizer2::getNFCInstance(status);
  if (type == "NFD") n = icu::Normalizer2::getNFDInstance(status);
  if (type == "NFKC") n = icu::Normalizer2::getNFKCInstance(status);
  if (type == "NFKD") n = icu::Normalizer2::getNFKDInstance(status);
  LLMKIT_CHECK(n != nullptr && U_SUCCESS(status), "tokenizer: ICU has no ", type, " instance");
  return n;
}

// tokenizers' bert.rs: is_control counts \t \n \r as whitespace, everything in C* as control.
bool bert_is_control(int32_t cp) {
  if (cp == '\t' || cp == '\n' || cp == '\r') return false;
  const int8_t t = u_charType(cp);
  return t == U_CONTROL_CHAR || t == U_FORMAT_CHAR || t == U_SURROGATE || t == U_PRIVATE_USE_CHAR ||
         t == U_UNASSIGNED;
}

bool is_chinese_char(int32_t cp) {
  return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) ||
         (cp >= 0x20000 && cp <= 0x2A6DF) || (cp >= 0x2A700 && cp <= 0x2B73F) ||
         (cp >= 0x2B740 && cp <= 0x2B81F) || (cp >= 0x2B920 && cp <= 0x2CEAF) ||
         (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F);
}

void strip_accents(std::string& s) {
  normalize_form(s, form("NFD"));
  std::string out;
  out.reserve(s.size());
  for_each_char(s, [&](int32_t cp, std::string_view b) {
    if (cp < 0 || u_charType(cp) != U_NON_SPACING_MARK) out += b;
  });
  s = std::move(out);
}

NormalizeFn make_bert(const json& j) {
  const bool clean = j.value("clean_text", true), chinese = j.value("handle_chinese_chars", true);
  const bool lower = j.value("lowercase", true);
  const json sa = j.value("strip_accents", json());
  const bool strip = sa.is_boolean() ? sa.get<bool>() : lower;
  return [=](std::string& s) {
    if (clean || chinese) {
      std::string out;
      out.reserve(s.size());
      for_each_char(s, [&](int32_t cp, std::string_view b) {
        if (clean && cp >= 0 && (cp == 0 || cp == 0xFFFD || bert_is_control(cp))) return;
        if (clean && is_whitespace(cp)) {
          out += ' ';
        } else if (chinese && is_chinese_char(cp)) {
          out += ' ', out += b, out += ' ';
        } else {
          out += b;
        }
      });
      s = std::move(out);
    }
    if (strip) strip_accents(s);
    if (lower) lowercase(s);
  };
}

// Replace's pattern: {"String": "..."} or {"Regex": "..."}.
NormalizeFn make_replace(const json& j, const std::string& file) {
  const json p = j.value("pattern", json());
  const std::string content = j.value("content", std::string{});
  if (p.contains("String") && p["String"].is_string()) {
    const std::string needle = p["String"].get<std::string>();
    if (needle.empty()) fail(file, ": normalizer Replace has an empty pattern");
    return [=](std::string& s) {
      std::string out;
      size_t pos = 0;
      for (const auto& [b, e] : find_literal(s, needle))
        out.append(s, pos, b - pos) += content, pos = e;
      out.append(s, pos);
      s = std::move(out);
    };
  }
  if (p.contains("Regex") && p["Regex"].is_string()) {
    auto re = std::make_shared<Regex>(p["Regex"].get<std::string>(), file + ": Replace");
    return [=](std::string& s) { s = re->replace_all(s, content); };
  }
  fail(file, ": normalizer Replace needs a pattern {\"String\": ...} or {\"Regex\": ...}");
}

NormalizeFn make_strip(const json& j) {
  const bool left = j.value("strip_left", true), right = j.value("strip_right", true);
  return [=](std::string& s) {
    size_t b = 0, e = s.size();
    int len = 0;
    while (left && b < e && is_whitespace(utf8_decode(s, b, len))) b += len;
    while (right && e > b) {
      size_t k = e - 1;
      while (k > b && (static_cast<uint8_t>(s[k]) & 0xC0) == 0x80) --k;
      if (!is_whitespace(utf8_decode(s, k, len)) || k + len != e) break;
      e = k;
    }
    s = s.substr(b, e - b);
  };
}

}  // namespace

NormalizeFn make_normalizer(const json& j, const std::string& file) {
  if (j.is_null()) return {};
  const std::string type = j.is_object() ? j.value("type", std::string{}) : "";
  if (type == "Sequence") {
    std::vector<NormalizeFn> steps;
    for (const json& n : j.value("normalizers", json::array()))
      if (auto f = make_normalizer(n, file)) steps.push_back(std::move(f));
    return [steps](std::string& s) {
      for (const auto& f : steps) f(s);
    };
  }
  if (type == "BertNormalizer") return make_bert(j);
  if (type == "Lowercase") return lowercase;
  if (type == "NFC" || type == "NFD" || type == "NFKC" || type == "NFKD") {
    const icu::Normalizer2* n = form(type);
    return [n](std::string& s) { normalize_form(s, n); };
  }
  if (type == "StripAccents")
    return [](std::string& s) {
      std::string out;
      for_each_char(s, [&](int32_t cp, std::string_view b) {
        if (cp < 0 || u_charType(cp) != U_NON_SPACING_MARK) out += b;
      });
      s = std::move(out);
    };
  if (type == "Prepend") {
    const std::string p = j.value("prepend", std::string{});
    return [p](std::string& s) {
      if (!s.empty()) s.insert(0, p);
    };
  }
  if (type == "Replace") return make_replace(j, file);
  if (type == "Strip") return make_strip(j);
  fail(file, ": normalizer \"", type, "\" is not supported (supported: BertNormalizer, Lowercase, ",
       "NFC, NFD, NFKC, NFKD, StripAccents, Prepend, Replace, Strip, Sequence)");
}

// ---- Regex -------------------------------------------------------------------------------------

Regex::Regex(const std::string& pattern, const std::string& where) {
  int err = 0;
  PCRE2_SIZE off = 0;
  pcre2_code* code =
      pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                    PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &err, &off, nullptr);
  if (code == nullptr) {
    PCRE2_UCHAR msg[256];
    pcre2_get_error_message(err, msg, sizeof msg);
    fail(where, ": regex /", pattern, "/ does not compile at offset ", off, ": ",
         reinterpret_cast<const char*>(msg));
  }
  pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
  code_ =
      std::shared_ptr<void>(code, [](void* c) { pcre2_code_free(static_cast<pcre2_code*>(c)); });
}

std::vector<std::pair<size_t, size_t>> Regex::find_all(std::string_view text) const {
  auto* code = static_cast<pcre2_code*>(code_.get());
  std::unique_ptr<pcre2_match_data, decltype(&pcre2_match_data_free)> md(
      pcre2_match_data_create_from_pattern(code, nullptr), pcre2_match_data_free);
  std::vector<std::pair<size_t, size_t>> out;
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  size_t pos = 0;
  while (pos <= text.size()) {
    const int rc = pcre2_match(code, subject, text.size(), pos, 0, md.get(), nullptr);
    if (rc < 0) break;
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md.get());
    if (ov[1] == ov[0]) {  // an empty match: step over one character
      if (ov[0] >= text.size()) break;
      int len = 0;
      utf8_decode(text, ov[0], len);
      pos = ov[0] + len;
      continue;
    }
    out.emplace_back(ov[0], ov[1]);
    pos = ov[1];
  }
  return out;
}

std::string Regex::replace_all(std::string_view text, std::string_view with) const {
  std::string out;
  size_t pos = 0;
  for (const auto& [b, e] : find_all(text))
    out.append(text.substr(pos, b - pos)).append(with), pos = e;
  out.append(text.substr(pos));
  return out;
}

std::vector<std::pair<size_t, size_t>> find_literal(std::string_view text,
                                                    std::string_view needle) {
  std::vector<std::pair<size_t, size_t>> out;
  if (needle.empty()) return out;
  for (size_t p = text.find(needle); p != std::string_view::npos; p = text.find(needle, p))
    out.emplace_back(p, p + needle.size()), p += needle.size();
  return out;
}

}  // namespace llmkit::tokenizer::hf
