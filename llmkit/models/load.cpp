// models::load: the one loader for llmkit run dirs, Hugging Face dirs and .gguf files (load.h).
#include "llmkit/models/load.h"

#include <chrono>
#include <filesystem>
#include <map>
#include <set>

#include "llmkit/io/atomic_file.h"
#include "llmkit/io/gguf.h"
#include "llmkit/models/config_file.h"
#include "llmkit/models/hf_bert.h"
#include "llmkit/models/hf_gpt2.h"
#include "llmkit/models/hf_llama.h"
#include "llmkit/models/peft.h"
#include "llmkit/nn/lora.h"
#include "llmkit/tokenizer/gguf_vocab.h"
#include "llmkit/tokenizer/read_file.h"

namespace llmkit::models {

namespace fs = std::filesystem;
using nlohmann::json;

const char* source_kind_name(SourceKind k) {
  switch (k) {
    case SourceKind::LlmkitDir:
      return "llmkit";
    case SourceKind::HfDir:
      return "hf";
    case SourceKind::Gguf:
      return "gguf";
  }
  return "?";
}

namespace {

json read_json(const fs::path& p) {
  LLMKIT_CHECK(fs::exists(p), "model: missing file '", p.string(), "'");
  const std::string text = tokenizer::read_file(p.string());
  try {
    return json::parse(text);
  } catch (const json::exception& e) {
    fail(p.string(), ": not valid JSON (", e.what(), ")");
  }
}

// "<s>" or {"content": "<s>", ...} (tokenizer_config.json's AddedToken form).
std::string token_text(const json& j) {
  if (j.is_string()) return j.get<std::string>();
  if (j.is_object() && j.contains("content") && j["content"].is_string())
    return j["content"].get<std::string>();
  return "";
}

void add_eos(LoadedModel& m, int64_t id) {
  if (id < 0) return;
  for (int32_t e : m.eos_ids)
    if (e == id) return;
  m.eos_ids.push_back(static_cast<int32_t>(id));
}

void read_eos_field(LoadedModel& m, const json& j, const std::string& file) {
  auto it = j.find("eos_token_id");
  if (it == j.end() || it->is_null()) return;
  if (it->is_number_integer()) {
    add_eos(m, it->get<int64_t>());
  } else if (it->is_array()) {
    for (const auto& e : *it) {
      LLMKIT_CHECK(e.is_number_integer(), file, ": eos_token_id holds a non-integer ", e.dump());
      add_eos(m, e.get<int64_t>());
    }
  } else {
    fail(file, ": eos_token_id must be an integer or a list, got ", it->dump());
  }
}

void adopt_gpt(LoadedModel& m, std::unique_ptr<GPT> g) {
  m.gpt = g.get();
  m.gpt_config = g->config();
  m.module = std::move(g);
}

// Puts the body m.module (a Bert or a GPT) under a task head; m.bert / m.gpt stay valid.
Classifier& wrap_classifier(LoadedModel& m, const HeadConfig& head, const std::string& where) {
  std::unique_ptr<Classifier> c;
  try {
    if (m.bert != nullptr) {
      std::shared_ptr<Bert> b(static_cast<Bert*>(m.module.release()));
      c = std::make_unique<Classifier>(b, head, 0);
    } else if (m.gpt != nullptr) {
      std::shared_ptr<GPT> g(static_cast<GPT*>(m.module.release()));
      c = std::make_unique<Classifier>(g, head, 0);
    } else {
      fail("a ", m.arch, " model cannot take a classification head (bert, gpt, llama)");
    }
  } catch (const Error& e) {
    fail(where, ": ", e.what());
  }
  m.classifier = c.get();
  m.module = std::move(c);
  return *m.classifier;
}

void load_tokenizer_json(LoadedModel& m, const fs::path& file) {
  m.tokenizer_json = tokenizer::read_file(file.string());
  try {
    m.tokenizer = tokenizer::Tokenizer::from_json(m.tokenizer_json, file.string());
  } catch (const Error& e) {
    fail(file.string(), ": ", e.what());
  }
}

void load_llmkit_dir(LoadedModel& m, const fs::path& d, const LoadOptions& opt) {
  const json full_cfg = read_config_json((d / "config.json").string());
  const bool head = has_head_fields(full_cfg);
  const json cfg = head ? strip_head_fields(full_cfg) : full_cfg;
  m.arch = cfg.value("arch", "gpt");
  const std::string cfg_path = (d / "config.json").string();
  const fs::path wpath = d / "model.safetensors";
  LLMKIT_CHECK(fs::exists(wpath), "model: '", d.string(), "' has no model.safetensors");
  io::SafetensorsFile f = io::load_safetensors(wpath.string());
  std::map<std::string, Tensor> state(f.tensors.begin(), f.tensors.end());
  auto wrap = [&](auto fn) {
    try {
      return fn();
    } catch (const Error& e) {
      fail(cfg_path, ": ", e.what());
    }
  };
  if (m.arch == "gpt" || m.arch == "llama") {
    const GPTConfig c = wrap([&] { return GPTConfig::from_json(cfg); });
    auto g = std::make_unique<GPT>(c, 0, DType::F32, /*init=*/false);
    state = upgrade_gpt_state(c, std::move(state));
    if (c.bos_token_id >= 0) m.bos_id = static_cast<int32_t>(c.bos_token_id);
    for (int64_t e : c.eos_token_ids) add_eos(m, e);
    adopt_gpt(m, std::move(g));
  } else if (m.arch == "bert") {
    auto b = std::make_unique<Bert>(wrap([&] { return BertConfig::from_json(cfg); }));
    m.bert = b.get();
    m.module = std::move(b);
  } else if (m.arch == "t5" || m.arch == "bart") {
    auto t = std::make_unique<T5>(wrap([&] { return T5Config::from_json(cfg); }));
    m.t5 = t.get();
    m.module = std::move(t);
  } else if (m.arch == "rnn") {
    auto r = std::make_unique<RNNLM>(wrap([&] { return RNNLMConfig::from_json(cfg); }));
    m.rnn = r.get();
    m.module = std::move(r);
  } else {
    fail(cfg_path, ": unknown arch '", m.arch, "' (gpt, llama, bert, t5, bart, rnn)");
  }
  if (head)
    wrap_classifier(m, wrap([&] { return HeadConfig::from_json(full_cfg, m.arch); }), cfg_path);
  try {
    m.module->load_state_dict(state);
  } catch (const Error& e) {
    fail(wpath.string(), ": ", e.what());
  }
  if (opt.tokenizer && fs::exists(d / "tokenizer.json")) {
    load_tokenizer_json(m, d / "tokenizer.json");
    if (m.eos_ids.empty())
      if (auto eot = m.tokenizer->find_token("<|endoftext|>")) add_eos(m, *eot);
  }
  if (fs::exists(d / "tokenizer_config.json")) {
    m.tokenizer_config = read_json(d / "tokenizer_config.json");
  }
}

void read_hf_tokenizer(LoadedModel& m, const fs::path& d, const LoadOptions& opt) {
  if (fs::exists(d / "tokenizer_config.json")) {
    const json tc = read_json(d / "tokenizer_config.json");
    m.tokenizer_config = tc;
    if (tc.contains("chat_template")) {
      const json& ct = tc["chat_template"];
      if (ct.is_string()) {
        m.chat_template = ct.get<std::string>();
      } else if (ct.is_array()) {  // [{"name": "default", "template": ...}, ...]
        for (const auto& e : ct)
          if (e.is_object() && e.value("name", "") == "default")
            m.chat_template = e.value("template", "");
      }
    }
    if (tc.contains("bos_token")) m.bos_token = token_text(tc["bos_token"]);
    if (tc.contains("eos_token")) m.eos_token = token_text(tc["eos_token"]);
    if (tc.contains("add_bos_token") && tc["add_bos_token"].is_boolean())
      m.add_bos = tc["add_bos_token"].get<bool>();
  }
  if (fs::exists(d / "generation_config.json"))
    read_eos_field(m, read_json(d / "generation_config.json"),
                   (d / "generation_config.json").string());
  if (opt.tokenizer) {
    LLMKIT_CHECK(fs::exists(d / "tokenizer.json"), "model: '", d.string(),
                 "' has no tokenizer.json");
    load_tokenizer_json(m, d / "tokenizer.json");
    if (!m.eos_token.empty())
      if (auto id = m.tokenizer->find_token(m.eos_token)) add_eos(m, *id);
    if (!m.bos_token.empty() && m.bos_id < 0)
      if (auto id = m.tokenizer->find_token(m.bos_token)) m.bos_id = *id;
  }
}

// "sequence" / "token" when config.json's architectures names a Hugging Face classification
// class (BertForSequenceClassification, LlamaForTokenClassification, ...); "" otherwise.
std::string hf_head_task(const json& cfg) {
  if (!cfg.contains("architectures") || !cfg["architectures"].is_array()) return "";
  for (const auto& a : cfg["architectures"]) {
    const std::string s = a.is_string() ? a.get<std::string>() : "";
    if (s.find("ForSequenceClassification") != std::string::npos) return "sequence";
    if (s.find("ForTokenClassification") != std::string::npos) return "token";
  }
  return "";
}

// The head's config from a Hugging Face classifier's config.json: id2label, or num_labels
// (default 2) names LABEL_i as transformers makes them when the file has none.
HeadConfig hf_head_config(json cfg, const std::string& task, const std::string& arch) {
  if (!cfg.contains("id2label")) {
    const int64_t n = cfg.value("num_labels", int64_t{2});
    json id2label = json::object();
    for (int64_t i = 0; i < n; ++i) id2label[std::to_string(i)] = "LABEL_" + std::to_string(i);
    cfg["id2label"] = id2label;
  }
  cfg.erase("llmkit_head");
  HeadConfig h = HeadConfig::from_json(cfg, arch);
  h.task = task;
  h.validate(arch);
  return h;
}

void load_hf_dir(LoadedModel& m, const fs::path& d, const json& cfg, const LoadOptions& opt) {
  const std::string type =
      cfg["model_type"].is_string() ? cfg["model_type"].get<std::string>() : "";
  const std::string cfg_path = (d / "config.json").string();
  // A classifier's file holds the body and the head ("classifier.*" / "score.*").
  const std::string head_task = hf_head_task(cfg);
  io::NamedTensors body_w, head_w;
  auto weights = [&]() -> const io::NamedTensors& {
    if (body_w.empty())
      for (auto& nt : read_hf_weights(d.string()))
        (head_task.empty() ||
                 (nt.first.rfind("classifier.", 0) != 0 && nt.first.rfind("score.", 0) != 0)
             ? body_w
             : head_w)
            .push_back(std::move(nt));
    return body_w;
  };
  if (is_llama_model_type(type)) {
    m.arch = "llama";
    GPTConfig c;
    try {
      c = llama_config_from_hf(cfg);
    } catch (const Error& e) {
      fail(cfg_path, ": ", e.what());
    }
    if (!head_task.empty()) c.tie_embeddings = true;  // *ForSequenceClassification: no lm_head
    auto g = std::make_unique<GPT>(c, 0, DType::F32, /*init=*/false);
    std::vector<std::string> ignore;
    if (c.tie_embeddings) ignore.push_back("lm_head.weight");
    load_named_weights(*g, weights(), d.string(), ignore);
    if (c.bos_token_id >= 0) m.bos_id = static_cast<int32_t>(c.bos_token_id);
    for (int64_t e : c.eos_token_ids) add_eos(m, e);
    adopt_gpt(m, std::move(g));
  } else if (type == "gpt2") {
    m.arch = "gpt";
    GPTConfig c;
    try {
      c = gpt2_config_from_hf(cfg);
    } catch (const Error& e) {
      fail(cfg_path, ": ", e.what());
    }
    auto g = std::make_unique<GPT>(c, 0, DType::F32, /*init=*/false);
    try {
      gpt2_load_hf_weights(*g, weights());
    } catch (const Error& e) {
      fail(d.string(), ": ", e.what());
    }
    adopt_gpt(m, std::move(g));
  } else if (type == "bert") {
    m.arch = "bert";
    BertConfig c;
    try {
      c = bert_config_from_hf(cfg);
    } catch (const Error& e) {
      fail(cfg_path, ": ", e.what());
    }
    auto b = std::make_unique<Bert>(c, 0, DType::F32, /*initialise=*/false);
    try {
      bert_load_hf_weights(*b, weights());
    } catch (const Error& e) {
      fail(d.string(), ": ", e.what());
    }
    m.bert = b.get();
    m.module = std::move(b);
  } else {
    fail(cfg_path, ": unknown model_type '", type,
         "' (supported: llama, smollm, mistral, qwen2, gpt2, bert)");
  }
  if (m.gpt != nullptr) read_eos_field(m, cfg, cfg_path);
  if (!head_task.empty()) {
    HeadConfig h;
    try {
      h = hf_head_config(cfg, head_task, m.arch);
    } catch (const Error& e) {
      fail(cfg_path, ": ", e.what());
    }
    Classifier& c = wrap_classifier(m, h, cfg_path);
    io::NamedTensors head;  // "classifier.weight" -> "weight"
    for (auto& [n, t] : head_w) head.emplace_back(n.substr(n.find('.') + 1), t);
    load_named_weights(*c.head, head, d.string() + " (" + c.head_name() + ")");
  }
  read_hf_tokenizer(m, d, opt);
}

// A language-model adapter (llmkit sft / dpo / ppo with LoRA, or PEFT's CAUSAL_LM): the base
// decoder with the adapter merged and removed (a plain model again, for every reader including
// infer::Engine), and the adapter directory's chat template and special tokens when it has them
// (an SFT run may give a base model its first template).
void load_causal_lm_adapter(LoadedModel& m, const fs::path& d, const AdapterInfo& info,
                            LoadOptions opt) {
  std::string base = info.base_model_path;
  const std::string cfg_file = (d / "adapter_config.json").string();
  LLMKIT_CHECK(!base.empty(), cfg_file, ": no base_model_name_or_path");
  if (!fs::exists(base) && fs::exists(d / base)) base = (d / base).string();
  LLMKIT_CHECK(fs::exists(base), cfg_file, ": the base model '", base, "' does not exist");
  opt.gguf_module = true;  // the adapter needs the f32 module to merge into
  m = load(base, opt);
  LLMKIT_CHECK(m.gpt != nullptr && m.classifier == nullptr && m.module != nullptr,
               "model: the base of the CAUSAL_LM adapter '", d.string(), "' ('", base,
               "') is not a language model (gpt, llama)");
  load_adapter(*m.module, m.arch, d.string());
  nn::merge_and_unload(*m.module);
  // The weights are the merged module's now, not the base file's: readers that prefer a mapped
  // .gguf (infer::Engine runs on its stored blocks) must not see the base without the adapter.
  m.gguf.reset();
  if (m.source == SourceKind::Gguf) m.source = SourceKind::LlmkitDir;  // not a file to re-read
  const fs::path tc_file = d / "tokenizer_config.json";
  if (fs::exists(tc_file)) {
    const json tc = read_json(tc_file);
    if (tc.contains("chat_template") && tc["chat_template"].is_string())
      m.chat_template = tc["chat_template"].get<std::string>();
    if (tc.contains("eos_token") && tc["eos_token"].is_string())
      m.eos_token = tc["eos_token"].get<std::string>();
  }
  m.path = d.string();
}

void load_adapter_dir(LoadedModel& m, const fs::path& d, const LoadOptions& opt) {
  const AdapterInfo info = read_adapter_config(d.string());
  if (info.task_type == "CAUSAL_LM") {
    load_causal_lm_adapter(m, d, info, opt);
    return;
  }
  const std::string cfg_path = (d / "config.json").string();
  LLMKIT_CHECK(fs::exists(d / "config.json"), "model: adapter directory '", d.string(),
               "' has no config.json with the task head (written by llmkit finetune)");
  const json cfg = read_json(d / "config.json");
  std::string base = info.base_model_path;
  LLMKIT_CHECK(!base.empty(), (d / "adapter_config.json").string(), ": no base_model_name_or_path");
  if (!fs::exists(base) && fs::exists(d / base)) base = (d / base).string();
  LLMKIT_CHECK(fs::exists(base), (d / "adapter_config.json").string(), ": the base model '", base,
               "' does not exist");
  m = load(base, opt);
  LLMKIT_CHECK(m.classifier == nullptr, "model: the base of adapter '", d.string(), "' ('", base,
               "') already has a task head");
  HeadConfig h;
  try {
    h = HeadConfig::from_json(cfg, m.arch);
  } catch (const Error& e) {
    fail(cfg_path, ": ", e.what());
  }
  Classifier& c = wrap_classifier(m, h, cfg_path);
  const json ft = cfg.value("llmkit_finetune", json::object());
  const bool qlora = ft.is_object() && ft.value("method", "") == "qlora";
  if (qlora) quantize_body(c, ft.value("qlora_type", "q4_0"));
  load_adapter(c, m.arch, d.string());
  if (!qlora) nn::merge_lora(c);  // inference at the base model's speed
  m.path = d.string();
}

// tokenizer.ggml.* -> GgufVocab (the tokenizer's from_gguf_vocab builds the pipeline).
tokenizer::GgufVocab gguf_vocab(const io::GgufFile& f) {
  tokenizer::GgufVocab v;
  auto str = [&](const char* k, std::string def) {
    const io::GgufValue* x = f.find(k);
    return x ? x->as_string() : def;
  };
  auto integer = [&](const char* k) {
    const io::GgufValue* x = f.find(k);
    return x ? static_cast<int32_t>(x->as_int()) : -1;
  };
  auto flag = [&](const char* k, bool def) {
    const io::GgufValue* x = f.find(k);
    return x ? x->as_bool() : def;
  };
  v.model = f.get("tokenizer.ggml.model").as_string();
  v.pre = str("tokenizer.ggml.pre", "default");
  v.tokens = f.get("tokenizer.ggml.tokens").as_strings();
  if (const io::GgufValue* x = f.find("tokenizer.ggml.scores")) v.scores = x->as_floats();
  if (const io::GgufValue* x = f.find("tokenizer.ggml.token_type"))
    for (int64_t t : x->as_ints()) v.token_types.push_back(static_cast<int32_t>(t));
  if (const io::GgufValue* x = f.find("tokenizer.ggml.merges")) v.merges = x->as_strings();
  v.bos = integer("tokenizer.ggml.bos_token_id");
  v.eos = integer("tokenizer.ggml.eos_token_id");
  v.unk = integer("tokenizer.ggml.unknown_token_id");
  v.pad = integer("tokenizer.ggml.padding_token_id");
  v.add_bos = flag("tokenizer.ggml.add_bos_token", v.model == "llama");
  v.add_eos = flag("tokenizer.ggml.add_eos_token", false);
  v.add_space_prefix = flag("tokenizer.ggml.add_space_prefix", v.model == "llama");
  return v;
}

// The decoder a .gguf holds: general.architecture llama (hf_llama.h) or gpt2 (hf_gpt2.h).
GPTConfig decoder_config_from_gguf(const io::GgufFile& f) {
  const std::string arch = f.get("general.architecture").as_string();
  if (arch == "gpt2") return gpt2_config_from_gguf(f);
  LLMKIT_CHECK(arch == "llama", f.path, ": general.architecture '", arch,
               "' is not supported (llama, gpt2)");
  return llama_config_from_gguf(f);
}

io::NamedTensors decoder_weights_from_gguf(const io::GgufFile& f, const GPTConfig& c) {
  return c.llama_layout() ? llama_weights_from_gguf(f, c) : gpt2_weights_from_gguf(f, c);
}

void load_gguf_file(LoadedModel& m, const std::string& path, const LoadOptions& opt) {
  auto file = std::make_shared<io::GgufFile>(io::load_gguf(path));
  const io::GgufFile& f = *file;
  m.gguf = file;
  const GPTConfig c = decoder_config_from_gguf(f);
  m.arch = c.arch;
  m.gpt_config = c;
  if (opt.gguf_module) {
    auto g = std::make_unique<GPT>(c, 0, DType::F32, /*init=*/false);
    load_named_weights(*g, decoder_weights_from_gguf(f, c), path);
    adopt_gpt(m, std::move(g));
  }
  if (c.bos_token_id >= 0) m.bos_id = static_cast<int32_t>(c.bos_token_id);
  for (int64_t e : c.eos_token_ids) add_eos(m, e);
  if (const io::GgufValue* t = f.find("tokenizer.chat_template")) m.chat_template = t->as_string();
  if (f.find("tokenizer.ggml.model") == nullptr) return;
  const tokenizer::GgufVocab v = gguf_vocab(f);
  auto text = [&](int32_t id) {
    return id >= 0 && id < static_cast<int32_t>(v.tokens.size()) ? v.tokens[id] : std::string();
  };
  m.bos_token = text(v.bos);
  m.eos_token = text(v.eos);
  m.add_bos = v.add_bos;
  m.tokenizer_config = {{"add_bos_token", v.add_bos}};
  if (opt.tokenizer) {
    try {
      m.tokenizer = tokenizer::Tokenizer::from_gguf_vocab(v);
    } catch (const Error& e) {
      fail(path, ": tokenizer: ", e.what());
    }
  }
}

}  // namespace

io::NamedTensors read_hf_weights(const std::string& dir) {
  const fs::path d(dir);
  if (fs::exists(d / "model.safetensors"))
    return io::load_safetensors((d / "model.safetensors").string(), /*skip_unsupported=*/true)
        .tensors;
  const fs::path index = d / "model.safetensors.index.json";
  LLMKIT_CHECK(fs::exists(index), "model: '", dir,
               "' has neither model.safetensors nor model.safetensors.index.json");
  const json j = read_json(index);
  LLMKIT_CHECK(j.contains("weight_map") && j["weight_map"].is_object(), index.string(),
               ": no weight_map object");
  std::set<std::string> shards;
  for (const auto& [name, file] : j["weight_map"].items()) {
    LLMKIT_CHECK(file.is_string(), index.string(), ": weight_map['", name, "'] is not a file name");
    const std::string f = file.get<std::string>();
    LLMKIT_CHECK(f.find('/') == std::string::npos && f != ".." && !f.empty(), index.string(),
                 ": shard name '", f, "' is not a plain file name");
    shards.insert(f);
  }
  io::NamedTensors out;
  for (const std::string& s : shards) {
    LLMKIT_CHECK(fs::exists(d / s), index.string(), ": shard '", s, "' is missing");
    io::SafetensorsFile f = io::load_safetensors((d / s).string(), /*skip_unsupported=*/true);
    for (auto& nt : f.tensors) {
      const auto it = j["weight_map"].find(nt.first);
      LLMKIT_CHECK(it != j["weight_map"].end() && it->get<std::string>() == s, (d / s).string(),
                   ": tensor '", nt.first, "' is not mapped to this shard by the index");
      out.push_back(std::move(nt));
    }
  }
  return out;
}

void load_named_weights(nn::Module& model, const io::NamedTensors& weights,
                        const std::string& source, const std::vector<std::string>& ignore) {
  std::map<std::string, Tensor> given;
  auto ignored = [&](const std::string& n) {
    for (const auto& i : ignore)
      if (n == i) return true;
    // Older transformers checkpoints carry RoPE's inverse frequencies as a buffer.
    return n.size() > 20 && n.compare(n.size() - 20, 20, "rotary_emb.inv_freq") == 0;
  };
  for (const auto& [n, t] : weights) {
    LLMKIT_CHECK(!given.count(n), source, ": tensor '", n, "' appears twice");
    given[n] = t;
  }
  const auto mine = model.state_dict();
  for (const auto& [n, t] : mine) {
    auto it = given.find(n);
    LLMKIT_CHECK(it != given.end(), source, ": missing tensor '", n, "' (expected shape ",
                 shape_str(t.shape()), ")");
    LLMKIT_CHECK(it->second.shape() == t.shape(), source, ": tensor '", n, "' has shape ",
                 shape_str(it->second.shape()), ", expected ", shape_str(t.shape()));
    LLMKIT_CHECK(dtype_is_float(it->second.dtype()), source, ": tensor '", n, "' has dtype ",
                 dtype_name(it->second.dtype()), ", expected a float type");
    NoGradGuard ng;
    t.copy_(it->second);
  }
  for (const auto& [n, t] : given)
    LLMKIT_CHECK(mine.count(n) || ignored(n), source, ": unexpected tensor '", n, "' (",
                 shape_str(t.shape()), ")");
}

LoadedModel load(const std::string& path, const LoadOptions& opt) {
  const auto t0 = std::chrono::steady_clock::now();
  LoadedModel m;
  m.path = path;
  const fs::path p(path);
  LLMKIT_CHECK(fs::exists(p), "model: '", path, "' does not exist");
  if (fs::is_regular_file(p) && p.extension() == ".gguf") {
    m.source = SourceKind::Gguf;
    load_gguf_file(m, path, opt);
  } else if (fs::is_directory(p) && is_adapter_dir(path)) {
    load_adapter_dir(m, p, opt);
  } else if (fs::is_directory(p)) {
    LLMKIT_CHECK(fs::exists(p / "config.json"), "model: '", path,
                 "' is not a model directory (no config.json)");
    const json cfg = read_json(p / "config.json");
    if (cfg.is_object() && cfg.contains("model_type")) {
      m.source = SourceKind::HfDir;
      load_hf_dir(m, p, cfg, opt);
    } else {
      m.source = SourceKind::LlmkitDir;
      load_llmkit_dir(m, p, opt);
    }
  } else {
    fail("model: '", path, "' is neither a model directory nor a .gguf file");
  }
  if (m.module) m.module->eval();
  m.load_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return m;
}

void save_model_dir(const LoadedModel& m, const std::string& dir, const std::string& format) {
  if (m.module) nn::check_plain_linears(*m.module, "save_model_dir");
  LLMKIT_CHECK(format == "hf" || format == "llmkit", "convert: format '", format,
               "' is not one of hf, llmkit");
  LLMKIT_CHECK(m.gpt != nullptr || m.bert != nullptr, "convert: ", m.arch,
               " models cannot be converted yet (llama, gpt, bert)");
  fs::create_directories(dir);
  const fs::path d(dir);
  json cfg;
  io::NamedTensors weights;
  int64_t block_size = 0;
  if (m.bert != nullptr) {
    cfg = format == "hf" ? bert_config_to_hf(m.bert->config()) : m.bert->config().to_json();
    weights = format == "hf" ? bert_hf_weights(*m.bert) : m.bert->named_parameters();
    block_size = m.bert->config().block_size;
  } else if (m.arch == "llama") {
    const GPTConfig& c = m.gpt->config();
    cfg = format == "hf" ? llama_config_to_hf(c) : c.to_json();
    weights = m.gpt->named_parameters();
    block_size = c.block_size;
  } else {
    const GPTConfig& c = m.gpt->config();
    cfg = format == "hf" ? gpt2_config_to_hf(c) : c.to_json();
    weights = format == "hf" ? gpt2_hf_weights(*m.gpt) : m.gpt->named_parameters();
    block_size = c.block_size;
  }
  io::write_file_atomic((d / "config.json").string(), cfg.dump(2) + "\n");
  io::save_safetensors((d / "model.safetensors").string(), weights, {{"format", "pt"}});
  if (!m.tokenizer_json.empty())
    io::write_file_atomic((d / "tokenizer.json").string(), m.tokenizer_json);
  else if (m.tokenizer)
    io::write_file_atomic((d / "tokenizer.json").string(), m.tokenizer->to_json());
  json tc = m.tokenizer_config.is_object() ? m.tokenizer_config : json::object();
  if (!tc.contains("tokenizer_class")) tc["tokenizer_class"] = "PreTrainedTokenizerFast";
  if (!m.chat_template.empty()) tc["chat_template"] = m.chat_template;
  if (!m.bos_token.empty()) tc["bos_token"] = m.bos_token;
  if (!m.eos_token.empty()) tc["eos_token"] = m.eos_token;
  if (!tc.contains("add_bos_token")) tc["add_bos_token"] = m.add_bos;
  if (!tc.contains("model_max_length")) tc["model_max_length"] = block_size;
  io::write_file_atomic((d / "tokenizer_config.json").string(), tc.dump(2) + "\n");
  if (format == "hf" && !m.eos_ids.empty()) {
    json gc{{"_from_model_config", true}};
    if (m.bos_id >= 0) gc["bos_token_id"] = m.bos_id;
    gc["eos_token_id"] = m.eos_ids.size() == 1 ? json(m.eos_ids[0]) : json(m.eos_ids);
    io::write_file_atomic((d / "generation_config.json").string(), gc.dump(2) + "\n");
  }
}

}  // namespace llmkit::models
