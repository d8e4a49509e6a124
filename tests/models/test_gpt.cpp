// GPT: parameter names and counts, every config variant's gradient against finite differences
// (f64), KV-cached forward == full recompute, and config validation.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "common/gradcheck.h"
#include "llmkit/models/gpt.h"

using namespace llmkit;
using models::GPT;
using models::GPTConfig;

static GPTConfig tiny(const std::string& pos, const std::string& norm, const std::string& act) {
  GPTConfig c;
  c.n_layer = 2;
  c.n_head = 2;
  c.n_embd = 8;
  c.block_size = 16;
  c.vocab_size = 11;
  c.pos_encoding = pos;
  c.norm = norm;
  c.activation = act;
  return c;
}

static Tensor ids_of(std::vector<int32_t> v, int64_t B) {
  const int64_t T = static_cast<int64_t>(v.size()) / B;
  return Tensor::from_vector(v, {B, T});
}

TEST(GPT, Gpt2NamesAndParameterCount) {
  GPTConfig c = tiny("learned", "layernorm", "gelu");
  GPT m(c);
  auto sd = m.state_dict();
  for (const char* n : {"wte.weight", "wpe.weight", "h.0.ln_1.weight", "h.0.ln_1.bias",
                        "h.0.attn.c_attn.weight", "h.0.attn.c_attn.bias", "h.0.attn.c_proj.weight",
                        "h.1.mlp.c_fc.weight", "h.1.mlp.c_proj.bias", "ln_f.weight"})
    EXPECT_TRUE(sd.count(n)) << n;
  EXPECT_FALSE(sd.count("lm_head.weight"));  // tied
  EXPECT_EQ(sd.at("h.0.attn.c_attn.weight").shape(), (Shape{24, 8}));
  EXPECT_EQ(sd.at("h.0.mlp.c_fc.weight").shape(), (Shape{32, 8}));
  // Per layer: 2 LN (2*16) + c_attn (24*8+24) + c_proj (64+8) + c_fc (256+32) + c_proj (256+8).
  const int64_t per_layer = 32 + 216 + 72 + 288 + 264;
  EXPECT_EQ(m.num_parameters(), 11 * 8 + 16 * 8 + 2 * per_layer + 16);
  GPTConfig l = tiny("rope", "rmsnorm", "swiglu");
  l.bias = false;
  l.tie_embeddings = false;
  l.n_kv_head = 1;
  GPT ml(l);
  auto sl = ml.state_dict();
  EXPECT_FALSE(sl.count("wpe.weight"));
  EXPECT_FALSE(sl.count("h.0.ln_1.bias"));
  EXPECT_TRUE(sl.count("lm_head.weight"));
  EXPECT_EQ(sl.at("h.0.attn.c_attn.weight").shape(),
            (Shape{(2 + 2) * 4, 8}));                                   // GQA: q 2 heads, k/v 1
  EXPECT_EQ(sl.at("h.0.mlp.c_fc.weight").shape(), (Shape{2 * 64, 8}));  // gate + up
}

class GPTVariant
    : public ::testing::TestWithParam<std::tuple<std::string, std::string, std::string, bool>> {};

TEST_P(GPTVariant, GradientsMatchFiniteDifferences) {
  auto [pos, norm, act, post_ln] = GetParam();
  GPTConfig c = tiny(pos, norm, act);
  c.n_layer = 1;
  c.post_ln = post_ln;
  c.n_kv_head = pos == "rope" ? 1 : 0;
  GPT m(c, 3, DType::F64);
  {  // larger weights than GPT-2's init, so every path carries signal
    NoGradGuard ng;
    Generator g(5);
    for (auto& [n, p] : m.named_parameters())
      g.normal_(p, n.find("ln_") != std::string::npos ? 1.0 : 0.0, 0.3);
  }
  Tensor ids = ids_of({1, 5, 2, 9, 9, 3, 0, 10, 4, 4}, 2);
  Tensor tgt = ids_of({5, 2, 9, 9, 3, 0, 10, -100, 4, 7}, 2);
  std::vector<Tensor> params = m.parameters();
  llmkit::testing::gradcheck([&](const std::vector<Tensor>&) { return m.loss(ids, tgt); }, params,
                             1e-6, 1e-7, 1e-5);
}

INSTANTIATE_TEST_SUITE_P(Configs, GPTVariant,
                         ::testing::Values(std::make_tuple("learned", "layernorm", "gelu", false),
                                           std::make_tuple("sinusoidal", "layernorm", "gelu", true),
                                           std::make_tuple("rope", "rmsnorm", "swiglu", false),
                                           std::make_tuple("alibi", "rmsnorm", "gelu", false)));

TEST(GPT, CachedForwardEqualsFullRecompute) {
  for (const char* pos : {"learned", "sinusoidal", "rope", "alibi"}) {
    GPTConfig c = tiny(pos, "layernorm", "gelu");
    c.n_kv_head = 1;
    GPT m(c, 7, DType::F64);
    NoGradGuard ng;
    Tensor ids = ids_of({3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8}, 2);  // [2, 6]
    Tensor full = m.forward(ids);                                  // [2, 6, V]
    auto caches = m.make_caches(2, 16);
    m.forward(ids.slice(1, 0, 4).contiguous(), &caches);  // prefill 4
    for (int64_t t = 4; t < 6; ++t) {
      Tensor step = m.forward(ids.slice(1, t, t + 1).contiguous(), &caches);  // [2, 1, V]
      EXPECT_LT(llmkit::testing::max_abs_diff(step, full.slice(1, t, t + 1)), 1e-12) << pos;
    }
    EXPECT_EQ(caches[0].len, 6);
  }
}

TEST(GPT, ConfigJsonRoundTripAndErrors) {
  GPTConfig c = tiny("rope", "rmsnorm", "swiglu");
  GPTConfig back = GPTConfig::from_json(c.to_json());
  EXPECT_EQ(back.to_json(), c.to_json());
  auto bad = [](nlohmann::json j, const std::string& want) {
    try {
      GPTConfig::from_json(j);
      ADD_FAILURE() << "no error for " << j.dump();
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(want), std::string::npos) << e.what();
    }
  };
  auto with = [&](const char* key, nlohmann::json v) {
    nlohmann::json j = c.to_json();
    j[key] = v;
    return j;
  };
  bad(with("n_head", 3), "divisible");
  bad(with("pos_encoding", "spiral"), "spiral");
  bad(with("n_layers", 2), "unknown field 'n_layers'");
  bad(with("n_embd", "big"), "'n_embd' has the wrong type");
  GPT m(tiny("learned", "layernorm", "gelu"));
  EXPECT_THROW(m.forward(Tensor::zeros({1, 17}, DType::I32)), Error);    // beyond block_size
  EXPECT_THROW(m.forward(Tensor::full({1, 2}, 11, DType::I32)), Error);  // id >= vocab
}
