// Generation: with the KV cache, the same tokens as recomputing the whole sequence each step
// (greedy and seeded sampling, every positional encoding); stops; the context limit. A batch of
// prompts of different lengths (generate_batch) gives each row the tokens generate_ids gives it
// alone with the same seed.
#include <gtest/gtest.h>

#include <algorithm>

#include "llmkit/infer/generate.h"

using namespace llmkit;

static std::unique_ptr<models::GPT> tiny_model(const std::string& pos) {
  models::GPTConfig c;
  c.n_layer = 2;
  c.n_head = 4;
  c.n_kv_head = pos == "rope" ? 2 : 0;
  c.n_embd = 32;
  c.block_size = 40;
  c.vocab_size = 50;
  c.pos_encoding = pos;
  auto m = std::make_unique<models::GPT>(c, 11);
  NoGradGuard ng;
  Generator g(3);
  for (auto& [n, p] : m->named_parameters())
    if (n.find("ln_") == std::string::npos) g.normal_(p, 0.0, 0.3);  // peaked, varied logits
  m->eval();
  return m;
}

TEST(Generate, CacheGivesTheSameTokensAsRecomputing) {
  for (const char* pos : {"learned", "sinusoidal", "rope", "alibi"}) {
    auto m = tiny_model(pos);
    const std::vector<int32_t> prompt = {1, 7, 3, 9, 4};
    for (double temp : {0.0, 1.0}) {
      infer::GenerateOptions o;
      o.max_new_tokens = 25;
      o.sampler.temperature = temp;
      o.sampler.seed = 5;
      o.use_cache = true;
      const auto cached = infer::generate_ids(*m, prompt, o);
      o.use_cache = false;
      const auto full = infer::generate_ids(*m, prompt, o);
      EXPECT_EQ(cached, full) << pos << " temperature " << temp;
      EXPECT_EQ(cached.size(), 25u);
    }
  }
}

TEST(Generate, StopsAtStopIdsAndContext) {
  auto m = tiny_model("learned");
  infer::GenerateOptions o;
  o.max_new_tokens = 100;
  o.sampler.temperature = 0;
  infer::GenerateStats st;
  const auto all = infer::generate_ids(*m, std::vector<int32_t>{1, 2}, o, {}, &st);
  EXPECT_EQ(st.stop_reason, "context");  // block_size 40: 38 new tokens fill it
  EXPECT_EQ(all.size(), 38u);
  o.stop_ids = {all[5]};
  const auto cut = infer::generate_ids(*m, std::vector<int32_t>{1, 2}, o, {}, &st);
  EXPECT_EQ(st.stop_reason, "stop_id");
  EXPECT_LE(cut.size(), 5u);
  EXPECT_THROW(infer::generate_ids(*m, std::vector<int32_t>(40, 1), o), Error);
  EXPECT_THROW(infer::generate_ids(*m, std::vector<int32_t>{}, o), Error);
  o.max_new_tokens = -1;
  EXPECT_THROW(infer::generate_ids(*m, std::vector<int32_t>{1, 2}, o), Error);
}

TEST(Generate, BatchGivesEachRowItsOwnTokens) {
  const std::vector<std::vector<int32_t>> prompts = {{1, 7, 3, 9, 4}, {2}, {5, 5, 8}, {4, 1}};
  const std::vector<uint64_t> seeds = {5, 6, 7, 8};
  for (const char* pos : {"learned", "sinusoidal", "rope", "alibi"}) {
    auto m = tiny_model(pos);
    for (double temp : {0.0, 1.0}) {
      infer::GenerateOptions o;
      o.max_new_tokens = 20;
      o.sampler.temperature = temp;
      o.stop_ids = {13};
      const auto batch = infer::generate_batch(*m, prompts, o, seeds);
      ASSERT_EQ(batch.size(), prompts.size());
      for (size_t i = 0; i < prompts.size(); ++i) {
        o.sampler.seed = seeds[i];
        EXPECT_EQ(batch[i], infer::generate_ids(*m, prompts[i], o))
            << pos << " temperature " << temp << " row " << i;
      }
    }
  }
}

TEST(Generate, BatchStopsEachRowOnItsOwn) {
  auto m = tiny_model("rope");
  const std::vector<std::vector<int32_t>> prompts = {{1, 2, 3}, {4}};
  const std::vector<uint64_t> seeds = {1, 2};
  infer::GenerateOptions o;
  o.max_new_tokens = 100;
  o.sampler.temperature = 0;
  // The batch stops when its longest row (3 tokens) fills the context of 40.
  auto full = infer::generate_batch(*m, prompts, o, seeds);
  EXPECT_EQ(full[0].size(), 37u);
  EXPECT_EQ(full[1].size(), 37u);
  // Row 0 stops after its third token (emitted); row 1 runs on.
  size_t seen = 0;
  const auto three = infer::generate_batch(
      *m, prompts, o, seeds, [&](size_t row, int32_t) { return row != 0 || ++seen < 3; });
  EXPECT_EQ(three[0], std::vector<int32_t>(full[0].begin(), full[0].begin() + 3));
  EXPECT_EQ(three[1], full[1]);
  EXPECT_THROW(infer::generate_batch(*m, std::vector<std::vector<int32_t>>{}, o, {}), Error);
  EXPECT_THROW(infer::generate_batch(*m, prompts, o, std::vector<uint64_t>{1}), Error);
  EXPECT_THROW(
      infer::generate_batch(*m, std::vector<std::vector<int32_t>>{{}}, o, std::vector<uint64_t>{1}),
      Error);
  EXPECT_THROW(
      infer::generate_batch(*m, std::vector<std::vector<int32_t>>{std::vector<int32_t>(40, 1)}, o,
                            std::vector<uint64_t>{1}),
      Error);
}

// An RNN carries its whole past in the state: generating step by step (one token fed per step)
// gives the tokens that recomputing the whole sequence from the zero state gives, with no
// context limit.
TEST(Generate, RnnStateGivesTheSameTokensAsRecomputing) {
  for (const char* cell : {"lstm", "gru"}) {
    models::RNNLMConfig c;
    c.cell = cell;
    c.n_layer = 2;
    c.n_embd = 16;
    c.hidden = 24;
    c.vocab_size = 30;
    c.block_size = 8;  // the BPTT length in training; generation may run past it
    models::RNNLM m(c, 4);
    {
      NoGradGuard ng;
      Generator g(9);
      for (auto& [n, p] : m.named_parameters()) g.normal_(p, 0.0, 0.5);
    }
    m.eval();
    infer::RnnDecoder d(m);
    const std::vector<int32_t> prompt = {3, 1, 4, 1, 5};
    infer::GenerateOptions o;
    o.max_new_tokens = 20;
    o.sampler.temperature = 0.0;
    infer::GenerateStats st;
    const auto out = infer::generate_ids(d, prompt, o, {}, &st);
    ASSERT_EQ(out.size(), 20u) << cell;
    EXPECT_EQ(st.stop_reason, "max_new_tokens");
    NoGradGuard ng;
    std::vector<int32_t> seq = prompt;
    for (int32_t tok : out) {
      const Tensor logits =
          m.forward(Tensor::from_vector(seq, {1, static_cast<int64_t>(seq.size())}));
      const int64_t T = logits.size(1), V = logits.size(2);
      const std::vector<float> row = logits.slice(1, T - 1, T).to_vector<float>();
      const int32_t best =
          static_cast<int32_t>(std::max_element(row.begin(), row.end()) - row.begin());
      ASSERT_EQ(static_cast<int64_t>(row.size()), V);
      EXPECT_EQ(tok, best) << cell << " at length " << seq.size();
      seq.push_back(tok);
    }
  }
}
