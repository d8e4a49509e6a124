// The PCRE2 reference pre-tokenizer and the safe-cut rule used to split big inputs for threads.
// Why the cut rule is safe: no GPT-2 piece contains a non-space character followed by a space
// (letters, numbers and symbols never absorb whitespace after them, and a whitespace run's
// look-ahead only looks at the character right after the run), so a piece always starts at such a
// space and nothing before it depends on what follows.
#include "llmkit/tokenizer/pretokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "llmkit/core/error.h"

namespace llmkit::tokenizer {

std::vector<std::string_view> gpt2_pieces(std::string_view text) {
  std::vector<std::string_view> out;
  gpt2_split(text, [&](std::string_view p) { out.push_back(p); });
  return out;
}

namespace {

// True when the character that ends right before byte p is a complete, non-space character.
bool nonspace_before(std::string_view s, size_t p) {
  if (p == 0) return false;
  const auto b = static_cast<uint8_t>(s[p - 1]);
  if (b < 0x80) return b > 0x20 && b < 0x7F;
  size_t start = p - 1;
  while (start > 0 && p - start < 4 && (static_cast<uint8_t>(s[start]) & 0xC0) == 0x80) --start;
  int len = 0;
  const int32_t cp = utf8_decode(s, start, len);
  return cp >= 0 && start + len == p && char_class(cp) != CharClass::kSpace;
}

}  // namespace

size_t gpt2_safe_cut(std::string_view s, size_t target) {
  for (size_t p = target == 0 ? 1 : target; p < s.size(); ++p) {
    if ((s[p] == ' ' || s[p] == '\n') && nonspace_before(s, p)) return p;
  }
  return std::string_view::npos;
}

struct Pcre2Splitter::Impl {
  pcre2_code* code = nullptr;
  pcre2_match_context* context = nullptr;
  pcre2_jit_stack* stack = nullptr;
};

Pcre2Splitter::Pcre2Splitter() : impl_(std::make_unique<Impl>()) {
  int err = 0;
  PCRE2_SIZE erroff = 0;
  impl_->code =
      pcre2_compile(reinterpret_cast<PCRE2_SPTR>(kGpt2Pattern), PCRE2_ZERO_TERMINATED,
                    PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &err, &erroff, nullptr);
  LLMKIT_CHECK(impl_->code != nullptr, "tokenizer: cannot compile the GPT-2 pattern (PCRE2 error ",
               err, ")");
  pcre2_jit_compile(impl_->code, PCRE2_JIT_COMPLETE);  // falls back to the interpreter on failure
}

Pcre2Splitter::~Pcre2Splitter() {
  if (impl_ && impl_->code) pcre2_code_free(impl_->code);
}

std::vector<std::string_view> Pcre2Splitter::split(std::string_view text) const {
  std::vector<std::string_view> out;
  std::unique_ptr<pcre2_match_data, decltype(&pcre2_match_data_free)> md(
      pcre2_match_data_create_from_pattern(impl_->code, nullptr), pcre2_match_data_free);
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  size_t pos = 0;
  while (pos < text.size()) {
    const int rc = pcre2_match(impl_->code, subject, text.size(), pos, 0, md.get(), nullptr);
    if (rc < 0) {
      LLMKIT_CHECK(rc == PCRE2_ERROR_NOMATCH, "tokenizer: PCRE2 match error ", rc);
      out.push_back(text.substr(pos));
      break;
    }
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md.get());
    if (ov[0] > pos) out.push_back(text.substr(pos, ov[0] - pos));  // bytes the regex skipped
    out.push_back(text.substr(ov[0], ov[1] - ov[0]));
    pos = ov[1];
  }
  return out;
}

}  // namespace llmkit::tokenizer
