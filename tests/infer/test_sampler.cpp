// Samplers: greedy, temperature, top-k, top-p, repetition, frequency and presence penalties,
// seeding, validation.
#include <gtest/gtest.h>

#include <cmath>

#include "llmkit/core/error.h"
#include "llmkit/infer/sampler.h"

using namespace llmkit;
using infer::Sampler;
using infer::SamplerOptions;

static SamplerOptions opts(double t, int k = 0, double p = 1.0, double pen = 1.0,
                           uint64_t seed = 1) {
  SamplerOptions o;
  o.temperature = t;
  o.top_k = k;
  o.top_p = p;
  o.repetition_penalty = pen;
  o.seed = seed;
  return o;
}

TEST(Sampler, GreedyAndTopK1AreArgmax) {
  const std::vector<float> l = {0.1f, 2.0f, -1.0f, 1.9f};
  Sampler g(opts(0));
  EXPECT_EQ(g.sample(l, {}), 1);
  Sampler k1(opts(1.0, 1));
  for (int i = 0; i < 50; ++i) EXPECT_EQ(k1.sample(l, {}), 1);
}

TEST(Sampler, TopKAndTopPKeepTheRightSets) {
  // Probabilities (temperature 1) of logits log(p): 0.5, 0.25, 0.15, 0.1.
  const std::vector<float> l = {std::log(0.5f), std::log(0.25f), std::log(0.15f), std::log(0.1f)};
  std::vector<float> p(4);
  Sampler k2(opts(1.0, 2));
  k2.probabilities(l, {}, p);
  EXPECT_NEAR(p[0], 2.0 / 3, 1e-6);
  EXPECT_NEAR(p[1], 1.0 / 3, 1e-6);
  EXPECT_EQ(p[2], 0.0f);
  Sampler p70(opts(1.0, 0, 0.7));  // 0.5 < 0.7 <= 0.75: keeps the first two
  p70.probabilities(l, {}, p);
  EXPECT_GT(p[1], 0.0f);
  EXPECT_EQ(p[2], 0.0f);
  Sampler p50(opts(1.0, 0, 0.5));  // 0.5 reaches 0.5: one token
  p50.probabilities(l, {}, p);
  EXPECT_NEAR(p[0], 1.0, 1e-6);
  Sampler all(opts(1.0));
  all.probabilities(l, {}, p);
  EXPECT_NEAR(p[3], 0.1, 1e-6);
}

TEST(Sampler, FrequenciesMatchProbabilities) {
  const std::vector<float> l = {1.0f, 0.0f, -0.5f, 0.5f};
  Sampler s(opts(0.8, 0, 1.0, 1.0, 42));
  std::vector<float> p(4);
  s.probabilities(l, {}, p);
  std::vector<int> count(4);
  const int n = 20000;
  for (int i = 0; i < n; ++i) count[s.sample(l, {})]++;
  for (int i = 0; i < 4; ++i) {
    const double sd = std::sqrt(n * p[i] * (1 - p[i]));
    EXPECT_NEAR(count[i], n * p[i], 4 * sd) << i;
  }
}

TEST(Sampler, RepetitionPenaltyAndSeeds) {
  const std::vector<float> l = {2.0f, -2.0f, 0.0f};
  std::vector<float> p(3), q(3);
  Sampler s(opts(1.0, 0, 1.0, 2.0));
  s.probabilities(l, std::vector<int32_t>{0, 1, 0}, p);
  Sampler ref(opts(1.0));
  ref.probabilities(std::vector<float>{1.0f, -4.0f, 0.0f}, {}, q);
  for (int i = 0; i < 3; ++i) EXPECT_NEAR(p[i], q[i], 1e-6);
  Sampler a(opts(1.0, 0, 1.0, 1.0, 7)), b(opts(1.0, 0, 1.0, 1.0, 7)), c(opts(1.0, 0, 1.0, 1.0, 8));
  std::vector<int32_t> sa, sb, sc;
  const std::vector<float> flat(50, 0.0f);
  for (int i = 0; i < 30; ++i) {
    sa.push_back(a.sample(flat, {}));
    sb.push_back(b.sample(flat, {}));
    sc.push_back(c.sample(flat, {}));
  }
  EXPECT_EQ(sa, sb);
  EXPECT_NE(sa, sc);
}

// OpenAI's penalties: a token drawn c times loses c * frequency + presence from its logit; the
// history passed in (the prompt) does not count, only what this sampler drew.
TEST(Sampler, FrequencyAndPresencePenaltiesCountTheDrawnTokens) {
  const std::vector<float> l = {3.0f, 2.5f, 0.0f};
  SamplerOptions o = opts(0);
  o.frequency_penalty = 0.4;
  o.presence_penalty = 0.2;
  Sampler s(o);
  const std::vector<int32_t> prompt = {0, 0, 0, 1};
  // 3.0 beats 2.5; after one draw of 0: 3.0 - 0.6 = 2.4 < 2.5, so 1; then 2.5 - 0.6 = 1.9 < 2.4.
  EXPECT_EQ(s.sample(l, prompt), 0);
  EXPECT_EQ(s.sample(l, prompt), 1);
  EXPECT_EQ(s.sample(l, prompt), 0);
  // Drawn: 0 twice (3.0 - 1.0 = 2.0), 1 once (1.9): the distribution shows both.
  o.temperature = 1.0;
  Sampler t(o);
  for (int32_t id : {0, 1, 0}) {
    std::vector<float> one_hot(3, -1e9f);
    one_hot[id] = 0;
    ASSERT_EQ(t.sample(one_hot, {}), id);
  }
  std::vector<float> p(3), q(3);
  t.probabilities(l, prompt, p);
  Sampler ref(opts(1.0));
  ref.probabilities(std::vector<float>{2.0f, 1.9f, 0.0f}, {}, q);
  for (int i = 0; i < 3; ++i) EXPECT_NEAR(p[i], q[i], 1e-6) << i;
  // probabilities() draws nothing: asking twice gives the same answer.
  t.probabilities(l, prompt, q);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(p[i], q[i]) << i;
  o.presence_penalty = NAN;
  EXPECT_THROW(Sampler{o}, Error);
}

TEST(Sampler, ValidationAndLargeVocab) {
  EXPECT_THROW(Sampler(opts(-1)), Error);
  EXPECT_THROW(Sampler(opts(1, -1)), Error);
  EXPECT_THROW(Sampler(opts(1, 0, 0.0)), Error);
  EXPECT_THROW(Sampler(opts(1, 0, 1.0, 0.0)), Error);
  Sampler s(opts(1.0, 0, 0.9));
  EXPECT_THROW(s.sample(std::vector<float>{}, {}), Error);
  EXPECT_THROW(s.sample(std::vector<float>{1.0f, NAN}, {}), Error);
  std::vector<float> big(50257);
  for (size_t i = 0; i < big.size(); ++i) big[i] = std::sin(float(i));
  const int32_t id = s.sample(big, {});
  EXPECT_TRUE(id >= 0 && id < 50257);
}

TEST(Sampler, TinyTemperaturesTendToGreedyWithoutNaN) {
  // x / T once overflowed float for T below ~3e-39 (logit 4 / 1e-39 = inf; inf - inf = NaN in
  // the softmax): the draws were garbage. (x - max) / T keeps the top logit at exactly 0.
  const std::vector<float> l = {0.1f, 4.0f, -1.0f, 3.9f, -INFINITY};
  std::vector<float> p(l.size());
  for (double t : {1e-9, 1e-30, 1e-39, 1e-300, 4.9e-324}) {
    Sampler s(opts(t, 0, 1.0, 1.0, 5));
    s.probabilities(l, {}, p);
    for (size_t i = 0; i < p.size(); ++i)
      EXPECT_EQ(p[i], i == 1 ? 1.0f : 0.0f) << "temperature " << t << " id " << i;
    for (int k = 0; k < 20; ++k) EXPECT_EQ(s.sample(l, {}), 1) << "temperature " << t;
  }
  // and a moderate one still spreads the mass: p(3) / p(1) = exp(-0.1 / 0.5)
  Sampler half(opts(0.5));
  half.probabilities(l, {}, p);
  EXPECT_NEAR(p[3] / p[1], std::exp(-0.2), 1e-5);
  EXPECT_EQ(p[4], 0.0f);
}

TEST(Sampler, NaNLogitsAreAnErrorEvenWhenGreedy) {
  const std::vector<float> l = {0.1f, NAN, 1.0f};
  Sampler greedy(opts(0));
  EXPECT_THROW(greedy.sample(l, {}), Error);
  Sampler sampled(opts(1.0));
  EXPECT_THROW(sampled.sample(l, {}), Error);
}
