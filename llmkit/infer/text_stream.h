// Streaming generated text to a reader: token ids become text only once they form whole UTF-8
// characters (TokenTextStream), and a stop string never shows, not even its first bytes before
// the rest arrives (StopMatcher). Used by generate_text and by chat replies. Not thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "llmkit/tokenizer/tokenizer.h"

namespace llmkit::infer {

// Streams text while hiding stop strings. push() returns the part of the text that can be shown
// now: everything up to the first occurrence of a stop string (after which push returns nothing),
// less a held-back tail that could still become a stop string or that ends inside a UTF-8
// character. finish() releases the held-back tail at the end of the stream. So the
// concatenation of all returned pieces is the whole text cut at the first stop string, and no
// piece ever holds the start of a stop string that later completes. Empty stop strings are
// ignored. Holds back at most (longest stop string - 1) + 3 bytes.
class StopMatcher {
 public:
  explicit StopMatcher(std::vector<std::string> stops);
  std::string push(std::string_view text);
  std::string finish();
  bool stopped() const { return stopped_; }

 private:
  std::vector<std::string> stops_;
  std::string held_;
  bool stopped_ = false;
};

// Turns generated token ids into text as it becomes whole characters: a token that ends inside a
// UTF-8 character (byte-level BPE splits them) is held until the rest arrives. Decodes all ids
// so far on each push (O(n) per token; replies are short).
class TokenTextStream {
 public:
  explicit TokenTextStream(const tokenizer::Tokenizer& tok) : tok_(tok) {}
  std::string push(int32_t id);
  std::string finish();  // the held tail, e.g. U+FFFD for a truly invalid byte sequence

 private:
  const tokenizer::Tokenizer& tok_;
  std::vector<int32_t> ids_;
  size_t sent_ = 0;  // bytes of decode(ids_) already returned
};

}  // namespace llmkit::infer
