// A byte-level BPE with no merges: 257 ids (<|endoftext|> + 256 bytes), every byte one token. For
// tests that need a real tokenizer but no trained vocabulary.
#pragma once

#include "llmkit/tokenizer/tokenizer.h"

namespace llmkit::testing {

inline const tokenizer::Tokenizer& byte_tokenizer() {
  static const tokenizer::Tokenizer tok = [] {
    tokenizer::TrainOptions o;
    o.vocab_size = 257;
    return tokenizer::Tokenizer::train_from_text("abc", o);
  }();
  return tok;
}

}  // namespace llmkit::testing
