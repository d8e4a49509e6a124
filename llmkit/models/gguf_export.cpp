// models::export_gguf (gguf_export.h): GPTConfig -> llama.* / gpt2.* metadata, the model's
// tensors under ggml's names (quantised row by row, in parallel), and the tokenizer as
// tokenizer.ggml.* arrays. The names and keys are the ones llama.cpp's convert_hf_to_gguf.py
// writes and its loader (llama-model.cpp, llama-vocab.cpp) reads.
#include "llmkit/models/gguf_export.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <utility>
#include <vector>

#include "llmkit/core/parallel.h"
#include "llmkit/io/gguf.h"
#include "llmkit/kernels/cpu/quantize.h"
#include "llmkit/models/hf_llama.h"
#include "llmkit/nn/lora.h"
#include "llmkit/tokenizer/gguf_vocab.h"

namespace llmkit::models {

using io::GgufValue;
using kernels::GgmlType;
using nlohmann::json;
using Type = GgufValue::Type;

namespace {

struct FileType {
  const char* name;
  GgmlType type;
  uint32_t ftype;  // llama.cpp's llama_ftype
};
// The order --help lists them in.
constexpr FileType kFileTypes[] = {
    {"f32", GgmlType::F32, 0},    {"f16", GgmlType::F16, 1},   {"bf16", GgmlType::BF16, 32},
    {"q8_0", GgmlType::Q8_0, 7},  {"q4_0", GgmlType::Q4_0, 2}, {"q4_1", GgmlType::Q4_1, 3},
    {"q5_0", GgmlType::Q5_0, 8},  {"q5_1", GgmlType::Q5_1, 9}, {"q4_k", GgmlType::Q4_K, 14},
    {"q5_k", GgmlType::Q5_K, 16}, {"q6_k", GgmlType::Q6_K, 18}};

const FileType& file_type_entry(GgmlType t) {
  for (const FileType& f : kFileTypes)
    if (f.type == t) return f;
  fail("gguf export: ", kernels::ggml_type_name(t), " is not a file type (", file_type_names(),
       ")");
}

bool is_float_type(GgmlType t) {
  return t == GgmlType::F32 || t == GgmlType::F16 || t == GgmlType::BF16;
}

// llama.cpp's tensor_type_fallback: the closest type whose block divides the row.
GgmlType fallback(GgmlType t, int64_t row_len) {
  if (row_len % kernels::ggml_block_size(t) == 0) return t;
  switch (t) {
    case GgmlType::Q4_K:
      t = GgmlType::Q5_0;
      break;
    case GgmlType::Q5_K:
      t = GgmlType::Q5_1;
      break;
    case GgmlType::Q6_K:
      t = GgmlType::Q8_0;
      break;
    default:
      break;
  }
  return row_len % kernels::ggml_block_size(t) == 0 ? t : GgmlType::F16;
}

// ---- metadata helpers ----------------------------------------------------------------------

using Metadata = std::vector<std::pair<std::string, GgufValue>>;

void put(Metadata& md, const std::string& key, GgufValue v) {
  md.emplace_back(key, std::move(v));
}
void put_u32(Metadata& md, const std::string& key, int64_t v) {
  put(md, key, GgufValue::integer(Type::U32, v));
}
void put_f32(Metadata& md, const std::string& key, double v) {
  put(md, key, GgufValue::floating(Type::F32, v));
}

// ---- the config ----------------------------------------------------------------------------

// An Error naming the first field llama.cpp's graph for `arch` would not compute as we do.
void check_exportable(const GPTConfig& c) {
  auto need = [](bool ok, const char* arch, const char* field, const std::string& got,
                 const char* want) {
    LLMKIT_CHECK(ok, "gguf export: config field '", field, "' is ", got, "; llama.cpp's ", arch,
                 " graph needs ", want);
  };
  const auto b = [](bool v) { return std::string(v ? "true" : "false"); };
  if (c.llama_layout()) {
    need(c.pos_encoding == "rope", "llama", "pos_encoding", c.pos_encoding, "rope");
    need(c.norm == "rmsnorm", "llama", "norm", c.norm, "rmsnorm");
    need(c.activation == "swiglu", "llama", "activation", c.activation, "swiglu");
    need(!c.bias, "llama", "bias", b(c.bias), "false");
    need(!c.attention_bias, "llama", "attention_bias", b(c.attention_bias),
         "false (our GGUF reader refuses attention biases)");
    need(!c.qkv_bias, "llama", "qkv_bias", b(c.qkv_bias),
         "false (Qwen2-style biases are the qwen2 architecture)");
    need(!c.post_ln, "llama", "post_ln", b(c.post_ln), "false");
    const std::string rs = c.rope_scaling.type;
    need(rs.empty() || rs == "default" || rs == "linear", "llama", "rope_scaling.type",
         "'" + rs + "'", "none or linear");
  } else {
    need(c.pos_encoding == "learned", "gpt2", "pos_encoding", c.pos_encoding, "learned");
    need(c.norm == "layernorm", "gpt2", "norm", c.norm, "layernorm");
    need(c.activation == "gelu", "gpt2", "activation", c.activation, "gelu");
    need(c.bias, "gpt2", "bias", b(c.bias), "true");
    need(!c.post_ln, "gpt2", "post_ln", b(c.post_ln), "false (pre-LN)");
  }
}

std::string model_name(const LoadedModel& m, const io::GgufFile* src) {
  if (src != nullptr)
    if (const GgufValue* n = src->find("general.name"); n && n->type == Type::STRING)
      return n->as_string();
  std::filesystem::path p(m.path);
  while (!p.empty() && p.filename().empty()) p = p.parent_path();  // "dir/" -> "dir"
  return p.stem().string();
}

void put_config(Metadata& md, const GPTConfig& c) {
  const std::string a = c.llama_layout() ? "llama" : "gpt2";
  put_u32(md, a + ".context_length", c.block_size);
  put_u32(md, a + ".embedding_length", c.n_embd);
  put_u32(md, a + ".feed_forward_length", c.hidden());
  put_u32(md, a + ".block_count", c.n_layer);
  put_u32(md, a + ".attention.head_count", c.n_head);
  put_u32(md, a + ".attention.head_count_kv", c.kv_heads());
  put_u32(md, a + ".vocab_size", c.vocab_size);
  if (c.llama_layout()) {
    put_f32(md, "llama.attention.layer_norm_rms_epsilon", c.norm_eps);
    put_f32(md, "llama.rope.freq_base", c.rope_theta);
    put_u32(md, "llama.rope.dimension_count", c.n_embd / c.n_head);
    if (c.rope_scaling.type == "linear") {
      put(md, "llama.rope.scaling.type", GgufValue::string("linear"));
      put_f32(md, "llama.rope.scaling.factor", c.rope_scaling.factor);
    }
  } else {
    put_f32(md, "gpt2.attention.layer_norm_epsilon", c.norm_eps);
  }
}

// ---- the tokenizer -------------------------------------------------------------------------

// The pre_tokenizer JSON our GGUF reader builds for llama.cpp's `pre` name (gguf_vocab.cpp), so a
// source pipeline can be matched against each name llama.cpp knows.
json pre_tokenizer_for(const std::string& pre) {
  tokenizer::GgufVocab v;
  v.model = "gpt2";
  v.pre = pre;
  v.tokens = {"a"};
  // to_json, not parts().pipeline: a "gpt-2" vocabulary takes the built-in path (no pipeline).
  return json::parse(tokenizer::Tokenizer::from_gguf_vocab(v).to_json())
      .value("pre_tokenizer", json());
}

// llama.cpp's name for a byte-level BPE's pre-tokenizer; an Error when it has none.
std::string byte_level_pre_name(const json& pre_tokenizer) {
  for (const char* name : {"gpt-2", "smollm", "llama-bpe", "qwen2"})
    if (pre_tokenizer == pre_tokenizer_for(name)) return name;
  fail("gguf export: the tokenizer's pre_tokenizer ", pre_tokenizer.dump(),
       " has no llama.cpp name (known: the GPT-2 regex, SmolLM's digits + GPT-2, Llama 3's and ",
       "Qwen2's regexes)");
}

// The SentencePiece-style BPE (byte_fallback, "▁" for spaces) as GGUF's "llama" vocabulary: the
// merge of rank r produces a token of score -r, so llama.cpp (which merges the pair whose result
// scores highest) and our reader (which ranks merges by score, gguf_vocab.cpp) merge in the
// source's order. Tokens no merge produces score below every merge.
void spm_vocab(const tokenizer::TokenizerParts& p, const json& tj, tokenizer::GgufVocab& v) {
  v.model = "llama";
  const size_t n = p.tokens.size();
  v.scores.assign(n, -static_cast<float>(p.merges.size()) - 1.0f);
  std::map<std::string, int32_t> index;
  for (size_t id = 0; id < n; ++id) index.emplace(p.tokens[id], static_cast<int32_t>(id));
  for (size_t r = p.merges.size(); r-- > 0;) {  // lowest rank last: it wins
    const auto it = index.find(p.tokens[p.merges[r].first] + p.tokens[p.merges[r].second]);
    if (it != index.end()) v.scores[it->second] = -static_cast<float>(r);
  }
  for (size_t id = 0; id < n; ++id) {
    const std::string& t = p.tokens[id];
    if (static_cast<int32_t>(id) == v.unk) {
      v.token_types[id] = tokenizer::kGgufTokenUnknown;
    } else if (t.size() == 6 && t.compare(0, 3, "<0x") == 0 && t.back() == '>') {
      v.token_types[id] = tokenizer::kGgufTokenByte;
    }
  }
  // Which of llama.cpp's two SentencePiece pipelines (a "▁" prefix or not) the source is.
  for (bool prefix : {true, false}) {
    tokenizer::GgufVocab probe;
    probe.model = "llama";
    probe.tokens = {"a"};
    probe.scores = {0};
    probe.add_space_prefix = prefix;
    const json pj = json::parse(tokenizer::Tokenizer::from_gguf_vocab(probe).to_json());
    if (pj.value("normalizer", json()) == tj.value("normalizer", json()) &&
        pj.value("pre_tokenizer", json()) == tj.value("pre_tokenizer", json())) {
      v.add_space_prefix = prefix;
      return;
    }
  }
  fail("gguf export: the SentencePiece-style tokenizer's normalizer ",
       tj.value("normalizer", json()).dump(), " and pre_tokenizer ",
       tj.value("pre_tokenizer", json()).dump(),
       " are not llama.cpp's (Llama 2's Prepend + Replace with \"\xE2\x96\x81\")");
}

// The loaded tokenizer as GGUF's arrays; `n_vocab` rows of the embedding (extra rows become
// "[PADn]" tokens of type unused, as convert_hf_to_gguf.py pads them).
tokenizer::GgufVocab vocab_from_tokenizer(const LoadedModel& m, int64_t n_vocab) {
  const tokenizer::Tokenizer& tok = *m.tokenizer;
  const tokenizer::TokenizerParts& p = tok.parts();
  LLMKIT_CHECK(p.model == tokenizer::Model::kBpe, "gguf export: only BPE tokenizers can be ",
               "written to GGUF (this one is ",
               p.model == tokenizer::Model::kWordPiece ? "WordPiece"
               : p.model == tokenizer::Model::kUnigram ? "Unigram"
                                                       : "a character model",
               ")");
  LLMKIT_CHECK(!p.hangul_to_jamo, "gguf export: the tokenizer decomposes Hangul into jamo (NFD), ",
               "which llama.cpp's tokenizers do not do");
  const json tj = json::parse(tok.to_json());
  const int64_t n = static_cast<int64_t>(p.tokens.size());
  LLMKIT_CHECK(n <= n_vocab, "gguf export: the tokenizer has ", n,
               " tokens but the model's embedding only ", n_vocab, " rows");
  tokenizer::GgufVocab v;
  v.tokens = p.tokens;
  v.token_types.assign(n, tokenizer::kGgufTokenNormal);
  for (const json& a : tj.value("added_tokens", json::array())) {
    const int64_t id = a.at("id").get<int64_t>();
    if (id >= 0 && id < n)
      v.token_types[id] = a.value("special", true) ? tokenizer::kGgufTokenControl
                                                   : tokenizer::kGgufTokenUserDefined;
  }
  const json& model = tj.at("model");
  if (model.contains("unk_token") && model["unk_token"].is_string())
    if (auto id = tok.find_token(model["unk_token"].get<std::string>())) v.unk = *id;
  if (model.value("byte_fallback", false)) {
    spm_vocab(p, tj, v);
  } else {
    const json norm = tj.value("normalizer", json());
    LLMKIT_CHECK(norm.is_null() || norm.value("type", "") == "NFC", "gguf export: the ",
                 "tokenizer's normalizer ", norm.dump(), " has no llama.cpp equivalent");
    v.model = "gpt2";
    v.pre = byte_level_pre_name(tj.value("pre_tokenizer", json()));
    for (const auto& [a, b] : p.merges) v.merges.push_back(p.tokens[a] + " " + p.tokens[b]);
  }
  for (int64_t id = n; id < n_vocab; ++id) {
    v.tokens.push_back("[PAD" + std::to_string(id) + "]");
    v.token_types.push_back(tokenizer::kGgufTokenUnused);
    if (!v.scores.empty()) v.scores.push_back(-1e9f);
  }
  v.bos = m.bos_id;
  v.eos = m.eos_ids.empty() ? -1 : m.eos_ids.front();
  if (v.bos < 0 && v.model == "gpt2") v.bos = v.eos;  // GPT-2's <|endoftext|> is both
  v.add_bos = m.add_bos;
  if (m.tokenizer_config.is_object() && m.tokenizer_config.contains("pad_token")) {
    const json& pt = m.tokenizer_config["pad_token"];
    const json text = pt.is_object() ? pt.value("content", json()) : pt;
    if (text.is_string())
      if (auto id = tok.find_token(text.get<std::string>())) v.pad = *id;
  }
  return v;
}

void put_vocab(Metadata& md, const tokenizer::GgufVocab& v) {
  put(md, "tokenizer.ggml.model", GgufValue::string(v.model));
  if (v.model == "gpt2") put(md, "tokenizer.ggml.pre", GgufValue::string(v.pre));
  put(md, "tokenizer.ggml.tokens", GgufValue::strings(v.tokens));
  if (!v.scores.empty()) {
    std::vector<GgufValue> s;
    for (float f : v.scores) s.push_back(GgufValue::floating(Type::F32, f));
    put(md, "tokenizer.ggml.scores", GgufValue::array_of(Type::F32, std::move(s)));
  }
  std::vector<GgufValue> types;
  for (int32_t t : v.token_types) types.push_back(GgufValue::integer(Type::I32, t));
  put(md, "tokenizer.ggml.token_type", GgufValue::array_of(Type::I32, std::move(types)));
  if (v.model == "gpt2") put(md, "tokenizer.ggml.merges", GgufValue::strings(v.merges));
  const std::pair<const char*, int32_t> ids[] = {
      {"bos", v.bos}, {"eos", v.eos}, {"unknown", v.unk}, {"padding", v.pad}};
  for (const auto& [what, id] : ids)
    if (id >= 0) put_u32(md, std::string("tokenizer.ggml.") + what + "_token_id", id);
  put(md, "tokenizer.ggml.add_bos_token", GgufValue::boolean(v.add_bos));
  put(md, "tokenizer.ggml.add_eos_token", GgufValue::boolean(false));
  if (v.model == "llama")
    put(md, "tokenizer.ggml.add_space_prefix", GgufValue::boolean(v.add_space_prefix));
}

void put_tokenizer(Metadata& md, const LoadedModel& m, const io::GgufFile* src, int64_t n_vocab) {
  if (src != nullptr) {  // the exact path: every tokenizer.* key as the source has it
    bool any = false;
    for (const auto& [k, v] : src->metadata)
      if (k.compare(0, 10, "tokenizer.") == 0) {
        md.emplace_back(k, v);
        any |= k == "tokenizer.ggml.model";
      }
    LLMKIT_CHECK(any, "gguf export: ", m.path, " has no tokenizer (tokenizer.ggml.model)");
    return;
  }
  LLMKIT_CHECK(m.tokenizer.has_value(), "gguf export: ", m.path, " has no tokenizer ",
               "(llama.cpp needs one; put a tokenizer.json beside the model)");
  put_vocab(md, vocab_from_tokenizer(m, n_vocab));
  // An llmkit run keeps its template in tokenizer_config.json, which load() does not apply.
  std::string tpl = m.chat_template;
  if (tpl.empty() && m.tokenizer_config.is_object() &&
      m.tokenizer_config.value("chat_template", json()).is_string())
    tpl = m.tokenizer_config["chat_template"].get<std::string>();
  if (!tpl.empty()) put(md, "tokenizer.chat_template", GgufValue::string(tpl));
}

// ---- the tensors ---------------------------------------------------------------------------

// One tensor of the file: ggml's name, ours, and what the policy needs.
struct Spec {
  std::string gguf, ours;
  GgufTensorRole role;
  int64_t layer = -1;         // for progress
  int64_t permute_heads = 0;  // llama's q/k: rows permuted for ggml's RoPE (from our layout)
};

// The tensors of `c`'s GGUF file, in llama.cpp's order.
std::vector<Spec> tensor_specs(const GPTConfig& c) {
  const auto vec = GgufTensorRole::Vector, mat = GgufTensorRole::Matrix;
  const auto head = GgufTensorRole::Output;
  std::vector<Spec> out;
  if (c.llama_layout()) {
    out.push_back(
        {"token_embd.weight", "model.embed_tokens.weight", c.tie_embeddings ? head : mat});
    for (int64_t i = 0; i < c.n_layer; ++i) {
      const std::string b = "blk." + std::to_string(i) + ".",
                        h = "model.layers." + std::to_string(i) + ".";
      out.push_back({b + "attn_norm.weight", h + "input_layernorm.weight", vec, i});
      out.push_back({b + "attn_q.weight", h + "self_attn.q_proj.weight", mat, i, c.n_head});
      out.push_back({b + "attn_k.weight", h + "self_attn.k_proj.weight", mat, i, c.kv_heads()});
      out.push_back({b + "attn_v.weight", h + "self_attn.v_proj.weight", mat, i});
      out.push_back({b + "attn_output.weight", h + "self_attn.o_proj.weight", mat, i});
      out.push_back({b + "ffn_norm.weight", h + "post_attention_layernorm.weight", vec, i});
      out.push_back({b + "ffn_gate.weight", h + "mlp.gate_proj.weight", mat, i});
      out.push_back({b + "ffn_up.weight", h + "mlp.up_proj.weight", mat, i});
      out.push_back({b + "ffn_down.weight", h + "mlp.down_proj.weight", mat, i});
    }
    out.push_back({"output_norm.weight", "model.norm.weight", vec});
    if (!c.tie_embeddings) out.push_back({"output.weight", "lm_head.weight", head});
    return out;
  }
  out.push_back({"token_embd.weight", "wte.weight", c.tie_embeddings ? head : mat});
  out.push_back({"position_embd.weight", "wpe.weight", GgufTensorRole::Positions});
  const std::pair<const char*, const char*> names[] = {
      {"attn_norm", "ln_1"}, {"attn_qkv", "attn.c_attn"}, {"attn_output", "attn.c_proj"},
      {"ffn_norm", "ln_2"},  {"ffn_up", "mlp.c_fc"},      {"ffn_down", "mlp.c_proj"}};
  for (int64_t i = 0; i < c.n_layer; ++i) {
    const std::string b = "blk." + std::to_string(i) + ".", h = "h." + std::to_string(i) + ".";
    for (const auto& [gn, hn] : names) {
      const bool norm = std::string(gn).find("norm") != std::string::npos;
      out.push_back({b + gn + ".weight", h + hn + ".weight", norm ? vec : mat, i});
      out.push_back({b + gn + ".bias", h + hn + ".bias", vec, i});
    }
  }
  out.push_back({"output_norm.weight", "ln_f.weight", vec});
  out.push_back({"output_norm.bias", "ln_f.bias", vec});
  if (!c.tie_embeddings) out.push_back({"output.weight", "lm_head.weight", head});
  return out;
}

struct Item {
  std::string name;
  Tensor value;  // f32 [rows, row_len] or [n]
};

// `t` (f32, contiguous, [rows, row_len] or [n]) in ggml type `type`, rows quantised in parallel.
std::string encode(const Item& it, GgmlType type) {
  const Tensor& t = it.value;
  const int64_t row_len = t.size(-1), rows = t.numel() / std::max<int64_t>(row_len, 1);
  const size_t row_bytes = kernels::ggml_row_size(type, row_len);
  std::string out(row_bytes * rows, '\0');
  const float* src = t.data<float>();
  std::mutex mu;
  std::string error;  // the first failure; exceptions must not leave an OpenMP region
  parallel_for(rows, std::max<int64_t>(1, (int64_t{1} << 16) / std::max<int64_t>(row_len, 1)),
               [&](int64_t r0, int64_t r1) {
                 try {
                   for (int64_t r = r0; r < r1; ++r)
                     kernels::quantize_row(type, src + r * row_len, out.data() + r * row_bytes,
                                           row_len);
                 } catch (const std::exception& e) {
                   std::lock_guard<std::mutex> lock(mu);
                   if (error.empty()) error = e.what();
                 }
               });
  LLMKIT_CHECK(error.empty(), "gguf export: ", it.name, ": ", error);
  return out;
}

}  // namespace

const char* file_type_names() {
  return "f32|f16|bf16|q8_0|q4_0|q4_1|q5_0|q5_1|q4_k|q5_k|q6_k";
}

GgmlType parse_file_type(const std::string& name) {
  std::string lower = name;
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
  for (const FileType& f : kFileTypes)
    if (lower == f.name) return f.type;
  fail("quantize: --type '", name, "' is not one of ", file_type_names());
}

uint32_t gguf_file_type_number(GgmlType file) {
  return file_type_entry(file).ftype;
}

GgmlType gguf_tensor_type(GgmlType file, GgufTensorRole role, int64_t row_len) {
  file_type_entry(file);  // an Error for types that are not file types
  switch (role) {
    case GgufTensorRole::Vector:
      return GgmlType::F32;
    case GgufTensorRole::Positions:
      return file == GgmlType::F16 || file == GgmlType::BF16 ? file : GgmlType::F32;
    case GgufTensorRole::Output:
      if (is_float_type(file)) return file;
      // llama.cpp tests the row against the file type's block first (Q8_0 when it does not
      // divide), then asks for Q6_K, whose own fallback is Q8_0 again.
      if (row_len % kernels::ggml_block_size(file) != 0) return fallback(GgmlType::Q8_0, row_len);
      return fallback(file == GgmlType::Q8_0 ? GgmlType::Q8_0 : GgmlType::Q6_K, row_len);
    case GgufTensorRole::Matrix:
      return is_float_type(file) ? file : fallback(file, row_len);
  }
  return file;
}

void export_gguf(const LoadedModel& m, const std::string& path, const GgufExportOptions& options) {
  const auto t0 = std::chrono::steady_clock::now();
  LLMKIT_CHECK(m.gpt != nullptr || m.gpt_config.has_value(), "gguf export: ", m.path, " is a ",
               m.arch, " model; only decoders (gpt, llama) can be written to GGUF");
  const GPTConfig& c = m.gpt != nullptr ? m.gpt->config() : *m.gpt_config;
  check_exportable(c);
  const GgmlType ftype = options.type;
  LLMKIT_CHECK(kernels::ggml_can_quantize(ftype), "gguf export: this build cannot write ",
               kernels::ggml_type_name(ftype), " yet");
  // A .gguf source is read from its file: tensors already in ggml's layout, and a tensor whose
  // type the policy keeps is copied byte for byte (no second rounding).
  std::shared_ptr<const io::GgufFile> src = m.gguf;
  if (m.source == SourceKind::Gguf && !src)
    src = std::make_shared<const io::GgufFile>(io::load_gguf(m.path));
  LLMKIT_CHECK(src != nullptr || m.gpt != nullptr, "gguf export: ", m.path,
               " was loaded without its weights");

  Metadata md;
  put(md, "general.architecture", GgufValue::string(c.llama_layout() ? "llama" : "gpt2"));
  put(md, "general.name", GgufValue::string(model_name(m, src.get())));
  put_u32(md, "general.file_type", gguf_file_type_number(ftype));
  put_u32(md, "general.quantization_version", 2);  // ggml's GGML_QNT_VERSION
  put_config(md, c);
  put_tokenizer(md, m, src.get(), c.vocab_size);

  const std::vector<Spec> specs = tensor_specs(c);
  std::map<std::string, Tensor> state;
  if (src == nullptr) {
    nn::check_plain_linears(*m.gpt, "gguf export");
    state = m.gpt->state_dict();
  }
  std::vector<std::string> bytes(specs.size());
  std::vector<io::GgufTensorData> tensors;
  int64_t last_layer = -1;
  for (size_t i = 0; i < specs.size(); ++i) {
    const Spec& sp = specs[i];
    if (options.verbose && sp.layer != last_layer && sp.layer >= 0) {
      last_layer = sp.layer;
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      std::fprintf(stderr, "quantize: layer %lld/%lld (%s) %.1f s\n",
                   static_cast<long long>(sp.layer + 1), static_cast<long long>(c.n_layer),
                   file_type_entry(ftype).name, s);
    }
    Item it{sp.gguf, Tensor()};
    std::vector<int64_t> ne;
    if (src != nullptr) {
      const io::GgufTensor& g = src->tensor(sp.gguf);
      ne = g.ne;
      const GgmlType t = gguf_tensor_type(ftype, sp.role, ne.at(0));
      if (g.type == t) {  // kept as stored: the mapped bytes go straight to the writer
        tensors.push_back(
            {sp.gguf, ne, t, std::string_view(reinterpret_cast<const char*>(g.data), g.nbytes)});
        continue;
      }
      it.value = src->to_f32(g);
    } else {
      const auto found = state.find(sp.ours);
      LLMKIT_CHECK(found != state.end(), "gguf export: the model has no tensor '", sp.ours, "'");
      it.value = found->second.to(DType::F32).contiguous();
      if (sp.permute_heads > 0) it.value = permute_rope_rows(it.value, sp.permute_heads);
      ne.assign(it.value.shape().rbegin(), it.value.shape().rend());
    }
    const GgmlType t = gguf_tensor_type(ftype, sp.role, ne.at(0));
    LLMKIT_CHECK(kernels::ggml_can_quantize(t), "gguf export: ", sp.gguf, " needs ",
                 kernels::ggml_type_name(t), ", which this build cannot write yet");
    bytes[i] = encode(it, t);
    tensors.push_back({sp.gguf, std::move(ne), t, bytes[i]});
  }
  io::save_gguf(path, md, tensors);
}

}  // namespace llmkit::models
