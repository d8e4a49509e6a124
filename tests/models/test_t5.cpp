// T5 / BART: Hugging Face parameter names, relative position buckets against Hugging Face's
// values, the whole model's gradient against finite differences (f64) for both presets, cached
// generation == recomputing the decoder every step, padding invariance, config validation.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "common/gradcheck.h"
#include "llmkit/models/t5.h"

using namespace llmkit;
using models::T5;
using models::T5Config;

namespace {

T5Config tiny(const std::string& arch) {
  T5Config c = T5Config::from_json({{"arch", arch}});
  c.vocab_size = 13;
  c.n_layer = 1;
  c.n_decoder_layer = 2;
  c.n_head = 2;
  c.n_embd = 8;
  c.ffn_hidden = 12;
  c.num_buckets = 8;
  c.max_distance = 16;
  c.block_size = 16;
  return c;
}

Tensor ids_of(std::vector<int32_t> v, int64_t B) {
  const int64_t T = static_cast<int64_t>(v.size()) / B;
  return Tensor::from_vector(v, {B, T});
}

void randomize(T5& m, uint64_t seed) {  // larger than the init, so every path carries signal
  NoGradGuard ng;
  Generator g(seed);
  for (auto& [n, p] : m.named_parameters())
    g.normal_(p, n.find("layer_norm") != std::string::npos ? 1.0 : 0.0, 0.4);
}

}  // namespace

TEST(T5, HuggingFaceNames) {
  T5 m(tiny("t5"));
  auto sd = m.state_dict();
  for (const char* n :
       {"shared.weight", "encoder.block.0.layer.0.SelfAttention.q.weight",
        "encoder.block.0.layer.0.SelfAttention.o.weight",
        "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight",
        "encoder.block.0.layer.0.layer_norm.weight",
        "encoder.block.0.layer.1.DenseReluDense.wi.weight",
        "encoder.block.0.layer.1.DenseReluDense.wo.weight", "encoder.final_layer_norm.weight",
        "decoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight",
        "decoder.block.1.layer.1.EncDecAttention.k.weight",
        "decoder.block.1.layer.2.DenseReluDense.wo.weight", "decoder.final_layer_norm.weight"})
    EXPECT_TRUE(sd.count(n)) << n;
  EXPECT_FALSE(sd.count("decoder.block.1.layer.0.SelfAttention.relative_attention_bias.weight"));
  EXPECT_FALSE(sd.count("lm_head.weight"));
  EXPECT_EQ(sd.at("encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight").shape(),
            (Shape{8, 2}));
  EXPECT_EQ(sd.at("encoder.block.0.layer.1.DenseReluDense.wi.weight").shape(), (Shape{12, 8}));
  T5Config b = tiny("bart");
  b.activation = "gated-gelu";
  b.tie_embeddings = false;
  auto sb = T5(b).state_dict();
  for (const char* n :
       {"encoder.embed_positions.weight", "decoder.embed_positions.weight",
        "encoder.block.0.layer.0.SelfAttention.q.bias", "encoder.block.0.layer.0.layer_norm.bias",
        "decoder.block.0.layer.2.DenseReluDense.wi_0.weight",
        "decoder.block.0.layer.2.DenseReluDense.wi_1.weight", "lm_head.weight"})
    EXPECT_TRUE(sb.count(n)) << n;
  EXPECT_FALSE(sb.count("encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight"));
}

TEST(T5, RelativePositionBucketsMatchHuggingFace) {
  // transformers' _relative_position_bucket with the defaults (32 buckets, max_distance 128).
  const std::vector<std::pair<int64_t, int32_t>> bidir = {
      {0, 0},   {1, 17},   {-1, 1},  {7, 23},    {-7, 7},   {8, 24},   {-8, 8},
      {12, 25}, {-20, 10}, {50, 29}, {-127, 15}, {500, 31}, {-500, 15}};
  for (auto [rp, want] : bidir)
    EXPECT_EQ(models::relative_position_bucket(rp, true, 32, 128), want) << rp;
  const std::vector<std::pair<int64_t, int32_t>> causal = {
      {0, 0}, {5, 0}, {-1, 1}, {-15, 15}, {-16, 16}, {-30, 20}, {-100, 30}, {-1000, 31}};
  for (auto [rp, want] : causal)
    EXPECT_EQ(models::relative_position_bucket(rp, false, 32, 128), want) << rp;
}

class T5Arch : public ::testing::TestWithParam<std::string> {};

TEST_P(T5Arch, GradientsMatchFiniteDifferences) {
  T5Config c = tiny(GetParam());
  c.n_decoder_layer = 1;
  c.block_size = 6;  // fewer learned positions to perturb (BART)
  c.ffn_hidden = 8;
  if (GetParam() == "bart") c.activation = "gated-gelu";  // the third activation gets checked too
  T5 m(c, 3, DType::F64);
  randomize(m, 5);
  Tensor src = ids_of({3, 5, 2, 9, 7, 4, 6, 12, 0, 0}, 2);  // row 1 padded (pad_id 0)
  Tensor labels = ids_of({5, 2, 9, 1, 4, 8, -100, -100}, 2);
  std::vector<Tensor> params = m.parameters();
  llmkit::testing::gradcheck([&](const std::vector<Tensor>&) { return m.loss(src, labels); },
                             params, 1e-6, 1e-7, 1e-5);
}

TEST_P(T5Arch, CachedGenerationEqualsRecompute) {
  T5 m(tiny(GetParam()), 7, DType::F64);
  randomize(m, 11);
  m.eval();
  NoGradGuard ng;
  Tensor src = ids_of({3, 5, 2, 9, 7, 4, 6, 12, 0, 0}, 2);
  const Tensor enc = m.encode(src), mask = m.source_mask(src);
  Tensor dec = ids_of({0, 4, 9, 3, 3, 7, 0, 2, 2, 11, 5, 6}, 2);  // [2, 6]
  Tensor full = m.decode(dec, enc, mask);                         // [2, 6, V]
  auto st = m.start_decoding(enc, mask, 16);
  Tensor pre = m.decode_step(dec.slice(1, 0, 3).contiguous(), st);  // prefill 3
  EXPECT_LT(llmkit::testing::max_abs_diff(pre, full.slice(1, 0, 3)), 1e-12);
  for (int64_t t = 3; t < 6; ++t) {
    Tensor step = m.decode_step(dec.slice(1, t, t + 1).contiguous(), st);
    EXPECT_LT(llmkit::testing::max_abs_diff(step, full.slice(1, t, t + 1)), 1e-12) << t;
  }
  EXPECT_EQ(st.len(), 6);
  models::T5GenerateOptions opt;
  opt.max_new_tokens = 10;
  const auto cached = m.generate(src, opt);
  opt.use_cache = false;
  const auto recomputed = m.generate(src, opt);
  EXPECT_EQ(cached, recomputed);
  EXPECT_FALSE(cached[0].empty());
}

INSTANTIATE_TEST_SUITE_P(Presets, T5Arch, ::testing::Values("t5", "bart"));

TEST(T5, SourcePaddingDoesNotChangeLogits) {
  T5 m(tiny("t5"), 2, DType::F64);
  randomize(m, 4);
  NoGradGuard ng;
  Tensor dec = ids_of({0, 3, 8}, 1);
  Tensor a = m.forward(ids_of({3, 5, 2}, 1), dec);
  Tensor b = m.forward(ids_of({3, 5, 2, 0, 0}, 1), dec);
  EXPECT_LT(llmkit::testing::max_abs_diff(a, b), 1e-12);
}

TEST(T5, ShiftRight) {
  T5 m(tiny("t5"));
  Tensor d = m.shift_right(ids_of({5, 6, 1, -100, 7, 1, -100, -100}, 2));
  EXPECT_EQ(d.to_vector<int32_t>(), (std::vector<int32_t>{0, 5, 6, 1, 0, 7, 1, 0}));
}

TEST(T5, ConfigJsonRoundTripAndErrors) {
  for (const char* arch : {"t5", "bart"}) {
    T5Config c = tiny(arch);
    EXPECT_EQ(T5Config::from_json(c.to_json()).to_json(), c.to_json());
  }
  EXPECT_EQ(T5Config::from_json({{"arch", "bart"}}).norm, "layernorm");
  auto bad = [](nlohmann::json j, const std::string& want) {
    try {
      T5Config::from_json(j);
      ADD_FAILURE() << "no error for " << j.dump();
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(want), std::string::npos) << e.what();
    }
  };
  auto with = [](const char* key, nlohmann::json v) {
    nlohmann::json j = tiny("t5").to_json();
    j[key] = v;
    return j;
  };
  bad(with("arch", "gpt"), "arch 'gpt'");
  bad(with("activation", "swish"), "activation 'swish'");
  bad(with("pos_encoding", "rope"), "pos_encoding 'rope'");
  bad(with("norm", "batchnorm"), "norm 'batchnorm'");
  bad(with("eos_id", 13), "eos_id 13");
  bad(with("n_layers", 2), "unknown field 'n_layers'");
  bad(with("n_embd", "big"), "'n_embd' has the wrong type");
  bad(with("num_buckets", 2), "num_buckets");
  T5 m(tiny("t5"));
  EXPECT_THROW(m.forward(Tensor::zeros({1, 17}, DType::I32), Tensor::zeros({1, 2}, DType::I32)),
               Error);  // source beyond block_size
  EXPECT_THROW(m.forward(Tensor::zeros({2, 3}, DType::I32), Tensor::zeros({1, 2}, DType::I32)),
               Error);  // batch mismatch
}
