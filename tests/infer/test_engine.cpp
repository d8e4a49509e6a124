// infer::Engine against models::GPT: the same logits for every layout the GPT config can describe
// (GPT-2 and llama layouts, learned / sinusoidal / RoPE / ALiBi positions, pre- and post-LN,
// GELU and SwiGLU, GQA, biases), for a prompt fed at once, in chunks, or one token at a time;
// weights quantised at load stay close to f32; errors name the problem.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <map>

#include "common/tiny_gpt.h"
#include "llmkit/infer/engine.h"
#include "llmkit/infer/generate.h"
#include "llmkit/kernels/cpu/quantize.h"

using namespace llmkit;

namespace {

models::GPTConfig base(const std::string& arch) {
  return llmkit::testing::tiny_gpt_config(arch);
}

models::LoadedModel wrap(const models::GPTConfig& c, uint64_t seed = 7) {
  return llmkit::testing::tiny_gpt(c, seed);
}

// Logits [T, V] of the whole sequence from the training forward.
std::vector<float> reference_logits(models::GPT& g, const std::vector<int32_t>& ids) {
  NoGradGuard ng;
  const int64_t T = static_cast<int64_t>(ids.size());
  return g.forward(Tensor::from_vector(ids, {1, T})).contiguous().to_vector<float>();
}

std::vector<int32_t> sequence(int64_t n, int64_t vocab, uint32_t seed = 1) {
  std::vector<int32_t> ids(n);
  uint32_t s = seed;
  for (auto& id : ids) {
    s = s * 1664525u + 1013904223u;
    id = static_cast<int32_t>((s >> 8) % vocab);
  }
  return ids;
}

// Largest |a - b| relative to the largest |b|; NaN or Inf anywhere fails.
double rel_error(std::span<const float> a, std::span<const float> b) {
  EXPECT_EQ(a.size(), b.size());
  double diff = 0, scale = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
    if (!std::isfinite(a[i]) || !std::isfinite(b[i])) return INFINITY;
    diff = std::max(diff, static_cast<double>(std::abs(a[i] - b[i])));
    scale = std::max(scale, static_cast<double>(std::abs(b[i])));
  }
  return diff / std::max(scale, 1e-30);
}

struct Variant {
  const char* name;
  models::GPTConfig config;
};

std::vector<Variant> variants() {
  std::vector<Variant> v;
  for (const char* pos : {"learned", "sinusoidal", "rope", "alibi"}) {
    models::GPTConfig c = base("gpt");
    c.pos_encoding = pos;
    v.push_back({pos, c});
  }
  models::GPTConfig post = base("gpt");
  post.post_ln = true;
  v.push_back({"post_ln", post});
  models::GPTConfig sw = base("gpt");
  sw.activation = "swiglu";
  sw.norm = "rmsnorm";
  sw.n_kv_head = 2;
  sw.pos_encoding = "rope";
  v.push_back({"gpt swiglu gqa", sw});
  v.push_back({"llama", base("llama")});
  models::GPTConfig qwen = base("llama");
  qwen.qkv_bias = true;
  qwen.tie_embeddings = true;
  v.push_back({"llama qkv bias tied", qwen});
  models::GPTConfig ab = base("llama");
  ab.attention_bias = true;
  ab.n_kv_head = 1;
  v.push_back({"llama attention bias mqa", ab});
  return v;
}

}  // namespace

TEST(Engine, MatchesTheTrainingForwardForEveryLayout) {
  for (const Variant& var : variants()) {
    models::LoadedModel m = wrap(var.config);
    const auto ids = sequence(20, var.config.vocab_size);
    const std::vector<float> want = reference_logits(*m.gpt, ids);
    infer::Engine e(m);
    const auto got = e.eval(ids, /*all_logits=*/true);
    EXPECT_LT(rel_error(got, want), 2e-5) << var.name;
    EXPECT_EQ(e.pos(), 20);
  }
}

TEST(Engine, DecodingTokenByTokenEqualsThePrefill) {
  for (const Variant& var : variants()) {
    models::LoadedModel m = wrap(var.config);
    const auto ids = sequence(17, var.config.vocab_size, 5);
    const std::vector<float> want = reference_logits(*m.gpt, ids);
    infer::Engine e(m);
    const int64_t V = var.config.vocab_size;
    // A prefill of 5, then one token at a time: each step's logits are row t of the reference.
    auto first = e.eval(std::span(ids).first(5));
    EXPECT_LT(rel_error(first, std::span(want).subspan(4 * V, V)), 2e-5) << var.name;
    for (size_t t = 5; t < ids.size(); ++t) {
      auto row = e.eval(std::span(ids).subspan(t, 1));
      EXPECT_LT(rel_error(row, std::span(want).subspan(t * V, V)), 2e-5)
          << var.name << " position " << t;
    }
  }
}

TEST(Engine, LongPromptsGoInChunksOf512) {
  models::GPTConfig c = base("llama");
  c.block_size = 1100;
  c.n_layer = 1;
  models::LoadedModel m = wrap(c);
  const auto ids = sequence(1030, c.vocab_size, 9);
  const std::vector<float> want = reference_logits(*m.gpt, ids);
  infer::Engine e(m);
  const auto all = e.eval(ids, true);
  ASSERT_EQ(all.size(), want.size());
  EXPECT_LT(rel_error(all, want), 5e-5);
  e.reset(true);
  const auto last = e.eval(ids, false);
  EXPECT_LT(rel_error(last, std::span(want).last(c.vocab_size)), 5e-5);
}

TEST(Engine, TruncateRewindsTheCache) {
  models::LoadedModel m = wrap(base("llama"));
  infer::Engine e(m);
  const auto ids = sequence(12, 61, 3);
  const auto full = e.eval(ids);
  const std::vector<float> want(full.begin(), full.end());
  e.truncate(8);
  EXPECT_EQ(e.pos(), 8);
  const auto again = e.eval(std::span(ids).subspan(8));
  EXPECT_LT(rel_error(again, want), 1e-5);
  EXPECT_EQ(e.pos(), 12);
  EXPECT_THROW(e.eval(std::span(ids).first(0)), Error);  // nothing to evaluate
}

// Weights quantised at load: the engine's logits equal the training forward's on the same
// weights rounded through the type (quantize_row then dequantize_row), up to the rounding of the
// activations that ggml's dot products add (8-bit blocks for the Q types, f16 / bf16 for those).
TEST(Engine, QuantisedWeightsMatchTheRoundedWeights) {
  models::GPTConfig c = base("llama");
  c.n_embd = 64;  // Q*_0 blocks hold 32 elements: rows of 64 and 192 (ffn) are whole blocks
  c.ffn_hidden = 192;
  models::LoadedModel m = wrap(c);
  const auto ids = sequence(10, c.vocab_size, 2);
  const size_t f32_bytes = infer::Engine(m).weight_bytes();
  // Bounds: twice the measured error. This random two-layer net (weights N(0, 0.2^2)) amplifies
  // the activations' rounding about tenfold: f16's 2^-11 gives 2e-3, bf16's 2^-8 1e-2, the 8-bit
  // blocks 2-5e-2. A wrong block layout or scale gives errors of order 1.
  const std::pair<kernels::GgmlType, double> cases[] = {{kernels::GgmlType::F16, 5e-3},
                                                        {kernels::GgmlType::BF16, 2e-2},
                                                        {kernels::GgmlType::Q8_0, 0.1},
                                                        {kernels::GgmlType::Q4_0, 0.1},
                                                        {kernels::GgmlType::Q4_1, 0.1}};
  for (const auto& [type, bound] : cases) {
    const char* name = kernels::ggml_type_name(type);
    models::LoadedModel r = wrap(c);  // the same weights (same seed), then rounded through type
    {
      NoGradGuard ng;
      for (auto& [n, p] : r.gpt->named_parameters()) {
        if (p.dim() != 2) continue;
        const int64_t cols = p.size(1);
        std::vector<uint8_t> q(kernels::ggml_row_size(type, cols));
        float* row = p.data<float>();
        for (int64_t i = 0; i < p.size(0); ++i, row += cols) {
          kernels::quantize_row(type, row, q.data(), cols);
          kernels::dequantize_row(type, q.data(), row, cols);
        }
      }
    }
    const std::vector<float> want = reference_logits(*r.gpt, ids);
    infer::EngineOptions o;
    o.weight_type = type;
    infer::Engine e(m, o);
    const double err = rel_error(e.eval(ids, true), want);
    std::printf("%s: relative error %.3g against the rounded weights\n", name, err);
    EXPECT_LT(err, bound) << name;
    EXPECT_LT(e.weight_bytes(), f32_bytes) << name;
  }
}

TEST(Engine, GeneratesTheSameTokensAsTheGptDecoder) {
  models::LoadedModel m = wrap(base("llama"), 21);
  infer::GenerateOptions o;
  o.max_new_tokens = 30;
  o.sampler.temperature = 0.8;
  o.sampler.seed = 4;
  const std::vector<int32_t> prompt = {3, 14, 15, 9};
  infer::GptDecoder ref(*m.gpt);
  infer::Engine e(m);
  EXPECT_EQ(infer::generate_ids(e, prompt, o), infer::generate_ids(ref, prompt, o));
}

TEST(Engine, ErrorsNameTheProblem) {
  models::LoadedModel m = wrap(base("llama"));
  infer::EngineOptions o;
  o.context = 8;
  infer::Engine e(m, o);
  EXPECT_EQ(e.context(), 8);
  try {
    e.eval(sequence(9, 61));
    FAIL() << "no error for a context overflow";
  } catch (const Error& err) {
    EXPECT_NE(std::string(err.what()).find("exceed the context of 8"), std::string::npos)
        << err.what();
  }
  const std::vector<int32_t> bad = {1, 61};
  try {
    e.eval(bad);
    FAIL() << "no error for an id outside the vocabulary";
  } catch (const Error& err) {
    EXPECT_NE(std::string(err.what()).find("token id 61"), std::string::npos) << err.what();
  }
  EXPECT_EQ(e.pos(), 0);  // nothing was fed
  EXPECT_THROW(e.truncate(1), Error);
  models::LoadedModel bert;
  bert.arch = "bert";
  EXPECT_THROW(infer::Engine{bert}, Error);
}

TEST(Engine, SameInputsGiveTheSameBits) {
  models::LoadedModel m = wrap(base("llama"));
  const auto ids = sequence(30, 61, 8);
  infer::Engine a(m), b(m);
  const auto la = a.eval(ids, true);
  const std::vector<float> copy(la.begin(), la.end());
  const auto lb = b.eval(ids, true);
  EXPECT_TRUE(std::equal(copy.begin(), copy.end(), lb.begin()));
}

// ---- Several sequences in one forward (continuous batching) ----

namespace {

// Feeds `plan` (per step, per slot: the tokens that slot takes) through eval_batch and returns
// each slot's logits after every step it took part in.
using Step = std::vector<std::pair<int, std::vector<int32_t>>>;
std::map<int, std::vector<std::vector<float>>> run_batched(infer::Engine& e,
                                                           const std::vector<Step>& plan) {
  std::map<int, std::vector<std::vector<float>>> out;
  const int64_t V = e.vocab();
  for (const Step& step : plan) {
    std::vector<infer::BatchSegment> segs;
    for (const auto& [slot, ids] : step) segs.push_back({slot, ids});
    const auto logits = e.eval_batch(segs);
    EXPECT_EQ(logits.size(), step.size() * V);
    for (size_t i = 0; i < step.size(); ++i)
      out[step[i].first].emplace_back(logits.begin() + i * V, logits.begin() + (i + 1) * V);
  }
  return out;
}

}  // namespace

// Three sequences that start at different steps, one still prefilling while the others decode,
// give each the bits it gets when fed alone in the same pieces, for every layout, f32 and Q8_0:
// every product row is its own dot products (fewer than 64 rows: the vec_dot path), and attention
// reads only the row's own slot.
TEST(EngineBatch, EachSequenceGetsTheBitsItGetsAlone) {
  for (const auto type : {kernels::GgmlType::F32, kernels::GgmlType::Q8_0}) {
    for (const Variant& var : variants()) {
      models::LoadedModel m = wrap(var.config);
      infer::EngineOptions o;
      o.slots = 4;
      o.weight_type = type;
      infer::Engine batched(m, o);
      const int64_t V = var.config.vocab_size;
      const auto a = sequence(9, V, 11), b = sequence(12, V, 12), c = sequence(7, V, 13);
      auto piece = [](const std::vector<int32_t>& s, size_t from, size_t n) {
        return std::vector<int32_t>(s.begin() + from, s.begin() + from + n);
      };
      // slot 1 <- a, slot 3 <- b, slot 0 <- c (slot 2 stays unused).
      const std::vector<Step> plan = {
          {{1, piece(a, 0, 5)}},
          {{1, piece(a, 5, 1)}, {3, piece(b, 0, 8)}},
          {{3, piece(b, 8, 1)}, {1, piece(a, 6, 1)}, {0, piece(c, 0, 4)}},
          {{0, piece(c, 4, 1)}, {1, piece(a, 7, 1)}, {3, piece(b, 9, 1)}},
          {{3, piece(b, 10, 2)}, {0, piece(c, 5, 2)}, {1, piece(a, 8, 1)}},
      };
      const auto got = run_batched(batched, plan);
      EXPECT_EQ(batched.slot_pos(1), 9);
      EXPECT_EQ(batched.slot_pos(3), 12);
      EXPECT_EQ(batched.slot_pos(0), 7);
      EXPECT_EQ(batched.slot_pos(2), 0);
      // Each slot alone, in the same pieces, on a one-slot engine.
      for (int slot : {0, 1, 3}) {
        infer::EngineOptions one;
        one.weight_type = type;
        infer::Engine alone(m, one);
        size_t k = 0;
        for (const Step& step : plan)
          for (const auto& [s, ids] : step) {
            if (s != slot) continue;
            const auto want = alone.eval(ids);
            ASSERT_LT(k, got.at(slot).size());
            EXPECT_TRUE(std::equal(want.begin(), want.end(), got.at(slot)[k].begin()))
                << var.name << " " << kernels::ggml_type_name(type) << ": slot " << slot << " step "
                << k << " differs from the sequence fed alone (relative error "
                << rel_error(got.at(slot)[k], want) << ")";
            ++k;
          }
      }
      // And the training forward agrees with the batched logits (f32 weights).
      if (type == kernels::GgmlType::F32) {
        const std::vector<float> want = reference_logits(*m.gpt, a);
        EXPECT_LT(rel_error(got.at(1).back(), std::span(want).last(V)), 2e-5) << var.name;
      }
    }
  }
}

// A prompt fed whole, in chunks, or after a cached prefix (down to its last token alone, which
// takes the decode path) gives the same bits at its last position: by default while every chunk
// is under 64 rows (qmatmul's 8-bit path; attention is the same fused kernel for one row as for
// many), and with batch_invariant at any length (past 64 rows, where the default multiplies in
// f32 BLAS, and past 64 keys, a second attention block).
TEST(EngineBatch, ChunksAndCachedPrefixesKeepTheBits) {
  for (const auto type : {kernels::GgmlType::Q8_0, kernels::GgmlType::Q4_1}) {
    for (const Variant& var : variants()) {
      models::GPTConfig c = var.config;
      c.block_size = 160;
      models::LoadedModel m = wrap(c);
      for (const bool invariant : {false, true}) {
        infer::EngineOptions o;
        o.weight_type = type;
        o.batch_invariant = invariant;
        infer::Engine e(m, o);
        const auto ids = sequence(invariant ? 130 : 40, c.vocab_size, 21);
        const int64_t n = static_cast<int64_t>(ids.size());
        const auto whole = e.eval(ids);
        const std::vector<float> want(whole.begin(), whole.end());
        std::vector<std::vector<int64_t>> cuts = {{n - 1}, {n - 2}, {n / 2}, {7, 20, n - 3}};
        if (invariant) cuts.push_back({64, 128});
        for (const auto& cut : cuts) {
          e.truncate(0);
          int64_t from = 0;
          std::span<const float> got;
          for (size_t i = 0; i <= cut.size(); ++i) {
            const int64_t to = i < cut.size() ? cut[i] : n;
            got = e.eval(std::span(ids).subspan(from, to - from));
            from = to;
          }
          EXPECT_TRUE(std::equal(want.begin(), want.end(), got.begin()))
              << var.name << " " << kernels::ggml_type_name(type) << (invariant ? " invariant" : "")
              << ": cut at " << cut[0] << " (" << cut.size() << " cuts) differs from the whole "
              << n << " tokens (relative error " << rel_error(got, want) << ")";
        }
      }
    }
  }
}

TEST(EngineBatch, CopySlotSharesAPrefill) {
  models::LoadedModel m = wrap(base("llama"));
  infer::EngineOptions o;
  o.slots = 3;
  infer::Engine e(m, o);
  const auto ids = sequence(10, 61, 4);
  const std::vector<infer::BatchSegment> prefill = {{0, std::span(ids).first(8)}};
  e.eval_batch(prefill);
  e.copy_slot(0, 2, 8);
  EXPECT_EQ(e.slot_pos(2), 8);
  const std::vector<infer::BatchSegment> both = {{0, std::span(ids).subspan(8, 2)},
                                                 {2, std::span(ids).subspan(8, 2)}};
  const auto logits = e.eval_batch(both);
  EXPECT_TRUE(std::equal(logits.begin(), logits.begin() + 61, logits.begin() + 61));
  const std::vector<float> want = reference_logits(*m.gpt, ids);
  EXPECT_LT(rel_error(logits.first(61), std::span(want).last(61)), 2e-5);
  e.truncate_slot(2, 0);
  EXPECT_EQ(e.slot_pos(2), 0);
  EXPECT_EQ(e.slot_pos(0), 10);
  EXPECT_THROW(e.copy_slot(2, 1, 1), Error);  // slot 2 holds nothing now
}

TEST(EngineBatch, BadBatchesAreErrorsThatChangeNothing) {
  models::LoadedModel m = wrap(base("llama"));
  infer::EngineOptions o;
  o.slots = 2;
  o.context = 8;
  infer::Engine e(m, o);
  EXPECT_EQ(e.slots(), 2);
  EXPECT_EQ(e.kv_bytes_per_token(), size_t{2 * 2 * 2 * 8 * 4});  // K+V, 2 layers, 2 kv heads, HS 8
  const std::vector<int32_t> three = {1, 2, 3}, nine = sequence(9, 61), none, bad = {1, 61};
  auto message = [&](std::vector<infer::BatchSegment> segs) -> std::string {
    try {
      e.eval_batch(segs);
    } catch (const Error& err) {
      return err.what();
    }
    return "no error";
  };
  e.eval_batch(std::vector<infer::BatchSegment>{{0, three}});
  EXPECT_NE(message({{0, three}, {0, three}}).find("slot 0 appears twice"), std::string::npos);
  EXPECT_NE(message({{1, three}, {2, three}}).find("slot 2 is out of range (2 slots)"),
            std::string::npos);
  EXPECT_NE(message({{1, nine}}).find("slot 1: 9 positions exceed the context of 8"),
            std::string::npos);
  EXPECT_NE(message({{1, three}, {0, none}}).find("slot 0 has no tokens"), std::string::npos);
  EXPECT_NE(message({{1, bad}}).find("token id 61"), std::string::npos);
  EXPECT_NE(message({}).find("an empty batch"), std::string::npos);
  EXPECT_EQ(e.slot_pos(0), 3);  // none of the refused batches fed anything
  EXPECT_EQ(e.slot_pos(1), 0);
  EXPECT_THROW(e.truncate_slot(1, 1), Error);
  infer::EngineOptions zero;
  zero.slots = 0;
  EXPECT_THROW(infer::Engine(m, zero), Error);
}
