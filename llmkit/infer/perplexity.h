// Perplexity of a decoder on a token stream, computed the way llama.cpp's `llama-perplexity`
// does, so the two tools' figures on the same file and the same GGUF can be compared: the stream
// is cut into chunks of n_ctx tokens; each chunk is evaluated from an empty cache; only the second
// half of its positions is scored (each then predicts with at least n_ctx/2 tokens of context), and
// the first token of a chunk is the model's BOS when it uses one. perplexity = exp(mean NLL).
// This is what shows the quality cost of a quantisation type (f32 vs q8_0 vs q4_k ...).
// Not here: tokenising the text (encode_prompt, generate.h), the engine itself (engine.h),
// train-time evaluation of an llmkit run (train::evaluate_tokens).
#pragma once

#include <cstdint>
#include <functional>
#include <span>

namespace llmkit::infer {

class Engine;

// log(sum exp(logits)) in double, the maximum subtracted first so that no exp overflows (every
// exponent is <= 0: the sum lies in [1, V]). No check: a NaN logit gives NaN.
double log_sum_exp(std::span<const float> logits);

// log p(target) under softmax(logits), in double: logits[target] - logsumexp(logits), the
// maximum subtracted first so that no exp overflows. An Error when target is outside the row or
// a logit is NaN or infinite.
double token_log_prob(std::span<const float> logits, int32_t target);

struct PerplexityOptions {
  // Tokens per chunk (llama.cpp's n_ctx); 0: the engine's context. At least 4.
  int64_t context = 0;
  // At most this many chunks (0: every whole chunk in the stream).
  int64_t chunks = 0;
  // When >= 0, the first token of each chunk is replaced by this id (llama.cpp does so for models
  // that add a BOS token, so every chunk starts the way the model was trained to).
  int32_t bos_id = -1;
};

struct PerplexityResult {
  double loss = 0;        // mean negative log-likelihood per scored token, nats
  double perplexity = 0;  // exp(loss)
  int64_t tokens_scored = 0;
  int64_t chunks = 0;
  int64_t context = 0;
};

// Sum of -log p(tokens[j + 1] | logits row j) over j = first .. n - 2: the NLL of one chunk's
// scored positions. logits: [n, vocab] row-major, row j computed after tokens[0..j].
// `count` receives how many tokens were scored (n - 1 - first).
double chunk_nll(std::span<const float> logits, int64_t vocab, std::span<const int32_t> tokens,
                 int64_t first, int64_t* count);

// Evaluates one chunk from an empty cache and returns its logits, [chunk.size(), vocab].
using ChunkEval = std::function<std::span<const float>(std::span<const int32_t> chunk)>;
// Called after each chunk with its index (from 0) and the running perplexity so far.
using PerplexityProgress = std::function<void(int64_t chunk, double running_perplexity)>;

// The chunked perplexity of `tokens` under any model that `eval` runs (the engine below, or a
// fake in tests). options.context must be set (> 0) here. An Error when the stream holds fewer
// than one chunk.
PerplexityResult perplexity(const ChunkEval& eval, int64_t vocab, std::span<const int32_t> tokens,
                            const PerplexityOptions& options,
                            const PerplexityProgress& progress = {});

// The same on `engine`: each chunk after engine.truncate(0), all logits kept. The chunk may not
// exceed the engine's context.
PerplexityResult perplexity(Engine& engine, std::span<const int32_t> tokens,
                            const PerplexityOptions& options,
                            const PerplexityProgress& progress = {});

}  // namespace llmkit::infer
