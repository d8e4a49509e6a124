// The llama family without Python: Hugging Face names in memory, old fused llmkit checkpoints
// still loading, RoPE scaling (values and finite-difference backward), config.json mapping and its
// errors, the GGUF q/k un-permutation, and models::load's errors. The transformers comparison is
// test_llama_hf_parity.cpp.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "llmkit/io/safetensors.h"
#include "llmkit/models/hf_bert.h"
#include "llmkit/models/hf_gpt2.h"
#include "llmkit/models/hf_llama.h"
#include "llmkit/models/load.h"
#include "tests/common/compare.h"
#include "tests/common/gradcheck.h"
#include "tests/common/temp_dir.h"

using namespace llmkit;
using llmkit::testing::gradcheck;
using llmkit::testing::rand_tensor;
using nlohmann::json;

namespace {

models::GPTConfig tiny_llama() {
  models::GPTConfig c;
  c.arch = "llama";
  c.n_layer = 2;
  c.n_head = 4;
  c.n_kv_head = 2;
  c.n_embd = 32;
  c.block_size = 32;
  c.vocab_size = 50;
  c.pos_encoding = "rope";
  c.norm = "rmsnorm";
  c.activation = "swiglu";
  c.bias = false;
  c.tie_embeddings = false;
  return c;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

Tensor ids_tensor(int64_t T, int64_t V) {
  std::vector<int32_t> ids;
  for (int64_t i = 0; i < T; ++i) ids.push_back(static_cast<int32_t>((i * 7 + 3) % V));
  return Tensor::from_vector(ids, {1, T});
}

}  // namespace

TEST(LlamaNames, HuggingFaceNamesAndShapes) {
  models::GPTConfig c = tiny_llama();
  c.qkv_bias = true;
  models::GPT m(c, 1);
  const auto sd = m.state_dict();
  EXPECT_EQ(sd.at("model.embed_tokens.weight").shape(), (Shape{50, 32}));
  EXPECT_EQ(sd.at("model.layers.1.self_attn.q_proj.weight").shape(), (Shape{32, 32}));
  EXPECT_EQ(sd.at("model.layers.1.self_attn.k_proj.weight").shape(), (Shape{16, 32}));
  EXPECT_EQ(sd.at("model.layers.1.self_attn.v_proj.bias").shape(), (Shape{16}));
  EXPECT_FALSE(sd.count("model.layers.1.self_attn.o_proj.bias"));
  EXPECT_EQ(sd.at("model.layers.0.mlp.gate_proj.weight").shape(), (Shape{c.hidden(), 32}));
  EXPECT_EQ(sd.at("model.layers.0.mlp.down_proj.weight").shape(), (Shape{32, c.hidden()}));
  for (const char* n :
       {"model.layers.0.input_layernorm.weight", "model.layers.0.post_attention_layernorm.weight",
        "model.norm.weight", "lm_head.weight", "model.layers.0.mlp.up_proj.weight"})
    EXPECT_TRUE(sd.count(n)) << n;
  EXPECT_FALSE(sd.count("wte.weight"));
  // Norms start at one, biases at zero (as GPT-2's init does).
  EXPECT_EQ(sd.at("model.norm.weight").to_vector<float>()[3], 1.0f);
  EXPECT_EQ(sd.at("model.layers.0.self_attn.q_proj.bias").to_vector<float>()[3], 0.0f);
  c.attention_bias = true;
  c.qkv_bias = false;
  EXPECT_TRUE(models::GPT(c, 1).state_dict().count("model.layers.1.self_attn.o_proj.bias"));
}

TEST(LlamaNames, OldFusedCheckpointStillLoads) {
  // Write a checkpoint the way llmkit did before the llama names: c_attn = [q; k; v] rows,
  // c_fc = [gate; up] rows, GPT-2 module names.
  const models::GPTConfig c = tiny_llama();
  models::GPT m(c, 3);
  const auto sd = m.state_dict();
  io::NamedTensors old;
  auto cat_rows = [](std::vector<Tensor> parts) {
    std::vector<float> v;
    int64_t rows = 0, cols = parts[0].size(1);
    for (auto& p : parts) {
      auto pv = p.to_vector<float>();
      v.insert(v.end(), pv.begin(), pv.end());
      rows += p.size(0);
    }
    return Tensor::from_vector(v, {rows, cols});
  };
  old.emplace_back("wte.weight", sd.at("model.embed_tokens.weight"));
  old.emplace_back("ln_f.weight", sd.at("model.norm.weight"));
  old.emplace_back("lm_head.weight", sd.at("lm_head.weight"));
  for (int i = 0; i < 2; ++i) {
    const std::string n = "model.layers." + std::to_string(i) + ".",
                      o = "h." + std::to_string(i) + ".";
    old.emplace_back(o + "ln_1.weight", sd.at(n + "input_layernorm.weight"));
    old.emplace_back(o + "ln_2.weight", sd.at(n + "post_attention_layernorm.weight"));
    old.emplace_back(o + "attn.c_attn.weight", cat_rows({sd.at(n + "self_attn.q_proj.weight"),
                                                         sd.at(n + "self_attn.k_proj.weight"),
                                                         sd.at(n + "self_attn.v_proj.weight")}));
    old.emplace_back(o + "attn.c_proj.weight", sd.at(n + "self_attn.o_proj.weight"));
    old.emplace_back(o + "mlp.c_fc.weight", cat_rows({sd.at(n + "mlp.gate_proj.weight"),
                                                      sd.at(n + "mlp.up_proj.weight")}));
    old.emplace_back(o + "mlp.c_proj.weight", sd.at(n + "mlp.down_proj.weight"));
  }
  const llmkit::testing::TempDir dir;
  std::ofstream(dir.file("config.json")) << c.to_json().dump();
  io::save_safetensors(dir.file("model.safetensors"), old);
  models::LoadedModel l = models::load(dir.path.string());
  ASSERT_NE(l.gpt, nullptr);
  EXPECT_EQ(l.source, models::SourceKind::LlmkitDir);
  m.eval();
  NoGradGuard ng;
  const Tensor ids = ids_tensor(9, c.vocab_size);
  EXPECT_EQ(llmkit::testing::max_abs_diff(l.gpt->forward(ids), m.forward(ids)), 0.0);
}

TEST(LlamaRope, ScalingMatchesTheFormulas) {
  const auto plain = ops::rope_inv_freq(8, 10000.0);
  EXPECT_NEAR(plain[1], std::pow(10000.0, -2.0 / 8), 1e-15);
  ops::RopeScaling lin{"linear", 4.0};
  const auto l = ops::rope_inv_freq(8, 10000.0, lin);
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(l[i], plain[i] / 4, 1e-15);
  // llama3 with original context 16: wavelength 2 pi / f. Pair 0 (wavelength 6.3 < 16/4 = 4? no:
  // 6.28 > 4) is in the smooth band, the lowest frequency (wavelength 6283) is divided by factor.
  ops::RopeScaling l3{"llama3", 8.0, 1.0, 4.0, 16};
  const auto s = ops::rope_inv_freq(8, 10000.0, l3);
  const double pi = std::acos(-1.0);
  for (int i = 0; i < 4; ++i) {
    const double wl = 2 * pi / plain[i];
    double want = plain[i];
    if (wl > 16) {
      want = plain[i] / 8;
    } else if (wl >= 4) {
      const double sm = (16 / wl - 1) / 3;
      want = (1 - sm) * plain[i] / 8 + sm * plain[i];
    }
    EXPECT_NEAR(s[i], want, 1e-15) << i;
  }
  EXPECT_NE(s[3], plain[3]);
  for (const char* t : {"dynamic", "yarn", "longrope"}) {
    const std::string e = error_of([&] { ops::rope_inv_freq(8, 1e4, {t, 2.0}); });
    EXPECT_NE(e.find(t), std::string::npos) << e;
  }
}

TEST(LlamaRope, ScaledBackwardByFiniteDifferences) {
  Tensor x = rand_tensor({1, 2, 5, 8}, 21).requires_grad_();
  const auto inv = ops::rope_inv_freq(8, 500000.0, {"llama3", 8.0, 1.0, 4.0, 16});
  gradcheck([&](const std::vector<Tensor>& v) { return ops::rope(v[0], 4, inv); }, {x});
}

TEST(LlamaConfig, FromAndToHuggingFace) {
  const json hf = {{"model_type", "llama"},
                   {"hidden_size", 64},
                   {"intermediate_size", 112},
                   {"num_hidden_layers", 2},
                   {"num_attention_heads", 4},
                   {"num_key_value_heads", 2},
                   {"max_position_embeddings", 128},
                   {"rms_norm_eps", 1e-6},
                   {"rope_theta", 5e5},
                   {"tie_word_embeddings", false},
                   {"attention_bias", true},
                   {"hidden_act", "silu"},
                   {"vocab_size", 96},
                   {"bos_token_id", 1},
                   {"eos_token_id", json::array({2, 3})},
                   {"rope_scaling",
                    {{"rope_type", "llama3"},
                     {"factor", 8.0},
                     {"low_freq_factor", 1.0},
                     {"high_freq_factor", 4.0},
                     {"original_max_position_embeddings", 16}}}};
  const models::GPTConfig c = models::llama_config_from_hf(hf);
  EXPECT_EQ(c.n_embd, 64);
  EXPECT_EQ(c.hidden(), 112);
  EXPECT_EQ(c.kv_heads(), 2);
  EXPECT_EQ(c.block_size, 128);
  EXPECT_TRUE(c.attention_bias);
  EXPECT_FALSE(c.tie_embeddings);
  EXPECT_EQ(c.rope_scaling.type, "llama3");
  EXPECT_EQ(c.eos_token_ids, (std::vector<int64_t>{2, 3}));
  const json back = models::llama_config_to_hf(c);
  const models::GPTConfig c2 = models::llama_config_from_hf(back);
  EXPECT_EQ(c2.to_json(), c.to_json());
  // llmkit's own config.json keeps the new fields too.
  EXPECT_EQ(models::GPTConfig::from_json(c.to_json()).to_json(), c.to_json());
  json q = hf;
  q["model_type"] = "qwen2";
  q.erase("attention_bias");
  q["rope_scaling"] = nullptr;
  const models::GPTConfig cq = models::llama_config_from_hf(q);
  EXPECT_TRUE(cq.qkv_bias);
  EXPECT_FALSE(cq.attention_bias);
  EXPECT_EQ(models::llama_config_to_hf(cq)["model_type"], "qwen2");
}

TEST(LlamaConfig, RefusesWhatItCannotRun) {
  const json base = {{"model_type", "mistral"},  {"hidden_size", 64},
                     {"intermediate_size", 112}, {"num_hidden_layers", 2},
                     {"num_attention_heads", 4}, {"max_position_embeddings", 128},
                     {"vocab_size", 96}};
  EXPECT_NO_THROW(models::llama_config_from_hf(base));
  auto expect_error = [&](json j, const std::string& word) {
    const std::string e = error_of([&] { models::llama_config_from_hf(j); });
    EXPECT_NE(e.find(word), std::string::npos) << e;
  };
  json j = base;
  j["sliding_window"] = 64;
  expect_error(j, "sliding_window");
  j = base;
  j["model_type"] = "falcon";
  expect_error(j, "falcon");
  j = base;
  j["hidden_act"] = "gelu";
  expect_error(j, "hidden_act");
  j = base;
  j["rope_scaling"] = {{"type", "yarn"}, {"factor", 4.0}};
  expect_error(j, "yarn");
  j = base;
  j.erase("hidden_size");
  expect_error(j, "hidden_size");
}

TEST(LlamaGguf, UnpermuteInvertsConvertPermute) {
  // convert_hf_to_gguf.py's permute: reshape(n_head, 2, rows / n_head / 2, cols).swapaxes(1, 2).
  const int64_t nh = 3, HS = 4, cols = 2, rows = nh * HS;
  std::vector<float> hf(rows * cols), gg(rows * cols);
  for (int64_t i = 0; i < rows * cols; ++i) hf[i] = static_cast<float>(i);
  for (int64_t h = 0; h < nh; ++h)
    for (int64_t j = 0; j < 2; ++j)
      for (int64_t i = 0; i < HS / 2; ++i)
        for (int64_t c = 0; c < cols; ++c)
          gg[((h * HS / 2 + i) * 2 + j) * cols + c] = hf[((h * 2 + j) * HS / 2 + i) * cols + c];
  const Tensor back = models::unpermute_rope_rows(Tensor::from_vector(gg, {rows, cols}), nh);
  EXPECT_EQ(back.to_vector<float>(), hf);
}

TEST(LoadErrors, OneClearLine) {
  const llmkit::testing::TempDir dir;
  auto err = [](const std::string& p) { return error_of([&] { models::load(p); }); };
  EXPECT_NE(err(dir.file("nope")).find("does not exist"), std::string::npos);
  EXPECT_NE(err(dir.path.string()).find("no config.json"), std::string::npos);
  std::ofstream(dir.file("config.json")) << R"({"model_type": "falcon"})";
  EXPECT_NE(err(dir.path.string()).find("falcon"), std::string::npos);
  // A HF llama dir with a mis-shaped tensor names it and both shapes.
  models::GPTConfig c = tiny_llama();
  models::GPT m(c, 1);
  auto params = m.named_parameters();
  for (auto& [n, t] : params)
    if (n == "model.norm.weight") t = Tensor::zeros({31});
  std::ofstream(dir.file("config.json")) << models::llama_config_to_hf(c).dump();
  io::save_safetensors(dir.file("model.safetensors"), params);
  const std::string e = error_of([&] { models::load(dir.path.string(), {false}); });
  EXPECT_NE(e.find("model.norm.weight"), std::string::npos) << e;
  EXPECT_NE(e.find("[31]"), std::string::npos) << e;
  EXPECT_NE(e.find("[32]"), std::string::npos) << e;
  // A missing one.
  params.erase(params.begin());
  io::save_safetensors(dir.file("model.safetensors"), params);
  const std::string e2 = error_of([&] { models::load(dir.path.string(), {false}); });
  EXPECT_NE(e2.find("missing tensor 'model.embed_tokens.weight'"), std::string::npos) << e2;
  // A truncated file.
  { std::ofstream(dir.file("model.safetensors"), std::ios::trunc) << "12345"; }
  const std::string e3 = error_of([&] { models::load(dir.path.string(), {false}); });
  EXPECT_NE(e3.find("model.safetensors"), std::string::npos) << e3;
}

TEST(LoadDispatch, HuggingFaceGpt2AndBertDirectories) {
  // GPT-2 and BERT directories as transformers writes them (hf_gpt2.h / hf_bert.h) load through
  // the one loader too.
  const llmkit::testing::TempDir dir;
  models::GPTConfig g;
  g.n_layer = 1;
  g.n_head = 2;
  g.n_embd = 16;
  g.block_size = 16;
  g.vocab_size = 40;
  models::GPT gpt(g, 5);
  gpt.eval();
  models::save_hf_gpt2_dir(gpt, dir.file("gpt2"));
  models::LoadedModel lg = models::load(dir.file("gpt2"), {false});
  ASSERT_NE(lg.gpt, nullptr);
  EXPECT_EQ(lg.arch, "gpt");
  NoGradGuard ng;
  const Tensor ids = ids_tensor(7, g.vocab_size);
  EXPECT_EQ(llmkit::testing::max_abs_diff(lg.gpt->forward(ids), gpt.forward(ids)), 0.0);
  models::BertConfig b;
  b.vocab_size = 40;
  b.block_size = 16;
  models::Bert bert(b, 5);
  models::save_hf_bert_dir(bert, dir.file("bert"));
  models::LoadedModel lb = models::load(dir.file("bert"), {false});
  ASSERT_NE(lb.bert, nullptr);
  EXPECT_EQ(lb.arch, "bert");
  EXPECT_EQ(lb.source, models::SourceKind::HfDir);
  for (const auto& [n, t] : bert.named_parameters())
    EXPECT_EQ(llmkit::testing::max_abs_diff(lb.bert->state_dict().at(n), t), 0.0) << n;
}

TEST(LlamaNames, LayoutGradientsMatchFiniteDifferences) {
  // The llama layout (separate projections, q/k/v biases, llama3-scaled RoPE) end to end in f64.
  models::GPTConfig c = tiny_llama();
  c.n_layer = 1;
  c.n_embd = 16;
  c.ffn_hidden = 24;
  c.vocab_size = 12;
  c.qkv_bias = true;
  c.rope_scaling = {"llama3", 4.0, 1.0, 4.0, 8};
  models::GPT m(c, 3, DType::F64);
  {
    NoGradGuard ng;
    Generator g(5);
    for (auto& [n, p] : m.named_parameters())
      g.normal_(p, n.find("norm") != std::string::npos ? 1.0 : 0.0, 0.3);
  }
  std::vector<int32_t> iv = {1, 5, 2, 9, 9, 3, 0, 10, 4, 4},
                       tv = {5, 2, 9, 9, 3, 0, 10, -100, 4, 7};
  const Tensor ids = Tensor::from_vector(iv, {2, 5}), tgt = Tensor::from_vector(tv, {2, 5});
  gradcheck([&](const std::vector<Tensor>&) { return m.loss(ids, tgt); }, m.parameters(), 1e-6,
            1e-7, 1e-5);
}
