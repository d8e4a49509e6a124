// UTF-8, GPT-2's byte table, Hangul jamo and the GPT-2 character classes. The class table is read
// out of PCRE2 (the library the reference pre-tokenizer uses) once: one regex pass over a string
// holding every code point, so the fast scanner and the regex can never disagree on a character.
#include "llmkit/tokenizer/unicode.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <algorithm>
#include <array>
#include <memory>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "llmkit/core/error.h"

namespace llmkit::tokenizer {

int utf8_sequence(std::string_view s, size_t i, bool& complete) {
  const auto b0 = static_cast<uint8_t>(s[i]);
  complete = false;
  int need = 0;
  uint8_t lo = 0x80, hi = 0xBF;  // valid range of the second byte
  if (b0 < 0x80) {
    complete = true;
    return 1;
  } else if (b0 >= 0xC2 && b0 <= 0xDF) {
    need = 1;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    need = 2;
    if (b0 == 0xE0) lo = 0xA0;  // no overlong forms
    if (b0 == 0xED) hi = 0x9F;  // no surrogates
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    need = 3;
    if (b0 == 0xF0) lo = 0x90;
    if (b0 == 0xF4) hi = 0x8F;  // nothing above U+10FFFF
  } else {
    return 1;
  }
  int n = 1;
  for (int k = 1; k <= need; ++k, ++n) {
    if (i + k >= s.size()) return n;
    const auto b = static_cast<uint8_t>(s[i + k]);
    const uint8_t l = k == 1 ? lo : 0x80, h = k == 1 ? hi : 0xBF;
    if (b < l || b > h) return n;
  }
  complete = true;
  return n;
}

void utf8_append(std::string& out, int32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

int64_t utf8_find_invalid(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    if (static_cast<uint8_t>(s[i]) < 0x80) {
      ++i;
      continue;
    }
    bool complete = false;
    const int n = utf8_sequence(s, i, complete);
    if (!complete) return static_cast<int64_t>(i);
    i += n;
  }
  return -1;
}

std::string utf8_repair(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    bool complete = false;
    const int n = utf8_sequence(s, i, complete);
    if (complete) {
      out.append(s.substr(i, n));
    } else {
      out += "\xEF\xBF\xBD";  // U+FFFD for the maximal invalid subpart
    }
    i += n;
  }
  return out;
}

namespace {

struct ByteTable {
  std::array<int32_t, 256> to_cp{};
  std::array<int16_t, 324> from_cp{};  // every mapped code point is below 0x144
};

ByteTable make_byte_table() {
  ByteTable t;
  t.from_cp.fill(-1);
  int extra = 0;
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
    t.to_cp[b] = printable ? b : 256 + extra++;
    t.from_cp[t.to_cp[b]] = static_cast<int16_t>(b);
  }
  return t;
}

const ByteTable& byte_table() {
  static const ByteTable table = make_byte_table();
  return table;
}

}  // namespace

int32_t byte_to_unicode(uint8_t b) {
  return byte_table().to_cp[b];
}

int byte_from_unicode(int32_t cp) {
  if (cp < 0 || cp >= static_cast<int32_t>(byte_table().from_cp.size())) return -1;
  return byte_table().from_cp[cp];
}

std::string to_byte_level(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char c : bytes) utf8_append(out, byte_to_unicode(static_cast<uint8_t>(c)));
  return out;
}

bool from_byte_level(std::string_view token, std::string& out) {
  size_t i = 0;
  while (i < token.size()) {
    int len = 0;
    const int b = byte_from_unicode(utf8_decode(token, i, len));
    if (b < 0) return false;
    out += static_cast<char>(b);
    i += len;
  }
  return true;
}

// Hangul: S = 0xAC00 + (L * 21 + V) * 28 + T, with L, V, T the jamo indices (Unicode ch. 3.12).
namespace {
constexpr int32_t kSBase = 0xAC00, kLBase = 0x1100, kVBase = 0x1161, kTBase = 0x11A7;
constexpr int32_t kLCount = 19, kVCount = 21, kTCount = 28, kNCount = kVCount * kTCount;
constexpr int32_t kSCount = kLCount * kNCount;
}  // namespace

std::string decompose_hangul(std::string_view s) {
  std::string out;
  out.reserve(s.size() + s.size() / 2);
  size_t i = 0;
  while (i < s.size()) {
    int len = 0;
    const int32_t cp = utf8_decode(s, i, len);
    const int32_t si = cp - kSBase;
    if (si >= 0 && si < kSCount) {
      utf8_append(out, kLBase + si / kNCount);
      utf8_append(out, kVBase + (si % kNCount) / kTCount);
      if (si % kTCount != 0) utf8_append(out, kTBase + si % kTCount);
    } else {
      out.append(s.substr(i, len));
    }
    i += len;
  }
  return out;
}

std::string compose_hangul(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    int len = 0, len2 = 0, len3 = 0;
    const int32_t l = utf8_decode(s, i, len) - kLBase;
    if (l >= 0 && l < kLCount && i + len < s.size()) {
      const int32_t v = utf8_decode(s, i + len, len2) - kVBase;
      if (v >= 0 && v < kVCount) {
        int32_t t = 0;
        if (i + len + len2 < s.size()) {
          t = utf8_decode(s, i + len + len2, len3) - kTBase;
          if (t <= 0 || t >= kTCount) t = 0, len3 = 0;
        }
        utf8_append(out, kSBase + (l * kVCount + v) * kTCount + t);
        i += len + len2 + len3;
        continue;
      }
    }
    out.append(s.substr(i, len));
    i += len;
  }
  return out;
}

namespace {

// Two-stage table: stage1[cp >> 8] picks a 256-entry block of classes; equal blocks are shared.
struct ClassTable {
  std::vector<uint16_t> stage1;
  std::vector<uint8_t> stage2;
};

// Sets classes[cp] for every code point the pattern's matches cover.
void mark_matches(const std::string& all, const std::vector<int32_t>& cp_at,
                  std::vector<uint8_t>& classes) {
  int err = 0;
  PCRE2_SIZE erroff = 0;
  auto* re = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(R"((\p{L}+)|(\p{N}+)|(\s+))"),
                           PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP, &err, &erroff, nullptr);
  LLMKIT_CHECK(re != nullptr, "tokenizer: cannot compile the character class pattern");
  std::unique_ptr<pcre2_code, decltype(&pcre2_code_free)> code(re, pcre2_code_free);
  pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);  // 10x faster; the interpreter is the fallback
  std::unique_ptr<pcre2_match_data, decltype(&pcre2_match_data_free)> md(
      pcre2_match_data_create_from_pattern(re, nullptr), pcre2_match_data_free);
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(all.data());
  size_t pos = 0;
  while (pos < all.size()) {
    if (pcre2_match(re, subject, all.size(), pos, PCRE2_NO_UTF_CHECK, md.get(), nullptr) < 0) break;
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md.get());
    for (int g = 1; g <= 3; ++g) {
      if (ov[2 * g] == PCRE2_UNSET) continue;
      for (size_t b = ov[2 * g]; b < ov[2 * g + 1]; ++b) {
        if (cp_at[b] >= 0) classes[cp_at[b]] = static_cast<uint8_t>(g);
      }
    }
    pos = ov[1] > pos ? ov[1] : pos + 1;
  }
}

ClassTable make_class_table() {
  constexpr int32_t kMax = 0x110000;
  std::string all;
  std::vector<int32_t> cp_at;  // code point that starts at each byte of `all`, else -1
  all.reserve(kMax * 4);
  cp_at.reserve(kMax * 4);
  for (int32_t cp = 0; cp < kMax; ++cp) {
    if (cp >= 0xD800 && cp <= 0xDFFF) continue;
    const size_t before = all.size();
    utf8_append(all, cp);
    cp_at.push_back(cp);
    for (size_t k = before + 1; k < all.size(); ++k) cp_at.push_back(-1);
  }
  std::vector<uint8_t> classes(kMax, static_cast<uint8_t>(CharClass::kOther));
  mark_matches(all, cp_at, classes);
  ClassTable t;
  t.stage1.resize(kMax >> 8);
  std::unordered_map<std::string_view, uint16_t> seen;  // block contents -> block index
  for (int32_t blk = 0; blk < (kMax >> 8); ++blk) {
    const std::string_view block(reinterpret_cast<const char*>(classes.data()) + (blk << 8), 256);
    auto [it, fresh] = seen.emplace(block, static_cast<uint16_t>(t.stage2.size() >> 8));
    if (fresh) t.stage2.insert(t.stage2.end(), block.begin(), block.end());
    t.stage1[blk] = it->second;
  }
  return t;
}

}  // namespace

CharClass char_class(int32_t cp) {
  static const ClassTable table = make_class_table();
  if (cp < 0 || cp >= 0x110000) return CharClass::kOther;
  const size_t blk = table.stage1[static_cast<size_t>(cp) >> 8];
  return static_cast<CharClass>(table.stage2[(blk << 8) | (cp & 0xFF)]);
}

}  // namespace llmkit::tokenizer
