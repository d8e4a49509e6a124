// models::export_gguf: tiny random llama (GQA; tied and untied) and GPT-2-layout models written to
// GGUF and read back by models::load give the original's logits (bit for bit in f32); quantised
// files hold exactly quantize_row -> dequantize_row of the original rows, in the types the policy
// table gives; the tokenizer survives; configs llama.cpp cannot run are refused naming the field.
// GgufExportLlamaCpp: llama.cpp (llama-cpp-python, tests/models/llamacpp_reference.py) loads our
// files and its logits match ours; skips visibly when llama_cpp is not importable.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "llmkit/io/gguf.h"
#include "llmkit/io/safetensors.h"
#include "llmkit/kernels/cpu/quantize.h"
#include "llmkit/models/gguf_export.h"
#include "llmkit/models/hf_llama.h"
#include "llmkit/models/load.h"
#include "llmkit/tokenizer/gguf_vocab.h"
#include "tests/common/compare.h"
#include "tests/common/error_of.h"
#include "tests/common/gradcheck.h"
#include "tests/common/reference.h"
#include "tests/common/temp_dir.h"

using namespace llmkit;
using kernels::GgmlType;
using llmkit::testing::error_of;
using models::GgufTensorRole;
using nlohmann::json;

namespace {

const char* const kText =
    "The quick brown fox jumps over the lazy dog. A small model learns the shape of its text: "
    "the the the, and of words that come again and again. 123 4567 -- don't stop; it's fine!\n";

models::GPTConfig tiny_llama(bool tied, int64_t n_embd = 64) {
  models::GPTConfig c;
  c.arch = "llama";
  c.n_layer = 2;
  c.n_head = 4;
  c.n_kv_head = 2;
  c.n_embd = n_embd;
  c.block_size = 64;
  c.vocab_size = 300;
  c.pos_encoding = "rope";
  c.norm = "rmsnorm";
  c.activation = "swiglu";
  c.bias = false;
  c.tie_embeddings = tied;
  c.rope_theta = 10000.0;
  return c;
}

models::GPTConfig tiny_gpt(bool tied) {
  models::GPTConfig c;  // arch gpt: learned positions, LayerNorm + biases, gelu, pre-LN
  c.n_layer = 2;
  c.n_head = 4;
  c.n_embd = 64;
  c.block_size = 64;
  c.vocab_size = 300;
  c.tie_embeddings = tied;
  return c;
}

// An llmkit run directory: config.json, model.safetensors (random weights, norms and biases
// perturbed so that they matter), tokenizer.json (a byte-level BPE trained on kText).
// `tokenizer_json` replaces the trained tokenizer when given.
std::string make_run_dir(const llmkit::testing::TempDir& tmp, const std::string& name,
                         const models::GPTConfig& c, uint64_t seed = 7,
                         const std::string& tokenizer_json = "") {
  const std::string dir = tmp.file(name);
  std::filesystem::create_directories(dir);
  models::GPT g(c, seed);
  {
    NoGradGuard ng;
    uint64_t k = seed;
    for (auto& [n, t] : g.named_parameters())
      if (t.dim() == 1)
        t.copy_(t + llmkit::testing::rand_tensor(t.shape(), ++k, -0.2, 0.2, DType::F32));
  }
  io::save_safetensors(dir + "/model.safetensors", g.named_parameters());
  std::ofstream(dir + "/config.json") << c.to_json().dump(2);
  tokenizer::TrainOptions to;
  to.vocab_size = static_cast<int32_t>(c.vocab_size);
  to.min_frequency = 1;
  if (tokenizer_json.empty())
    tokenizer::Tokenizer::train_from_text(kText, to).save(dir + "/tokenizer.json");
  else
    std::ofstream(dir + "/tokenizer.json") << tokenizer_json;
  return dir;
}

// The byte-level BPE trained on kText as GGUF arrays, with llama.cpp's pre-tokenizer `pre`.
tokenizer::GgufVocab byte_level_vocab(const std::string& pre) {
  tokenizer::TrainOptions to;
  to.vocab_size = 300;
  to.min_frequency = 1;
  const tokenizer::Tokenizer t = tokenizer::Tokenizer::train_from_text(kText, to);
  tokenizer::GgufVocab v;
  v.model = "gpt2";
  v.pre = pre;
  v.tokens = t.parts().tokens;
  v.token_types.assign(v.tokens.size(), tokenizer::kGgufTokenNormal);
  v.token_types[0] = tokenizer::kGgufTokenControl;  // <|endoftext|>
  for (const auto& [a, b] : t.parts().merges) v.merges.push_back(v.tokens[a] + " " + v.tokens[b]);
  v.eos = 0;
  return v;
}

// A SentencePiece-style vocabulary (byte fallback, "▁" for spaces): <unk> <s> </s>, the 256 byte
// tokens, the characters of kText and every prefix of its "▁word"s, scores falling with the id.
tokenizer::GgufVocab spm_vocab() {
  const std::string sp = "\xE2\x96\x81";
  tokenizer::GgufVocab v;
  v.model = "llama";
  v.tokens = {"<unk>", "<s>", "</s>"};
  v.token_types = {tokenizer::kGgufTokenUnknown, tokenizer::kGgufTokenControl,
                   tokenizer::kGgufTokenControl};
  for (int b = 0; b < 256; ++b) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "<0x%02X>", b);
    v.tokens.push_back(buf);
    v.token_types.push_back(tokenizer::kGgufTokenByte);
  }
  std::set<std::string> seen(v.tokens.begin(), v.tokens.end());
  auto add = [&](const std::string& t) {
    if (seen.insert(t).second) {
      v.tokens.push_back(t);
      v.token_types.push_back(tokenizer::kGgufTokenNormal);
    }
  };
  add(sp);
  for (char ch : std::string(kText))
    if (ch != ' ' && ch != '\n') add(std::string(1, ch));
  std::istringstream words(kText);
  for (std::string w; words >> w;)
    for (size_t n = 1; n <= std::min<size_t>(w.size(), 6); ++n) add(sp + w.substr(0, n));
  for (size_t i = 0; i < v.tokens.size(); ++i) v.scores.push_back(-static_cast<float>(i));
  v.unk = 0;
  v.bos = 1;
  v.eos = 2;
  v.add_bos = true;
  v.add_space_prefix = true;
  return v;
}

std::vector<int32_t> prompt_ids(const models::LoadedModel& m) {
  return m.tokenizer->encode("The lazy fox learns words again: 4567!");
}

std::vector<float> logits_of(const models::LoadedModel& m, const std::vector<int32_t>& ids) {
  NoGradGuard ng;
  const int64_t T = static_cast<int64_t>(ids.size());
  return m.gpt->forward(Tensor::from_vector(ids, {1, T})).to_vector<float>();
}

std::string exported(const models::LoadedModel& m, const std::string& path, GgmlType t) {
  models::GgufExportOptions o;
  o.type = t;
  models::export_gguf(m, path, o);
  return path;
}

// Each row of `w` ([rows, row_len] or [n]) through quantize_row -> dequantize_row in `t`.
std::vector<float> quant_dequant(const Tensor& w, GgmlType t) {
  const int64_t row_len = w.size(-1), rows = w.numel() / row_len;
  const std::vector<float> src = w.contiguous().to_vector<float>();
  std::vector<float> out(src.size());
  std::vector<uint8_t> buf(kernels::ggml_row_size(t, row_len));
  for (int64_t r = 0; r < rows; ++r) {
    kernels::quantize_row(t, src.data() + r * row_len, buf.data(), row_len);
    kernels::dequantize_row(t, buf.data(), out.data() + r * row_len, row_len);
  }
  return out;
}

// The role the policy gives our parameter `name` (the test's own table, not the exporter's).
GgufTensorRole role_of(const std::string& name, const Tensor& t, bool tied) {
  if (t.dim() == 1) return GgufTensorRole::Vector;
  if (name == "lm_head.weight") return GgufTensorRole::Output;
  if (name == "wte.weight" || name == "model.embed_tokens.weight")
    return tied ? GgufTensorRole::Output : GgufTensorRole::Matrix;
  if (name == "wpe.weight") return GgufTensorRole::Positions;
  return GgufTensorRole::Matrix;
}

// Type and payload equal, arrays element by element.
bool same_value(const io::GgufValue& a, const io::GgufValue& b) {
  if (a.type != b.type || a.array_type != b.array_type || a.i != b.i || a.u != b.u || a.f != b.f ||
      a.b != b.b || a.s != b.s || a.array.size() != b.array.size())
    return false;
  for (size_t i = 0; i < a.array.size(); ++i)
    if (!same_value(a.array[i], b.array[i])) return false;
  return true;
}

bool can_write(GgmlType t) {
  return kernels::ggml_can_quantize(t);
}

}  // namespace

// ---- the type policy ---------------------------------------------------------------------------

TEST(GgufExport, TypePolicyTable) {
  using R = GgufTensorRole;
  struct Case {
    GgmlType file;
    R role;
    int64_t row;
    GgmlType want;
  };
  const Case cases[] = {
      {GgmlType::F32, R::Matrix, 64, GgmlType::F32},
      {GgmlType::F16, R::Matrix, 64, GgmlType::F16},
      {GgmlType::BF16, R::Output, 64, GgmlType::BF16},
      {GgmlType::F16, R::Vector, 64, GgmlType::F32},
      {GgmlType::F16, R::Positions, 64, GgmlType::F16},
      {GgmlType::Q4_0, R::Positions, 64, GgmlType::F32},
      {GgmlType::Q4_0, R::Vector, 64, GgmlType::F32},
      {GgmlType::Q4_0, R::Matrix, 64, GgmlType::Q4_0},
      {GgmlType::Q4_1, R::Matrix, 576, GgmlType::Q4_1},
      {GgmlType::Q5_0, R::Matrix, 96, GgmlType::Q5_0},
      {GgmlType::Q8_0, R::Matrix, 64, GgmlType::Q8_0},
      {GgmlType::Q4_0, R::Matrix, 40, GgmlType::F16},  // no block divides 40: llama.cpp refuses
      // the output head: Q6_K unless the file is Q8_0 or a float type
      {GgmlType::Q4_0, R::Output, 256, GgmlType::Q6_K},
      {GgmlType::Q4_K, R::Output, 512, GgmlType::Q6_K},
      {GgmlType::Q8_0, R::Output, 256, GgmlType::Q8_0},
      {GgmlType::Q4_0, R::Output, 576, GgmlType::Q8_0},  // SmolLM2's 576: Q6_K falls back
      {GgmlType::Q4_0, R::Output, 48, GgmlType::F16},
      // K-quants on rows that are not a multiple of 256
      {GgmlType::Q4_K, R::Matrix, 512, GgmlType::Q4_K},
      {GgmlType::Q4_K, R::Matrix, 576, GgmlType::Q5_0},
      {GgmlType::Q5_K, R::Matrix, 576, GgmlType::Q5_1},
      {GgmlType::Q6_K, R::Matrix, 576, GgmlType::Q8_0},
      {GgmlType::Q6_K, R::Matrix, 768, GgmlType::Q6_K},
      {GgmlType::Q4_K, R::Matrix, 48, GgmlType::F16},
  };
  for (const Case& k : cases)
    EXPECT_EQ(models::gguf_tensor_type(k.file, k.role, k.row), k.want)
        << kernels::ggml_type_name(k.file) << " role " << static_cast<int>(k.role) << " row "
        << k.row << ": got "
        << kernels::ggml_type_name(models::gguf_tensor_type(k.file, k.role, k.row));
  EXPECT_NE(error_of([] { models::gguf_tensor_type(GgmlType::Q8_1, R::Matrix, 64); }).find("Q8_1"),
            std::string::npos);
}

TEST(GgufExport, FileTypeNamesAndNumbers) {
  EXPECT_EQ(models::parse_file_type("q4_k"), GgmlType::Q4_K);
  EXPECT_EQ(models::parse_file_type("Q8_0"), GgmlType::Q8_0);
  EXPECT_EQ(models::parse_file_type("bf16"), GgmlType::BF16);
  const std::string e = error_of([] { models::parse_file_type("q3_k"); });
  EXPECT_NE(e.find("'q3_k'"), std::string::npos) << e;
  EXPECT_NE(e.find("q4_0"), std::string::npos) << e;
  // llama.cpp's llama_ftype numbers (llama.h)
  EXPECT_EQ(models::gguf_file_type_number(GgmlType::F32), 0u);
  EXPECT_EQ(models::gguf_file_type_number(GgmlType::F16), 1u);
  EXPECT_EQ(models::gguf_file_type_number(GgmlType::Q4_0), 2u);
  EXPECT_EQ(models::gguf_file_type_number(GgmlType::Q4_1), 3u);
  EXPECT_EQ(models::gguf_file_type_number(GgmlType::Q8_0), 7u);
  EXPECT_EQ(models::gguf_file_type_number(GgmlType::Q5_0), 8u);
  EXPECT_EQ(models::gguf_file_type_number(GgmlType::Q5_1), 9u);
  EXPECT_EQ(models::gguf_file_type_number(GgmlType::Q4_K), 14u);
  EXPECT_EQ(models::gguf_file_type_number(GgmlType::Q5_K), 16u);
  EXPECT_EQ(models::gguf_file_type_number(GgmlType::Q6_K), 18u);
  EXPECT_EQ(models::gguf_file_type_number(GgmlType::BF16), 32u);
}

TEST(GgufExport, PermuteRopeRowsInvertsUnpermute) {
  const Tensor w = llmkit::testing::rand_tensor({24, 5}, 3, -1, 1, DType::F32);
  const Tensor p = models::permute_rope_rows(w, 3);
  EXPECT_EQ(models::unpermute_rope_rows(p, 3).to_vector<float>(), w.to_vector<float>());
  // GGUF row (h, i, j) = HF row (h, j, i) with HS = 8: GGUF row 1 of head 0 is HF row 4.
  EXPECT_EQ(p.select(0, 1).to_vector<float>(), w.select(0, 4).to_vector<float>());
  EXPECT_EQ(p.select(0, 8 + 2).to_vector<float>(), w.select(0, 8 + 1).to_vector<float>());
}

// ---- round trips -------------------------------------------------------------------------------

class GgufRoundTrip : public ::testing::TestWithParam<std::tuple<std::string, bool>> {};

// f32 export -> models::load(.gguf) -> the same logits bit for bit, the same config, the same
// tokenizer.
TEST_P(GgufRoundTrip, F32LogitsExact) {
  const auto [arch, tied] = GetParam();
  llmkit::testing::TempDir tmp;
  const models::GPTConfig c = arch == "llama" ? tiny_llama(tied) : tiny_gpt(tied);
  const models::LoadedModel src = models::load(make_run_dir(tmp, "run", c));
  const std::string path = exported(src, tmp.file("m.gguf"), GgmlType::F32);
  const models::LoadedModel back = models::load(path);
  ASSERT_NE(back.gpt, nullptr);
  EXPECT_EQ(back.arch, arch);
  const models::GPTConfig& b = back.gpt->config();
  EXPECT_EQ(b.tie_embeddings, tied);
  EXPECT_EQ(b.kv_heads(), c.kv_heads());
  EXPECT_EQ(b.hidden(), c.hidden());
  EXPECT_EQ(b.norm_eps, c.norm_eps);
  const std::vector<int32_t> ids = prompt_ids(src);
  ASSERT_GT(ids.size(), 5u);
  EXPECT_EQ(back.tokenizer->encode("The lazy fox learns words again: 4567!"), ids);
  const std::vector<float> a = logits_of(src, ids), z = logits_of(back, ids);
  EXPECT_EQ(llmkit::testing::max_abs_diff(a, z), 0.0);
  // the file: our architecture name, the output head only when untied
  const io::GgufFile f = io::load_gguf(path);
  EXPECT_EQ(f.get("general.architecture").as_string(), arch == "llama" ? "llama" : "gpt2");
  EXPECT_EQ(f.find_tensor("output.weight") == nullptr, tied);
  EXPECT_EQ(f.get("tokenizer.ggml.model").as_string(), "gpt2");
  EXPECT_EQ(f.get("tokenizer.ggml.pre").as_string(), "gpt-2");
  const int32_t eot = src.tokenizer->token_to_id("<|endoftext|>");
  EXPECT_EQ(f.get("tokenizer.ggml.token_type").as_ints().at(eot), 3);
  EXPECT_EQ(f.get("tokenizer.ggml.eos_token_id").as_int(), eot);
}

// f16: every weight is the f16 rounding of the original, so the logits move only by that.
TEST_P(GgufRoundTrip, F16WeightsRoundedLogitsClose) {
  const auto [arch, tied] = GetParam();
  llmkit::testing::TempDir tmp;
  const models::GPTConfig c = arch == "llama" ? tiny_llama(tied) : tiny_gpt(tied);
  const models::LoadedModel src = models::load(make_run_dir(tmp, "run", c));
  const models::LoadedModel back = models::load(exported(src, tmp.file("m.gguf"), GgmlType::F16));
  const auto ps = src.gpt->state_dict(), pb = back.gpt->state_dict();
  for (const auto& [name, t] : ps) {
    const GgmlType want =
        models::gguf_tensor_type(GgmlType::F16, role_of(name, t, tied), t.size(-1));
    EXPECT_EQ(pb.at(name).to_vector<float>(), quant_dequant(t, want)) << name;
  }
  const std::vector<int32_t> ids = prompt_ids(src);
  const double err = llmkit::testing::rel_err(logits_of(back, ids), logits_of(src, ids));
  EXPECT_LT(err, 2e-3) << "f16 weights: logits rel. error " << err;
}

INSTANTIATE_TEST_SUITE_P(Archs, GgufRoundTrip,
                         ::testing::Combine(::testing::Values("llama", "gpt"), ::testing::Bool()),
                         [](const auto& info) {
                           return std::get<0>(info.param) +
                                  (std::get<1>(info.param) ? "Tied" : "Untied");
                         });

// Every quantised type: each tensor read back equals quantize -> dequantize of the original rows
// in the type the policy table names (q/k rows are permuted whole, so row-wise quantisation
// commutes with the permutation), and the file says which type each tensor has.
TEST(GgufExport, QuantisedWeightsEqualQuantDequant) {
  llmkit::testing::TempDir tmp;
  // n_embd 256: K-quant rows for the attention, 704-wide ffn_down rows that fall back.
  const models::GPTConfig cl = tiny_llama(false, 256);
  const models::GPTConfig cg = tiny_gpt(true);
  const models::LoadedModel llama = models::load(make_run_dir(tmp, "llama", cl));
  const models::LoadedModel gpt = models::load(make_run_dir(tmp, "gpt", cg));
  int checked = 0;
  for (const char* name : {"q8_0", "q4_0", "q4_1", "q5_0", "q5_1", "q4_k", "q5_k", "q6_k"}) {
    const GgmlType ft = models::parse_file_type(name);
    if (!can_write(ft)) continue;
    for (const models::LoadedModel* m : {&llama, &gpt}) {
      const bool tied = m->gpt->config().tie_embeddings;
      bool all_types = true;
      for (const auto& [n, t] : m->gpt->state_dict())
        all_types &= can_write(models::gguf_tensor_type(ft, role_of(n, t, tied), t.size(-1)));
      if (!all_types) continue;  // e.g. Q6_K for the head before the K-quants exist
      const std::string path = exported(*m, tmp.file(std::string(name) + m->arch + ".gguf"), ft);
      const models::LoadedModel back = models::load(path);
      const auto pb = back.gpt->state_dict();
      for (const auto& [n, t] : m->gpt->state_dict()) {
        const GgmlType want = models::gguf_tensor_type(ft, role_of(n, t, tied), t.size(-1));
        EXPECT_EQ(pb.at(n).to_vector<float>(), quant_dequant(t, want)) << name << " " << n;
      }
      const io::GgufFile f = io::load_gguf(path);
      EXPECT_EQ(f.get("general.file_type").as_int(), models::gguf_file_type_number(ft));
      const io::GgufTensor& qkv =
          f.tensor(m->arch == "llama" ? "blk.1.attn_q.weight" : "blk.1.attn_qkv.weight");
      EXPECT_EQ(qkv.type, models::gguf_tensor_type(ft, GgufTensorRole::Matrix, qkv.ne[0])) << name;
      EXPECT_EQ(f.tensor("blk.0.attn_norm.weight").type, GgmlType::F32) << name;
      ++checked;
    }
  }
  std::printf("checked %d (type, model) exports\n", checked);
  if (checked == 0) GTEST_SKIP() << "kernels::quantize_row writes no quantised type in this build";
}

struct TokenizerCase {
  std::string name, model, pre;
  tokenizer::GgufVocab vocab;
};

// Byte-level BPEs with each pre-tokenizer llama.cpp names, and a SentencePiece-style BPE.
std::vector<TokenizerCase> tokenizer_cases() {
  std::vector<TokenizerCase> cases;
  for (const char* pre : {"gpt-2", "smollm", "llama-bpe", "qwen2"})
    cases.push_back({pre, "gpt2", pre, byte_level_vocab(pre)});
  cases.push_back({"spm", "llama", "", spm_vocab()});
  return cases;
}

const char* const kTokenizerProbe =
    "It's 2024: 12345 words\n\n  don't STOP -- the quick fox, 한국어 and 3.14!";

// Tokenizers from tokenizer.json files: each pre-tokenizer llama.cpp has a name for is written
// under that name, a SentencePiece-style BPE as the "llama" vocabulary with scores, and the
// tokenizer read back from the file encodes as the source does.
TEST(GgufExport, TokenizerJsonPipelinesKeepTheirEncoding) {
  llmkit::testing::TempDir tmp;
  const std::string text = kTokenizerProbe;
  for (const TokenizerCase& k : tokenizer_cases()) {
    const tokenizer::Tokenizer tok = tokenizer::Tokenizer::from_gguf_vocab(k.vocab);
    models::GPTConfig c = tiny_llama(true);
    c.vocab_size = tok.vocab_size() + 3;  // three padding rows
    const models::LoadedModel src = models::load(make_run_dir(tmp, k.name, c, 7, tok.to_json()));
    const std::string path = exported(src, tmp.file(k.name + ".gguf"), GgmlType::F32);
    const io::GgufFile f = io::load_gguf(path);
    EXPECT_EQ(f.get("tokenizer.ggml.model").as_string(), k.model) << k.name;
    if (!k.pre.empty()) {
      EXPECT_EQ(f.get("tokenizer.ggml.pre").as_string(), k.pre);
    }
    const auto types = f.get("tokenizer.ggml.token_type").as_ints();
    ASSERT_EQ(types.size(), static_cast<size_t>(c.vocab_size)) << k.name;
    EXPECT_EQ(types.back(), tokenizer::kGgufTokenUnused) << k.name;
    if (k.model == "llama") {
      EXPECT_EQ(types.at(0), tokenizer::kGgufTokenUnknown);
      EXPECT_EQ(types.at(3 + 'A'), tokenizer::kGgufTokenByte);
      EXPECT_EQ(f.get("tokenizer.ggml.scores").as_floats().size(), types.size());
      EXPECT_TRUE(f.get("tokenizer.ggml.add_space_prefix").as_bool());
    }
    const models::LoadedModel back = models::load(path);
    EXPECT_EQ(back.tokenizer->encode(text), src.tokenizer->encode(text)) << k.name;
    EXPECT_EQ(back.tokenizer->decode(src.tokenizer->encode(text)), text) << k.name;
  }
}

// A .gguf source: re-export keeps every tokenizer.* key exactly.
TEST(GgufExport, GgufSourceCopiesTokenizerMetadata) {
  llmkit::testing::TempDir tmp;
  const models::LoadedModel src = models::load(make_run_dir(tmp, "run", tiny_llama(true)));
  const std::string first = exported(src, tmp.file("a.gguf"), GgmlType::F32);
  const models::LoadedModel mid = models::load(first);
  const std::string second = exported(mid, tmp.file("b.gguf"), GgmlType::F16);
  const io::GgufFile a = io::load_gguf(first), b = io::load_gguf(second);
  int n = 0;
  for (const auto& [k, v] : a.metadata) {
    if (k.rfind("tokenizer.", 0) != 0) continue;
    const io::GgufValue* w = b.find(k);
    ASSERT_NE(w, nullptr) << k;
    EXPECT_TRUE(same_value(*w, v)) << k;
    ++n;
  }
  EXPECT_GE(n, 6);
  EXPECT_EQ(b.get("general.name").as_string(), a.get("general.name").as_string());
  EXPECT_EQ(b.get("general.file_type").as_int(), 1);
}

// ---- errors ------------------------------------------------------------------------------------

TEST(GgufExport, RefusesConfigsLlamaCppCannotRun) {
  llmkit::testing::TempDir tmp;
  struct Case {
    std::string field;
    models::GPTConfig c;
  };
  std::vector<Case> cases;
  auto g = [&](const char* field, auto edit) {
    models::GPTConfig c = tiny_gpt(true);
    edit(c);
    cases.push_back({field, c});
  };
  g("post_ln", [](auto& c) { c.post_ln = true; });
  g("pos_encoding", [](auto& c) { c.pos_encoding = "sinusoidal"; });
  g("pos_encoding", [](auto& c) { c.pos_encoding = "alibi"; });
  g("norm", [](auto& c) { c.norm = "rmsnorm"; });
  g("activation", [](auto& c) { c.activation = "swiglu"; });
  g("bias", [](auto& c) { c.bias = false; });
  models::GPTConfig q = tiny_llama(true);
  q.qkv_bias = true;
  cases.push_back({"qkv_bias", q});
  models::GPTConfig r = tiny_llama(true);
  r.rope_scaling.type = "llama3";
  r.rope_scaling.factor = 8;
  cases.push_back({"rope_scaling", r});
  int i = 0;
  for (const Case& k : cases) {
    const models::LoadedModel m = models::load(make_run_dir(tmp, "run" + std::to_string(i++), k.c));
    const std::string e = error_of([&] { exported(m, tmp.file("x.gguf"), GgmlType::F32); });
    EXPECT_NE(e.find("'" + k.field), std::string::npos) << k.field << ": " << e;
    EXPECT_FALSE(std::filesystem::exists(tmp.file("x.gguf")));
  }
}

TEST(GgufExport, RefusesModelsWithoutTokenizerOrDecoder) {
  llmkit::testing::TempDir tmp;
  const std::string dir = make_run_dir(tmp, "run", tiny_llama(true));
  std::filesystem::remove(dir + "/tokenizer.json");
  const models::LoadedModel m = models::load(dir);
  const std::string e = error_of([&] { exported(m, tmp.file("x.gguf"), GgmlType::F32); });
  EXPECT_NE(e.find("no tokenizer"), std::string::npos) << e;
  models::LoadedModel none;
  none.arch = "bert";
  none.path = "some/dir";
  const std::string e2 = error_of([&] { exported(none, tmp.file("x.gguf"), GgmlType::F32); });
  EXPECT_NE(e2.find("bert"), std::string::npos) << e2;
}

// ---- llama.cpp ---------------------------------------------------------------------------------

namespace {

std::string llamacpp_skip_reason() {
  if (!llmkit::testing::ref_python_has("llama_cpp"))
    return "llama_cpp not importable in " + llmkit::testing::ref_python() +
           " (scripts/install-deps.sh --test): llama.cpp loading of exported GGUF skipped";
  return "";
}

// llama.cpp's logits at the last position of each prompt (a prefix of `ids` of each length in
// `lengths`), from llamacpp_reference.py's "logits" mode.
// Runs llamacpp_reference.py on `model`; null (with a test failure) when llama.cpp fails.
json run_llamacpp(const std::string& model, const json& in, const llmkit::testing::TempDir& tmp) {
  const std::string in_path = tmp.file("in.json"), out_path = tmp.file("out.json");
  std::ofstream(in_path) << in.dump();
  const std::string cmd = llmkit::testing::ref_python() + " '" + llmkit::testing::source_dir() +
                          "/tests/models/llamacpp_reference.py' '" + model + "' '" + in_path +
                          "' '" + out_path + "' > '" + out_path + ".log' 2>&1";
  if (std::system(cmd.c_str()) != 0) {
    std::ifstream log(out_path + ".log");
    std::stringstream s;
    s << log.rdbuf();
    ADD_FAILURE() << "llama.cpp could not run " << model << ":\n" << s.str();
    return nullptr;
  }
  return json::parse(std::ifstream(out_path));
}

std::vector<std::vector<float>> llamacpp_logits(const std::string& model,
                                                const std::vector<int32_t>& ids,
                                                const std::vector<size_t>& lengths,
                                                const llmkit::testing::TempDir& tmp) {
  json in = {{"new_tokens", 0}, {"prompts", json::array()}, {"logits", true}};
  for (size_t n : lengths)
    in["prompts"].push_back(std::vector<int32_t>(ids.begin(), ids.begin() + n));
  const json out = run_llamacpp(model, in, tmp);
  if (out.is_null()) return {};
  return out["logits"].get<std::vector<std::vector<float>>>();
}

// Ours (the f32-dequantised weights of `m`) at the last position of each prefix.
std::vector<std::vector<float>> our_logits(const models::LoadedModel& m,
                                           const std::vector<int32_t>& ids,
                                           const std::vector<size_t>& lengths) {
  std::vector<std::vector<float>> out;
  const std::vector<float> all = logits_of(m, ids);
  const size_t V = all.size() / ids.size();
  for (size_t n : lengths) out.emplace_back(all.begin() + (n - 1) * V, all.begin() + n * V);
  return out;
}

// Worst rel_err over the prompts; prints each.
double compare_logits(const std::string& what, const std::vector<std::vector<float>>& ours,
                      const std::vector<std::vector<float>>& ref) {
  EXPECT_EQ(ours.size(), ref.size()) << what;
  double worst = 0;
  for (size_t i = 0; i < std::min(ours.size(), ref.size()); ++i) {
    const double e = llmkit::testing::rel_err(ours[i], ref[i]);
    worst = llmkit::testing::nan_max(worst, e);
  }
  std::printf(
      "[ llama.cpp ] %s: max |ours - llama.cpp| / max |llama.cpp| = %.3g over %zu "
      "prompts\n",
      what.c_str(), worst, ref.size());
  return worst;
}

}  // namespace

// Tiny random llama (GQA, untied) and GPT-2 (tied) exported in f32: llama.cpp loads them and its
// logits equal ours up to the order of float sums (f32 KV cache; GELU through ggml's f16 table
// for gpt2, hence the looser bound there).
TEST(GgufExportLlamaCpp, TinyModelsF32LoadAndMatch) {
  const std::string why = llamacpp_skip_reason();
  if (!why.empty()) GTEST_SKIP() << why;
  llmkit::testing::TempDir tmp;
  struct Case {
    std::string name;
    models::GPTConfig c;
    double tol;
  };
  const Case cases[] = {{"llama", tiny_llama(false), 1e-4}, {"gpt2", tiny_gpt(true), 5e-3}};
  for (const Case& k : cases) {
    const models::LoadedModel src = models::load(make_run_dir(tmp, k.name, k.c));
    const std::string path = exported(src, tmp.file(k.name + ".gguf"), GgmlType::F32);
    const std::vector<int32_t> ids = prompt_ids(src);
    const std::vector<size_t> lengths = {1, ids.size() / 2, ids.size()};
    const auto ref = llamacpp_logits(path, ids, lengths, tmp);
    ASSERT_FALSE(ref.empty()) << k.name;
    EXPECT_LT(compare_logits(k.name + " f32", our_logits(src, ids, lengths), ref), k.tol);
  }
}

// Every quantised type on a tiny llama with 256-wide rows (K-quant attention, 704-wide ffn_down
// falling back): llama.cpp loads each file, and its logits, computed with activations it rounds
// to 8 bits, stay near ours from the same file dequantised to f32.
TEST(GgufExportLlamaCpp, TinyLlamaEveryTypeLoads) {
  const std::string why = llamacpp_skip_reason();
  if (!why.empty()) GTEST_SKIP() << why;
  llmkit::testing::TempDir tmp;
  const models::LoadedModel src = models::load(make_run_dir(tmp, "llama", tiny_llama(false, 256)));
  const std::vector<int32_t> ids = prompt_ids(src);
  const std::vector<size_t> lengths = {ids.size() / 2, ids.size()};
  std::string skipped;
  for (const char* name : {"q8_0", "q4_0", "q4_1", "q5_0", "q5_1", "q4_k", "q5_k", "q6_k"}) {
    const GgmlType t = models::parse_file_type(name);
    if (!can_write(t) || !can_write(GgmlType::Q6_K)) {
      skipped += std::string(" ") + name;
      continue;
    }
    const std::string path = exported(src, tmp.file(std::string(name) + ".gguf"), t);
    const models::LoadedModel ours = models::load(path);
    const auto ref = llamacpp_logits(path, ids, lengths, tmp);
    ASSERT_FALSE(ref.empty()) << name;
    EXPECT_LT(
        compare_logits(std::string("tiny llama ") + name, our_logits(ours, ids, lengths), ref), 0.1)
        << name;
  }
  if (!skipped.empty()) GTEST_SKIP() << "this build cannot write" << skipped << " yet";
}

// The real SmolLM2-135M-Instruct (Q4_1 GGUF) re-quantised to f16 and q8_0, as a user would:
// llama.cpp loads our files, and its logits (f16 / q8_0 weights times activations it rounds to
// f16 / q8_0) are close to ours from the same file dequantised to f32, with the same top token.
TEST(GgufExportLlamaCpp, SmolLM2Requantised) {
  std::string why = llamacpp_skip_reason();
  if (llmkit::testing::model_path("smollm2").empty())
    why = "SmolLM2 GGUF not found under " + llmkit::testing::models_dir() +
          " (scripts/get-models.sh)";
  if (!why.empty()) GTEST_SKIP() << why;
  llmkit::testing::TempDir tmp;
  const models::LoadedModel src = models::load(llmkit::testing::model_path("smollm2"));
  const std::pair<GgmlType, double> types[] = {{GgmlType::F16, 0.02}, {GgmlType::Q8_0, 0.06}};
  std::string skipped;
  for (const auto& [type, tol] : types) {
    const std::string name = kernels::ggml_type_name(type);
    if (!can_write(type)) {
      skipped += " " + name;
      continue;
    }
    const std::string path = exported(src, tmp.file("smollm2-" + name + ".gguf"), type);
    const models::LoadedModel ours = models::load(path);
    tokenizer::EncodeOptions eo;
    eo.allow_special = true;
    const std::vector<int32_t> ids = ours.tokenizer->encode(
        "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n", eo);
    const std::vector<size_t> lengths = {ids.size() / 2, ids.size()};
    const auto ref = llamacpp_logits(path, ids, lengths, tmp);
    ASSERT_FALSE(ref.empty()) << name;
    const auto mine = our_logits(ours, ids, lengths);
    EXPECT_LT(compare_logits("SmolLM2 " + name, mine, ref), tol) << name;
    for (size_t i = 0; i < ref.size(); ++i) {
      const auto top = [](const std::vector<float>& v) {
        return std::max_element(v.begin(), v.end()) - v.begin();
      };
      EXPECT_EQ(top(mine[i]), top(ref[i])) << name << " prompt " << i << ": top-1 token differs";
    }
  }
  if (!skipped.empty()) GTEST_SKIP() << "this build cannot write" << skipped << " yet";
}

// llama.cpp tokenises with the vocabularies we write as we do: byte-level BPEs under each
// pre-tokenizer name and the SentencePiece-style "llama" vocabulary with our scores.
TEST(GgufExportLlamaCpp, TokenizersEncodeAsOurs) {
  const std::string why = llamacpp_skip_reason();
  if (!why.empty()) GTEST_SKIP() << why;
  llmkit::testing::TempDir tmp;
  const std::vector<std::string> texts = {kTokenizerProbe, kText, "  two  spaces\tand tab"};
  for (const TokenizerCase& k : tokenizer_cases()) {
    const tokenizer::Tokenizer tok = tokenizer::Tokenizer::from_gguf_vocab(k.vocab);
    models::GPTConfig c = tiny_llama(true);
    c.vocab_size = tok.vocab_size();
    const models::LoadedModel src = models::load(make_run_dir(tmp, k.name, c, 7, tok.to_json()));
    const std::string path = exported(src, tmp.file(k.name + ".gguf"), GgmlType::F32);
    const json out =
        run_llamacpp(path, {{"new_tokens", 0}, {"prompts", {{1, 2, 3}}}, {"texts", texts}}, tmp);
    ASSERT_FALSE(out.is_null()) << k.name;
    for (size_t i = 0; i < texts.size(); ++i) {
      std::vector<int32_t> ours;
      if (src.add_bos) ours.push_back(src.bos_id);
      const std::vector<int32_t> body = src.tokenizer->encode(texts[i]);
      ours.insert(ours.end(), body.begin(), body.end());
      EXPECT_EQ(out["tokenized"][i].get<std::vector<int32_t>>(), ours) << k.name << ": text " << i;
    }
  }
}
