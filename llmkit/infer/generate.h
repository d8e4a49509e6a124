// Text generation (1.3 언어 모델링: predict the next token, append it, repeat) with a KV cache: the
// prompt is run once (prefill), then each new token costs one position of attention per layer
// (decode). Without the cache (use_cache = false) every step recomputes the whole sequence; both
// give the same tokens, which the tests check.
#pragma once

#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "llmkit/infer/sampler.h"
#include "llmkit/models/gpt.h"
#include "llmkit/tokenizer/tokenizer.h"

namespace llmkit::infer {

struct GenerateOptions {
  int64_t max_new_tokens = 128;
  SamplerOptions sampler;
  std::vector<std::string> stop_strings;  // stop when the generated text contains one (cut there)
  std::vector<int32_t> stop_ids;          // e.g. <|endoftext|>; the stop token is not emitted
  bool use_cache = true;
};

struct GenerateStats {
  int64_t prompt_tokens = 0, new_tokens = 0;
  double prefill_seconds = 0, decode_seconds = 0;
  std::string stop_reason;  // "max_new_tokens", "stop_id", "stop_string", "context"
};

// Called with each token id as it is chosen; return false to stop.
using TokenCallback = std::function<bool(int32_t id)>;

// Generates after `prompt` (ids). The model must be in eval mode. The context is the model's
// block_size: generation stops ("context") when it is full; a prompt that does not leave room for
// one new token is an Error.
std::vector<int32_t> generate_ids(models::GPT& model, std::span<const int32_t> prompt,
                                  const GenerateOptions& opt, const TokenCallback& on_token = {},
                                  GenerateStats* stats = nullptr);

// Text in, text out, streaming the decoded text to on_text as soon as it forms whole UTF-8
// characters. Stop strings are honoured in the streamed text too (text after one is never sent).
std::string generate_text(models::GPT& model, const tokenizer::Tokenizer& tok, std::string_view prompt,
                          const GenerateOptions& opt,
                          const std::function<void(std::string_view)>& on_text = {},
                          GenerateStats* stats = nullptr);

}  // namespace llmkit::infer
