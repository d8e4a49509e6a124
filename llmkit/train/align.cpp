// The driver of sft, reward_train and dpo (align.h): load the model, read and tokenise the data,
// choose what trains (full / lora), run train_loop with checkpoints and exact resume, and write
// the usable result. The Tasks are task_sft.cpp, task_dpo.cpp and task_reward.cpp.
#include "llmkit/train/align.h"

#include <cctype>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "llmkit/infer/classify.h"
#include "llmkit/io/atomic_file.h"
#include "llmkit/io/json_file.h"
#include "llmkit/models/load.h"
#include "llmkit/models/peft.h"
#include "llmkit/train/align_tasks.h"
#include "llmkit/train/checkpoint.h"
#include "llmkit/train/finetune.h"

namespace llmkit::train {

namespace fs = std::filesystem;
using nlohmann::json;

TrainConfig align_defaults(const std::string& command, const std::string& method) {
  TrainConfig c;
  c.objective = command;
  const bool lora = method == "lora";
  // SFT: TRL's SFTConfig uses 2e-5 for full fine-tuning; LoRA adapters start at B = 0 and want
  // ~10x more. DPO: TRL's DPOConfig 1e-6 (full); the DPO paper 1e-6 with RMSprop; LoRA 5e-6.
  // Reward: 1e-5 full (TRL's RewardConfig examples); LoRA 1e-3, as finetune's classification
  // LoRA: at 1e-4, 60 steps on SmolLM2 left held-out pair accuracy at chance (0.51).
  if (command == "sft")
    c.lr = lora ? 2e-4 : 2e-5;
  else if (command == "dpo")
    c.lr = lora ? 5e-6 : 1e-6;
  else
    c.lr = lora ? 1e-3 : 1e-5;
  c.min_lr = 0;
  c.weight_decay = 0;
  c.schedule = "linear";
  c.batch_size = 8;
  c.eval_interval = 50;
  c.steps = 200;
  c.warmup = -1;  // 10% of the schedule, resolved in resolve_run
  return c;
}

namespace {

constexpr const char* kRunFile = "align_run.json";
constexpr const char* kRefFile = "reference_logps.json";

struct Extras {
  bool pack = true;
  double beta = 0.1;
  int64_t max_prompt = 128;
};

json run_to_json(const std::string& command, const AlignRun& r, const Extras& x) {
  return json{{"command", command},
              {"model_path", r.model_path},
              {"train_path", r.train_path},
              {"val_path", r.val_path},
              {"method", r.method},
              {"lora",
               {{"r", r.lora.r},
                {"alpha", r.lora.alpha},
                {"dropout", r.lora.dropout},
                {"target_modules", r.lora.target_modules}}},
              {"max_len", r.max_len},
              {"limit", r.limit},
              {"chat", r.chat},
              {"pack", x.pack},
              {"beta", x.beta},
              {"max_prompt", x.max_prompt},
              {"train", r.train.to_json()}};
}

void run_from_json(const json& j, const std::string& path, const std::string& command, AlignRun& r,
                   Extras& x) {
  try {
    LLMKIT_CHECK(j.at("command").get<std::string>() == command, path, ": the run in '", r.out_dir,
                 "' is a ", j.at("command").get<std::string>(), " run, not ", command);
    j.at("model_path").get_to(r.model_path);
    j.at("train_path").get_to(r.train_path);
    j.at("val_path").get_to(r.val_path);
    j.at("method").get_to(r.method);
    const json& l = j.at("lora");
    l.at("r").get_to(r.lora.r);
    l.at("alpha").get_to(r.lora.alpha);
    l.at("dropout").get_to(r.lora.dropout);
    l.at("target_modules").get_to(r.lora.target_modules);
    j.at("max_len").get_to(r.max_len);
    j.at("limit").get_to(r.limit);
    j.at("chat").get_to(r.chat);
    j.at("pack").get_to(x.pack);
    j.at("beta").get_to(x.beta);
    j.at("max_prompt").get_to(x.max_prompt);
    r.train = TrainConfig::from_json(j.at("train"));
  } catch (const json::exception& e) {
    fail(path, ": ", e.what());
  }
}

void check_run(const std::string& command, const AlignRun& r) {
  LLMKIT_CHECK(!r.out_dir.empty(), command, ": --out DIR is required");
  LLMKIT_CHECK(!r.model_path.empty(), command, ": --model is required");
  LLMKIT_CHECK(!r.train_path.empty(), command, ": --train FILE is required");
  LLMKIT_CHECK(r.method == "full" || r.method == "lora", command, ": method '", r.method,
               "' is not full or lora");
  LLMKIT_CHECK(r.max_len >= 4, command, ": max_len must be at least 4, got ", r.max_len);
  LLMKIT_CHECK(r.limit >= 0, command, ": limit must not be negative");
}

// Resolves the run: a new one as given (its settings written to the run directory), or a resumed
// one from there; resume_dir is the committed checkpoint to restore.
AlignRun resolve_run(const std::string& command, const AlignRun& given, Extras& x,
                     std::string& resume_dir) {
  const std::string committed = committed_checkpoint(given.out_dir);
  const fs::path run_file = fs::path(given.out_dir) / kRunFile;
  if (given.resume && !committed.empty() && fs::exists(run_file)) {
    AlignRun r = given;
    run_from_json(io::read_json_file(run_file.string()), run_file.string(), command, r, x);
    const json state = io::read_json_file((fs::path(committed) / "trainer_state.json").string());
    r.train = TrainConfig::from_json(state.at("train"));
    if (given.train.steps > 0) r.train.steps = given.train.steps;
    resume_dir = committed;
    return r;
  }
  LLMKIT_CHECK(committed.empty(), "'", given.out_dir, "' already holds a ", command,
               " run; continue it with --resume or pick another --out");
  if (given.resume && !given.quiet)
    std::fprintf(stderr, "note: nothing to resume in %s; starting\n", given.out_dir.c_str());
  AlignRun r = given;
  r.train.objective = command;
  if (r.train.steps <= 0) r.train.steps = align_defaults(command, r.method).steps;
  if (r.train.schedule_steps <= 0) r.train.schedule_steps = r.train.steps;
  if (r.train.warmup < 0) r.train.warmup = r.train.schedule_steps / 10;
  r.train = TrainConfig::from_json(r.train.to_json());  // validates
  fs::create_directories(r.out_dir);
  io::write_file_atomic(run_file.string(), run_to_json(command, r, x).dump(2) + "\n");
  return r;
}

// A pad id that is not the end-of-turn token (padding is masked, but a pad equal to eos would
// hide the eos from a careless reader): the tokenizer's <pad> / [PAD] if any, else 0.
int32_t pad_id(const models::LoadedModel& m, int32_t eos_id) {
  for (const char* t : {"<|pad|>", "<pad>", "[PAD]", "<|padding|>"})
    if (auto id = m.tokenizer->find_token(t)) return *id;
  return eos_id == 0 ? 1 : 0;
}

// The model of sft and dpo: loaded, its chat format, its decoder (owned here), checked against
// the run's max_len.
struct LoadedDecoder {
  models::LoadedModel loaded;
  data::ChatFormat format;
  std::shared_ptr<models::GPT> gpt;
};
LoadedDecoder load_decoder(const AlignRun& r, const std::string& command) {
  LoadedDecoder d;
  d.loaded = models::load(r.model_path);
  models::LoadedModel& m = d.loaded;
  d.format = chat_format(m, command);
  LLMKIT_CHECK(m.classifier == nullptr, command, ": '", m.path,
               "' is a classifier; give a language model (a decoder)");
  LLMKIT_CHECK(m.gpt != nullptr && m.module != nullptr, command, ": '", m.path, "' holds a ",
               m.arch, " model; ", command, " trains decoders (gpt, llama)");
  d.gpt.reset(static_cast<models::GPT*>(m.module.release()));
  m.gpt = d.gpt.get();
  LLMKIT_CHECK(r.max_len <= d.gpt->config().block_size, command, ": max_len ", r.max_len,
               " is longer than the model's context (", d.gpt->config().block_size, ")");
  return d;
}

// Full: everything trains. LoRA: adapters on PEFT's default targets (or the given ones), the
// rest frozen. Returns the config used (targets resolved).
nn::LoraConfig choose_trainable(nn::Module& model, const std::string& arch, const AlignRun& r,
                                Generator* dropout_gen, const std::vector<std::string>& save) {
  nn::LoraConfig lora = r.lora;
  if (r.method == "full") return lora;
  if (lora.target_modules.empty()) lora.target_modules = nn::default_lora_targets(arch);
  lora.modules_to_save = save;
  nn::apply_lora(model, lora, r.train.seed + 2, lora.dropout > 0 ? dropout_gen : nullptr);
  nn::mark_only_lora_trainable(model, save);
  return lora;
}

// What a run prints first: the model, the data, PEFT's trainable line.
void announce(const std::string& command, const AlignRun& r, const nn::Module& model,
              const std::string& arch, size_t train_n, size_t val_n, const char* unit) {
  if (r.quiet) return;
  std::fprintf(stderr, "%s: %s %s, method %s, %zu train / %zu val %s\n%s\n", command.c_str(),
               arch.c_str(), r.model_path.c_str(), r.method.c_str(), train_n, val_n, unit,
               nn::trainable_parameters_line(model).c_str());
}

void write_report(const AlignRun& r, const Metrics& m) {
  json j = json::object();
  for (const auto& [k, v] : m) j[k] = v;
  io::write_file_atomic((fs::path(r.out_dir) / "report.json").string(), j.dump(2) + "\n");
}

// Runs the loop of `task` (restoring resume_dir first); unless interrupted, the final evaluation
// (the loop's last step evaluated the final weights; a run resumed at its end did not) goes to
// report.json.
AlignResult run_loop(Task& task, nn::Module& model, const AlignRun& r,
                     const std::string& resume_dir, const std::string& tokenizer_json) {
  AlignResult res;
  const nn::ParamCount pc = nn::count_parameters(model);
  res.trainable_params = pc.trainable;
  res.all_params = pc.all;
  const FinetuneLoop loop =
      run_finetune_loop(task, model, r.train, r.out_dir, {r.train_path, r.val_path}, tokenizer_json,
                        resume_dir, r.quiet, r.stop_after);
  res.train = loop.train;
  res.train_seconds = loop.train_seconds;
  res.steps_run = loop.steps_run;
  if (res.train.interrupted) return res;
  res.last_eval = res.train.last_val_metrics.empty() || res.steps_run == 0
                      ? task.evaluate(0)
                      : res.train.last_val_metrics;
  write_report(r, res.last_eval);
  return res;
}

std::string tokenizer_json_of(const models::LoadedModel& m) {
  return !m.tokenizer_json.empty() ? m.tokenizer_json : m.tokenizer->to_json();
}

std::vector<data::PreferenceExample> read_pairs(const std::string& path, int64_t limit,
                                                const data::ChatFormat& f, const AlignRun& r,
                                                int64_t max_prompt) {
  std::vector<data::PreferenceExample> out;
  if (path.empty()) return out;
  for (const auto& p : data::read_preferences(path, limit))
    out.push_back(data::tokenize_preference(p, f, r.chat, r.max_len, max_prompt));
  return out;
}

// A prompt/completion conversation as plain text (sft --plain: continuing text, no template):
// bos, the prompt's tokens (not learned), the completion's tokens and the eos (learned). A space
// joins them when neither side has one.
data::SftExample plain_example(const data::Conversation& c, const data::ChatFormat& f,
                               int64_t max_len, const std::string& where) {
  LLMKIT_CHECK(
      c.messages.size() == 2 && c.messages[0].role == "user" && c.messages[1].role == "assistant",
      where, ": --plain takes prompt/completion pairs (one user and one assistant turn)");
  const std::string& prompt = c.messages[0].content;
  std::string completion = c.messages[1].content;
  if (!prompt.empty() && !std::isspace(static_cast<unsigned char>(prompt.back())) &&
      !completion.empty() && !std::isspace(static_cast<unsigned char>(completion.front())))
    completion = " " + completion;
  data::SftExample e;
  if (f.add_bos && f.bos_id >= 0) {
    e.ids.push_back(f.bos_id);
    e.labels.push_back(-100);
  }
  for (int32_t id : f.tok->encode(prompt)) {
    e.ids.push_back(id);
    e.labels.push_back(-100);
  }
  std::vector<int32_t> answer = f.tok->encode(completion);
  answer.push_back(f.eos_id);
  for (int32_t id : answer) {
    e.ids.push_back(id);
    e.labels.push_back(id);
  }
  if (std::ssize(e.ids) > max_len) {
    e.ids.resize(static_cast<size_t>(max_len));
    e.labels.resize(static_cast<size_t>(max_len));
  }
  return e;
}

std::vector<data::SftExample> read_sft(const std::string& path, int64_t limit,
                                       const data::ChatFormat& f, const AlignRun& r) {
  std::vector<data::SftExample> out;
  if (path.empty()) return out;
  for (const auto& c : data::read_conversations(path, limit))
    out.push_back(r.chat ? data::tokenize_conversation(c, f, r.max_len)
                         : plain_example(c, f, r.max_len, path));
  return out;
}

}  // namespace

data::ChatFormat chat_format(models::LoadedModel& m, const std::string& command) {
  LLMKIT_CHECK(m.tokenizer.has_value(), command, ": '", m.path, "' has no tokenizer");
  data::ChatFormat f;
  f.tok = &*m.tokenizer;
  f.add_bos = m.add_bos || m.tokenizer_config.value("add_bos_token", false);
  f.bos_id = m.bos_id;
  if (m.chat_template.empty()) {
    std::string eos = m.eos_token;
    if (eos.empty() && !m.eos_ids.empty()) eos = m.tokenizer->id_to_token(m.eos_ids[0]);
    if (eos.empty() && m.tokenizer->find_token("<|endoftext|>")) eos = "<|endoftext|>";
    LLMKIT_CHECK(!eos.empty(), command, ": '", m.path,
                 "' has neither a chat template nor an end-of-text token to end turns with");
    f.tpl = data::plain_template(eos);
    m.chat_template = f.tpl.source();
    if (m.eos_token.empty()) m.eos_token = eos;
  } else {
    f.tpl = tokenizer::ChatTemplate(m.chat_template, m.bos_token, m.eos_token);
  }
  const auto eos = m.tokenizer->find_token(f.tpl.eos_token());
  if (eos && m.tokenizer->is_special(*eos))
    f.eos_id = *eos;
  else if (!m.eos_ids.empty())
    f.eos_id = m.eos_ids[0];
  LLMKIT_CHECK(f.eos_id >= 0, command, ": '", m.path, "' has no end-of-turn token id");
  return f;
}

void export_policy(const models::LoadedModel& m, models::GPT& gpt, const std::string& method,
                   const std::string& format, const nn::LoraConfig& lora,
                   const std::string& base_path, const std::string& out_dir) {
  const fs::path dir(out_dir);
  fs::create_directories(dir);
  if (method == "full") {
    models::LoadedModel view;  // save_model_dir reads the module through the typed pointers
    view.arch = m.arch;
    view.gpt = &gpt;
    view.tokenizer_json = tokenizer_json_of(m);
    view.tokenizer_config = m.tokenizer_config;
    view.chat_template = m.chat_template;
    view.bos_token = m.bos_token;
    view.eos_token = m.eos_token;
    view.add_bos = m.add_bos;
    view.bos_id = m.bos_id;
    view.eos_ids = m.eos_ids;
    models::save_model_dir(view, out_dir, format);
    return;
  }
  models::AdapterInfo info;
  info.lora = lora;
  info.task_type = "CAUSAL_LM";
  info.base_model_path = fs::absolute(base_path).string();
  models::save_adapter(gpt, m.arch, info, out_dir);
  io::write_file_atomic((dir / "tokenizer.json").string(), tokenizer_json_of(m));
  json tc = m.tokenizer_config.is_object() ? m.tokenizer_config : json::object();
  if (!tc.contains("tokenizer_class")) tc["tokenizer_class"] = "PreTrainedTokenizerFast";
  if (!m.chat_template.empty()) tc["chat_template"] = m.chat_template;
  if (!m.bos_token.empty()) tc["bos_token"] = m.bos_token;
  if (!m.eos_token.empty()) tc["eos_token"] = m.eos_token;
  io::write_file_atomic((dir / "tokenizer_config.json").string(), tc.dump(2) + "\n");
}

AlignResult sft(const SftRun& given) {
  check_run("sft", given);
  const RunLock lock(given.out_dir);
  std::string resume_dir;
  Extras x{.pack = given.pack};
  const AlignRun r = resolve_run("sft", given, x, resume_dir);
  LoadedDecoder d = load_decoder(r, "sft");
  models::LoadedModel& m = d.loaded;
  const data::ChatFormat& f = d.format;
  const std::shared_ptr<models::GPT>& gpt = d.gpt;
  std::vector<data::SftExample> train = read_sft(r.train_path, r.limit, f, r);
  std::vector<data::SftExample> val = read_sft(r.val_path, 0, f, r);
  const size_t n_train = train.size(), n_val = val.size();
  const nn::LoraConfig lora = choose_trainable(*gpt, m.arch, r, &gpt->dropout_generator(), {});
  SftTask task(*gpt, std::move(train), std::move(val), x.pack, r.max_len, r.train.batch_size,
               pad_id(m, f.eos_id), r.train.seed, r.method == "full", gpt->config().to_json());
  announce("sft", r, *gpt, m.arch, n_train, n_val, "conversations");
  if (!r.quiet && x.pack)
    std::fprintf(stderr, "sft: packed into %lld rows of %lld tokens (%.0f%% real tokens)\n",
                 static_cast<long long>(task.rows().rows),
                 static_cast<long long>(task.rows().row_len),
                 100.0 * static_cast<double>(task.rows().tokens) /
                     static_cast<double>(task.rows().rows * task.rows().row_len));
  AlignResult res = run_loop(task, *gpt, r, resume_dir, tokenizer_json_of(m));
  if (res.train.interrupted) return res;
  export_policy(m, *gpt, r.method, "hf", lora, r.model_path, r.out_dir);
  res.export_dir = r.out_dir;
  return res;
}

AlignResult dpo(const DpoRun& given) {
  check_run("dpo", given);
  LLMKIT_CHECK(given.beta > 0, "dpo: beta must be > 0, got ", given.beta);
  const RunLock lock(given.out_dir);
  std::string resume_dir;
  // A prompt limit that leaves no room for answers (the default 128 under a short --max-len)
  // becomes half of max_len.
  Extras x{.beta = given.beta,
           .max_prompt = given.max_prompt < given.max_len ? given.max_prompt : given.max_len / 2};
  const AlignRun r = resolve_run("dpo", given, x, resume_dir);
  LoadedDecoder d = load_decoder(r, "dpo");
  models::LoadedModel& m = d.loaded;
  const data::ChatFormat& f = d.format;
  const std::shared_ptr<models::GPT>& gpt = d.gpt;
  auto train = read_pairs(r.train_path, r.limit, f, r, x.max_prompt);
  auto val = read_pairs(r.val_path, 0, f, r, x.max_prompt);
  const size_t n_train = train.size(), n_val = val.size();
  DpoTask task(*gpt, std::move(train), std::move(val), x.beta, r.train.batch_size,
               pad_id(m, f.eos_id), r.train.seed, r.method == "full", gpt->config().to_json());
  // The reference is the model as loaded, before any adapter or step: its log-probabilities
  // are computed once and kept beside the run, so no copy of the model stays in memory.
  const fs::path ref_file = fs::path(r.out_dir) / kRefFile;
  if (fs::exists(ref_file)) {
    task.set_reference(
        io::read_json_file(ref_file.string()).at("logps").get<std::vector<std::vector<double>>>());
  } else {
    const json j{{"logps", task.compute_reference(r.quiet)}};
    io::write_file_atomic(ref_file.string(), j.dump() + "\n");
  }
  const nn::LoraConfig lora = choose_trainable(*gpt, m.arch, r, &gpt->dropout_generator(), {});
  announce("dpo", r, *gpt, m.arch, n_train, n_val, "pairs");
  AlignResult res = run_loop(task, *gpt, r, resume_dir, tokenizer_json_of(m));
  if (res.train.interrupted) return res;
  export_policy(m, *gpt, r.method, "hf", lora, r.model_path, r.out_dir);
  res.export_dir = r.out_dir;
  return res;
}

AlignResult reward_train(const RewardRun& given) {
  check_run("reward", given);
  const RunLock lock(given.out_dir);
  std::string resume_dir;
  Extras x;
  const AlignRun r = resolve_run("reward", given, x, resume_dir);
  models::LoadedModel m = models::load(r.model_path);
  LLMKIT_CHECK(m.classifier == nullptr, "reward: '", r.model_path,
               "' already has a task head; give the pretrained body");
  LLMKIT_CHECK(m.tokenizer.has_value(), "reward: '", r.model_path, "' has no tokenizer");
  models::HeadConfig h;
  h.problem_type = "regression";
  h.labels = {"reward"};
  std::shared_ptr<models::Classifier> model;
  data::ChatFormat f;
  int32_t pad = 0;
  if (m.gpt != nullptr) {
    f = chat_format(m, "reward");
    pad = pad_id(m, f.eos_id);
    h.pooling = "last";
    std::shared_ptr<models::GPT> g(static_cast<models::GPT*>(m.module.release()));
    model = std::make_shared<models::Classifier>(g, h, r.train.seed + 1);
  } else if (m.bert != nullptr) {
    h.pooling = "cls";
    h.dropout = 0;  // TRL's reward models turn dropout off: noise in a pairwise margin
    std::shared_ptr<models::Bert> b(static_cast<models::Bert*>(m.module.release()));
    model = std::make_shared<models::Classifier>(b, h, r.train.seed + 1);
  } else {
    fail("reward: '", r.model_path, "' holds a ", m.arch,
         " model, which cannot take a reward head (bert, gpt, llama)");
  }
  m.classifier = model.get();
  // Decoders read prompt + answer as the policy writes them; encoders read "[CLS] prompt answer
  // [SEP]" (the text joined), the pair's shared prompt in both rows.
  auto pairs = [&](const std::string& path, int64_t limit) {
    std::vector<data::PreferenceExample> out;
    if (path.empty()) return out;
    for (const auto& p : data::read_preferences(path, limit)) {
      if (m.gpt != nullptr) {
        out.push_back(data::tokenize_preference(p, f, r.chat, r.max_len, r.max_len / 2));
        continue;
      }
      std::string prompt;
      for (const auto& msg : p.prompt) prompt += msg.content + "\n";
      data::PreferenceExample e;
      e.chosen = infer::classifier_input_ids(*model, *m.tokenizer, prompt + p.chosen, r.max_len,
                                             false, -1);
      e.rejected = infer::classifier_input_ids(*model, *m.tokenizer, prompt + p.rejected, r.max_len,
                                               false, -1);
      out.push_back(std::move(e));
    }
    return out;
  };
  auto train = pairs(r.train_path, r.limit);
  auto val = pairs(r.val_path, 0);
  const size_t n_train = train.size(), n_val = val.size();
  const nn::LoraConfig lora =
      choose_trainable(*model, model->arch(), r, &model->dropout_generator(), {model->head_name()});
  if (r.method == "full" && model->gpt) nn::freeze(*model, {"lm_head"});  // read by no forward
  RewardTask task(*model, std::move(train), std::move(val), r.train.batch_size, pad, r.train.seed,
                  r.method == "full", model->config_json());
  announce("reward", r, *model, model->arch(), n_train, n_val, "pairs");
  AlignResult res = run_loop(task, *model, r, resume_dir, tokenizer_json_of(m));
  if (res.train.interrupted) return res;
  // The reward model is a classifier directory, as `llmkit finetune --task regress` writes one:
  // `llmkit classify` scores texts with it and `llmkit ppo --reward` reads it.
  export_classifier(*model, m, tokenizer_json_of(m), r.method, lora,
                    fs::absolute(r.model_path).string(), r.out_dir);
  res.export_dir = r.out_dir;
  return res;
}

}  // namespace llmkit::train
