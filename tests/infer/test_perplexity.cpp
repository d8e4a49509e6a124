// Chunked perplexity (llama.cpp's method, infer/perplexity.h) on fake models whose answer is known
// in closed form: uniform logits give perplexity = vocab exactly; a model that puts logit a on the
// true next token gives -log(e^a / (e^a + V - 1)) per token, and only on the scored half of each
// chunk, so a row/token misalignment or scoring the wrong half changes the figure. On a tiny
// random llama, the engine's perplexity equals the one computed from the training forward.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "llmkit/core/autograd.h"
#include "llmkit/core/error.h"
#include "llmkit/infer/engine.h"
#include "llmkit/infer/perplexity.h"
#include "llmkit/models/hf_llama.h"

using namespace llmkit;
using infer::PerplexityOptions;

namespace {

// 0, 1, 2, ... mod vocab: the next token is always (previous + 1) % vocab.
std::vector<int32_t> counting_stream(int64_t n, int64_t vocab) {
  std::vector<int32_t> t(n);
  for (int64_t i = 0; i < n; ++i) t[i] = static_cast<int32_t>(i % vocab);
  return t;
}

}  // namespace

TEST(Perplexity, UniformLogitsGiveTheVocabularySize) {
  const int64_t V = 37, n_ctx = 16;
  const std::vector<int32_t> tokens = counting_stream(5 * n_ctx + 3, V);  // 5 whole chunks
  std::vector<float> logits;
  int calls = 0;
  const infer::ChunkEval eval = [&](std::span<const int32_t> chunk) {
    ++calls;
    logits.assign(chunk.size() * V, 0.25f);  // any constant: softmax is uniform
    return std::span<const float>(logits);
  };
  PerplexityOptions o;
  o.context = n_ctx;
  const auto r = infer::perplexity(eval, V, tokens, o);
  EXPECT_EQ(calls, 5);
  EXPECT_EQ(r.chunks, 5);
  EXPECT_EQ(r.context, n_ctx);
  EXPECT_EQ(r.tokens_scored, 5 * (n_ctx - 1 - n_ctx / 2));
  EXPECT_NEAR(r.loss, std::log(static_cast<double>(V)), 1e-12);
  EXPECT_NEAR(r.perplexity, static_cast<double>(V), 1e-9);
}

TEST(Perplexity, ScoresOnlyTheSecondHalfAgainstTheNextToken) {
  const int64_t V = 50, n_ctx = 20;
  const double a = 3.0;
  const std::vector<int32_t> tokens = counting_stream(3 * n_ctx, V);
  std::vector<float> logits;
  const infer::ChunkEval eval = [&](std::span<const int32_t> chunk) {
    const int64_t n = static_cast<int64_t>(chunk.size());
    logits.assign(n * V, 0.0f);
    // Row j (after tokens 0..j) puts a on chunk[j] + 1, the true next token, but only in the
    // half that is scored; the first half predicts chunk[j] itself (wrong), with a larger logit.
    for (int64_t j = 0; j < n; ++j) {
      const bool scored = j >= n / 2;
      logits[j * V + (chunk[j] + (scored ? 1 : 0)) % V] = scored ? a : 10.0f;
    }
    return std::span<const float>(logits);
  };
  PerplexityOptions o;
  o.context = n_ctx;
  const auto r = infer::perplexity(eval, V, tokens, o);
  const double expected = -std::log(std::exp(a) / (std::exp(a) + (V - 1)));
  EXPECT_NEAR(r.loss, expected, 1e-12);
  EXPECT_EQ(r.tokens_scored, 3 * (n_ctx - 1 - n_ctx / 2));
}

TEST(Perplexity, BosReplacesTheFirstTokenOfEachChunkAndChunksCapTheRun) {
  const int64_t V = 11, n_ctx = 8;
  const std::vector<int32_t> tokens = counting_stream(6 * n_ctx, V);
  std::vector<int32_t> firsts;
  std::vector<float> logits;
  std::vector<double> running;
  const infer::ChunkEval eval = [&](std::span<const int32_t> chunk) {
    const int64_t c = static_cast<int64_t>(firsts.size());
    firsts.push_back(chunk[0]);
    EXPECT_EQ(chunk[1], (c * n_ctx + 1) % V);  // the rest is the stream's
    logits.assign(chunk.size() * V, 0.0f);
    return std::span<const float>(logits);
  };
  PerplexityOptions o;
  o.context = n_ctx;
  o.chunks = 4;
  o.bos_id = 7;
  const auto r = infer::perplexity(eval, V, tokens, o, [&](int64_t c, double ppl) {
    EXPECT_EQ(c, static_cast<int64_t>(running.size()));
    running.push_back(ppl);
  });
  EXPECT_EQ(r.chunks, 4);
  EXPECT_EQ(firsts, (std::vector<int32_t>{7, 7, 7, 7}));
  ASSERT_EQ(running.size(), 4u);
  EXPECT_NEAR(running.back(), r.perplexity, 1e-12);
}

TEST(Perplexity, LogProbIsStableAndRejectsBadInput) {
  // Logits far beyond float exp's range still give the exact log-probabilities.
  const std::vector<float> big = {1000.0f, 1000.0f, -1000.0f};
  EXPECT_NEAR(infer::token_log_prob(big, 0), -std::log(2.0), 1e-12);
  EXPECT_NEAR(infer::token_log_prob(big, 2), -2000.0 - std::log(2.0), 1e-9);
  // Against the textbook formula where it does not overflow.
  const std::vector<float> small = {0.5f, -1.25f, 2.0f, 0.0f};
  double z = 0;
  for (float x : small) z += std::exp(static_cast<double>(x));
  EXPECT_NEAR(infer::token_log_prob(small, 1), -1.25 - std::log(z), 1e-12);
  EXPECT_THROW(infer::token_log_prob(small, 4), Error);
  EXPECT_THROW(infer::token_log_prob(small, -1), Error);
  const std::vector<float> nan = {0.0f, std::numeric_limits<float>::quiet_NaN()};
  EXPECT_THROW(infer::token_log_prob(nan, 0), Error);
}

TEST(Perplexity, TooFewTokensIsAnError) {
  const infer::ChunkEval eval = [](std::span<const int32_t>) -> std::span<const float> {
    ADD_FAILURE() << "eval must not run";
    return {};
  };
  PerplexityOptions o;
  o.context = 64;
  EXPECT_THROW(infer::perplexity(eval, 10, counting_stream(63, 10), o), Error);
  o.context = 2;
  EXPECT_THROW(infer::perplexity(eval, 10, counting_stream(63, 10), o), Error);
}

TEST(Perplexity, EngineEqualsTheTrainingForward) {
  models::GPTConfig c = models::llama_base_config();  // rope, rmsnorm, swiglu, no biases
  c.n_layer = 2;
  c.n_head = 4;
  c.n_kv_head = 2;
  c.n_embd = 32;
  c.block_size = 32;
  c.vocab_size = 61;
  auto g = std::make_unique<models::GPT>(c, 3);
  {
    NoGradGuard ng;
    Generator r(4);
    for (auto& [n, p] : g->named_parameters())
      r.normal_(p, n.find("norm") != std::string::npos ? 1.0 : 0.0, 0.3);
  }
  g->eval();
  models::GPT& model = *g;
  models::LoadedModel m;
  m.arch = c.arch;
  m.path = "test";
  m.gpt = g.get();
  m.gpt_config = g->config();
  m.module = std::move(g);

  std::mt19937 rng(5);
  std::vector<int32_t> tokens(3 * 16 + 5);
  for (auto& t : tokens) t = static_cast<int32_t>(rng() % c.vocab_size);
  PerplexityOptions o;
  o.context = 16;
  o.bos_id = 1;
  std::vector<float> ref;
  const infer::ChunkEval forward = [&](std::span<const int32_t> chunk) {
    NoGradGuard ng;
    const int64_t T = static_cast<int64_t>(chunk.size());
    ref =
        model.forward(Tensor::from_vector(std::vector<int32_t>(chunk.begin(), chunk.end()), {1, T}))
            .contiguous()
            .to_vector<float>();
    return std::span<const float>(ref);
  };
  const auto want = infer::perplexity(forward, c.vocab_size, tokens, o);
  infer::Engine engine(m);
  const auto got = infer::perplexity(engine, tokens, o);
  EXPECT_EQ(got.tokens_scored, want.tokens_scored);
  EXPECT_EQ(got.chunks, 3);
  EXPECT_NEAR(got.loss, want.loss, 1e-5 * want.loss);
  EXPECT_EQ(infer::perplexity(engine, tokens, o).loss, got.loss) << "not deterministic";
  // The chunk must fit the engine's context.
  o.context = 64;
  EXPECT_THROW(infer::perplexity(engine, std::vector<int32_t>(128, 1), o), Error);
}
