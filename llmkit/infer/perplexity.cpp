// Chunked perplexity (llama.cpp's method); see perplexity.h.
#include "llmkit/infer/perplexity.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "llmkit/core/error.h"
#include "llmkit/infer/engine.h"

namespace llmkit::infer {

double token_log_prob(std::span<const float> logits, int32_t target) {
  LLMKIT_CHECK(target >= 0 && static_cast<size_t>(target) < logits.size(), "perplexity: token ",
               target, " is outside a logits row of ", logits.size());
  // Double throughout: the per-token values are summed over thousands of tokens.
  for (float x : logits)
    LLMKIT_CHECK(std::isfinite(x), "perplexity: a logit is ", x, " (NaN or infinite)");
  return static_cast<double>(logits[target]) - log_sum_exp(logits);
}

double log_sum_exp(std::span<const float> logits) {
  double m = -HUGE_VAL;
  for (float x : logits) m = std::max(m, static_cast<double>(x));
  double sum = 0;
  for (float x : logits) sum += std::exp(static_cast<double>(x) - m);
  return m + std::log(sum);
}

double chunk_nll(std::span<const float> logits, int64_t vocab, std::span<const int32_t> tokens,
                 int64_t first, int64_t* count) {
  const int64_t n = static_cast<int64_t>(tokens.size());
  LLMKIT_CHECK(vocab > 0 && static_cast<int64_t>(logits.size()) == n * vocab,
               "perplexity: ", logits.size(), " logits for ", n, " tokens of a vocabulary of ",
               vocab);
  LLMKIT_CHECK(first >= 0 && first < n - 1, "perplexity: first scored position ", first,
               " outside a chunk of ", n);
  double nll = 0;
  for (int64_t j = first; j < n - 1; ++j)
    nll -= token_log_prob(logits.subspan(j * vocab, vocab), tokens[j + 1]);
  if (count) *count = n - 1 - first;
  return nll;
}

PerplexityResult perplexity(const ChunkEval& eval, int64_t vocab, std::span<const int32_t> tokens,
                            const PerplexityOptions& options, const PerplexityProgress& progress) {
  const int64_t n_ctx = options.context;
  LLMKIT_CHECK(n_ctx >= 4, "perplexity: context ", n_ctx, " is too small (at least 4 tokens)");
  const int64_t n_tokens = static_cast<int64_t>(tokens.size());
  int64_t n_chunks = n_tokens / n_ctx;
  LLMKIT_CHECK(n_chunks >= 1, "perplexity: the text has ", n_tokens,
               " tokens, fewer than one chunk of ", n_ctx, " (use a smaller --context)");
  if (options.chunks > 0) n_chunks = std::min(n_chunks, options.chunks);
  // llama.cpp scores positions n_ctx/2 .. n_ctx-2 of each chunk (the logits there predict tokens
  // n_ctx/2 + 1 .. n_ctx - 1): every scored prediction sees at least half a context.
  const int64_t first = n_ctx / 2;
  PerplexityResult r;
  r.context = n_ctx;
  double nll = 0;
  std::vector<int32_t> chunk(n_ctx);
  for (int64_t c = 0; c < n_chunks; ++c) {
    std::copy_n(tokens.begin() + c * n_ctx, n_ctx, chunk.begin());
    if (options.bos_id >= 0) chunk[0] = options.bos_id;
    const std::span<const float> logits = eval(chunk);
    int64_t count = 0;
    nll += chunk_nll(logits, vocab, chunk, first, &count);
    r.tokens_scored += count;
    r.chunks = c + 1;
    if (progress) progress(c, std::exp(nll / static_cast<double>(r.tokens_scored)));
  }
  r.loss = nll / static_cast<double>(r.tokens_scored);
  r.perplexity = std::exp(r.loss);
  return r;
}

PerplexityResult perplexity(Engine& engine, std::span<const int32_t> tokens,
                            const PerplexityOptions& options, const PerplexityProgress& progress) {
  PerplexityOptions o = options;
  if (o.context == 0) o.context = engine.context();
  LLMKIT_CHECK(o.context <= engine.context(), "perplexity: context ", o.context,
               " exceeds the engine's ", engine.context(), " tokens");
  const ChunkEval eval = [&engine](std::span<const int32_t> chunk) {
    engine.truncate(0);
    return engine.eval(chunk, /*all_logits=*/true);
  };
  return perplexity(eval, engine.vocab(), tokens, o, progress);
}

}  // namespace llmkit::infer
