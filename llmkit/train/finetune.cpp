// The fine-tuning driver (finetune.h): labelled data -> a Classifier over the loaded body ->
// what trains (full / head / lora / qlora) -> train_loop with checkpoints -> a usable model or
// adapter directory, the report of a final evaluation. The Task itself is task_classify.cpp.
#include "llmkit/train/finetune.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "llmkit/core/random.h"
#include "llmkit/data/labelled.h"
#include "llmkit/io/atomic_file.h"
#include "llmkit/io/json_file.h"
#include "llmkit/io/safetensors.h"
#include "llmkit/models/load.h"
#include "llmkit/models/peft.h"
#include "llmkit/train/adamw.h"
#include "llmkit/train/checkpoint.h"

namespace llmkit::train {

namespace fs = std::filesystem;
using nlohmann::json;

TrainConfig finetune_defaults(const std::string& method) {
  TrainConfig c;
  c.objective = "classify";
  // full: BERT's fine-tuning range (2e-5..5e-5); head: a linear probe on fixed features wants
  // far more (all-MiniLM-L6-v2, 100 steps: val accuracy 0.80 at 1e-2, 0.65 at 1e-3); lora: the
  // adapters start at B = 0 and PEFT's classification examples use 1e-3.
  c.lr = method == "full" ? 2e-5 : method == "head" ? 1e-2 : 1e-3;
  c.min_lr = 0;
  c.weight_decay = 0.01;
  c.schedule = "linear";
  c.batch_size = 16;
  c.eval_interval = 100;
  c.steps = 1000;
  c.warmup = -1;  // resolved by resolve_defaults: 6% of the schedule
  return c;
}

namespace {

constexpr const char* kRunFile = "finetune_run.json";

// Everything a resumed run must repeat exactly (the train config lives in the checkpoint).
json run_to_json(const FinetuneRun& r) {
  return json{{"model_path", r.model_path},
              {"task", r.task},
              {"train_path", r.train_path},
              {"val_path", r.val_path},
              {"method", r.method},
              {"freeze", r.freeze},
              {"lora",
               {{"r", r.lora.r},
                {"alpha", r.lora.alpha},
                {"dropout", r.lora.dropout},
                {"target_modules", r.lora.target_modules}}},
              {"qlora_type", r.qlora_type},
              {"pooling", r.pooling},
              {"max_len", r.max_len},
              {"limit", r.limit},
              {"from_scratch", r.from_scratch},
              {"train", r.train.to_json()}};
}

FinetuneRun run_from_json(const json& j, const std::string& path) {
  FinetuneRun r;
  try {
    j.at("model_path").get_to(r.model_path);
    j.at("task").get_to(r.task);
    j.at("train_path").get_to(r.train_path);
    j.at("val_path").get_to(r.val_path);
    j.at("method").get_to(r.method);
    j.at("freeze").get_to(r.freeze);
    const json& l = j.at("lora");
    l.at("r").get_to(r.lora.r);
    l.at("alpha").get_to(r.lora.alpha);
    l.at("dropout").get_to(r.lora.dropout);
    l.at("target_modules").get_to(r.lora.target_modules);
    j.at("qlora_type").get_to(r.qlora_type);
    j.at("pooling").get_to(r.pooling);
    j.at("max_len").get_to(r.max_len);
    j.at("limit").get_to(r.limit);
    j.at("from_scratch").get_to(r.from_scratch);
    r.train = TrainConfig::from_json(j.at("train"));
  } catch (const json::exception& e) {
    fail(path, ": ", e.what());
  }
  return r;
}

void check_run(const FinetuneRun& r) {
  LLMKIT_CHECK(!r.out_dir.empty(), "finetune: --out DIR is required");
  LLMKIT_CHECK(r.task == "classify" || r.task == "regress", "finetune: task '", r.task,
               "' is not classify or regress");
  LLMKIT_CHECK(
      r.method == "full" || r.method == "head" || r.method == "lora" || r.method == "qlora",
      "finetune: method '", r.method, "' is not full, head, lora or qlora");
  LLMKIT_CHECK(!r.model_path.empty(), "finetune: --model is required");
  LLMKIT_CHECK(!r.train_path.empty() && !r.val_path.empty(),
               "finetune: --train and --val files are required");
  LLMKIT_CHECK(r.max_len >= 2, "finetune: max_len must be at least 2, got ", r.max_len);
  LLMKIT_CHECK(r.limit >= 0, "finetune: limit must not be negative");
}

// What the model and the data become once loaded: the classifier, its tokenizer and how texts
// are encoded.
struct Prepared {
  models::LoadedModel loaded;
  std::shared_ptr<models::Classifier> model;
  std::string tokenizer_json;
  bool add_bos = false;
  ClassifyExamples train, val;
  std::vector<std::string> labels;
};

// The training examples, or `limit` of them drawn at random (seeded; kept in file order). A
// random draw, not the first lines: labelled files are often grouped by label or source.
std::vector<data::LabelledExample> read_limited(const std::string& path, int64_t limit,
                                                uint64_t seed) {
  std::vector<data::LabelledExample> ex = data::read_labelled(path);
  if (limit <= 0 || static_cast<int64_t>(ex.size()) <= limit) return ex;
  std::vector<size_t> idx(ex.size());
  for (size_t i = 0; i < idx.size(); ++i) idx[i] = i;
  Generator g(seed * 7919ULL + 101);
  const auto n = static_cast<size_t>(limit);
  for (size_t i = 0; i < n; ++i) std::swap(idx[i], idx[i + g.randint(idx.size() - i)]);
  idx.resize(n);
  std::sort(idx.begin(), idx.end());
  std::vector<data::LabelledExample> picked;
  picked.reserve(n);
  for (size_t i : idx) picked.push_back(std::move(ex[i]));
  return picked;
}

ClassifyExamples encode_examples(const Prepared& p, const std::vector<data::LabelledExample>& ex,
                                 const std::string& path, bool regression, int64_t max_len) {
  ClassifyExamples out;
  std::map<std::string, int32_t> id;
  for (size_t i = 0; i < p.labels.size(); ++i) id[p.labels[i]] = static_cast<int32_t>(i);
  const tokenizer::Tokenizer& tok = *p.loaded.tokenizer;
  for (const auto& e : ex) {
    out.ids.push_back(
        infer::classifier_input_ids(*p.model, tok, e.text, max_len, p.add_bos, p.loaded.bos_id));
    if (regression) {
      out.targets.push_back(static_cast<float>(data::label_value(e, path, e.line)));
    } else {
      const auto it = id.find(e.label);
      LLMKIT_CHECK(it != id.end(), path, ":", e.line, ": label '", e.label,
                   "' does not occur in the training data");
      out.labels.push_back(it->second);
    }
  }
  return out;
}

// Loads the body (or a classifier to continue) and puts the run's head on it.
void prepare_model(Prepared& p, const FinetuneRun& r, const std::vector<std::string>& labels) {
  p.loaded = models::load(r.model_path);
  models::LoadedModel& m = p.loaded;
  LLMKIT_CHECK(m.tokenizer.has_value(), "finetune: '", r.model_path, "' has no tokenizer");
  p.tokenizer_json = !m.tokenizer_json.empty() ? m.tokenizer_json : m.tokenizer->to_json();
  p.add_bos = m.gpt != nullptr && (m.add_bos || m.tokenizer_config.value("add_bos_token", false));
  if (m.classifier != nullptr) {  // continue from a fine-tuned classifier: the same labels
    LLMKIT_CHECK(m.classifier->head_config().labels == labels, "finetune: '", r.model_path,
                 "' is a classifier with other labels than the training data's");
    p.model =
        std::shared_ptr<models::Classifier>(static_cast<models::Classifier*>(m.module.release()));
    return;
  }
  models::HeadConfig h;
  h.problem_type = r.task == "regress" ? "regression" : "single_label_classification";
  h.labels = labels;
  const uint64_t seed = r.train.seed;
  if (m.bert != nullptr) {
    h.pooling = r.pooling.empty() ? "cls" : r.pooling;
    h.dropout = m.bert->config().dropout;
    std::shared_ptr<models::Bert> b(static_cast<models::Bert*>(m.module.release()));
    if (r.from_scratch) b->init_weights(seed);
    p.model = std::make_shared<models::Classifier>(b, h, seed + 1);
  } else if (m.gpt != nullptr) {
    LLMKIT_CHECK(r.pooling.empty() || r.pooling == "last", "finetune: pooling '", r.pooling,
                 "' is for encoders; a decoder reads its last token");
    h.pooling = "last";
    std::shared_ptr<models::GPT> g(static_cast<models::GPT*>(m.module.release()));
    if (r.from_scratch) g->init_weights(seed);
    p.model = std::make_shared<models::Classifier>(g, h, seed + 1);
  } else {
    fail("finetune: '", r.model_path, "' holds a ", m.arch,
         " model, which cannot take a classification head (bert, gpt, llama)");
  }
  m.classifier = p.model.get();
}

// Sets what trains for the method; returns the LoRA config used (targets resolved).
nn::LoraConfig choose_trainable(models::Classifier& model, const FinetuneRun& r) {
  nn::LoraConfig lora = r.lora;
  // Parameters no forward pass reads get no gradient: leave them out of the optimizer.
  std::vector<std::string> unused = {"lm_head", "cls"};
  if (model.head_config().pooling == "mean") unused.push_back("bert.pooler");
  if (r.method == "full") {
    std::vector<std::string> frozen = r.freeze;
    frozen.insert(frozen.end(), unused.begin(), unused.end());
    nn::freeze(model, frozen);
    return lora;
  }
  if (r.method == "head") {
    nn::mark_only_lora_trainable(model, {model.head_name()});
    return lora;
  }
  if (lora.target_modules.empty()) lora.target_modules = nn::default_lora_targets(model.arch());
  lora.modules_to_save = {model.head_name()};
  if (r.method == "qlora") models::quantize_body(model, r.qlora_type);
  nn::apply_lora(model, lora, r.train.seed + 2,
                 lora.dropout > 0 ? &model.dropout_generator() : nullptr);
  nn::mark_only_lora_trainable(model, lora.modules_to_save);
  return lora;
}

Prepared prepare(const FinetuneRun& r) {
  Prepared p;
  const bool regression = r.task == "regress";
  const auto train_ex = read_limited(r.train_path, r.limit, r.train.seed);
  const auto val_ex = data::read_labelled(r.val_path);
  p.labels = regression ? std::vector<std::string>{"score"} : data::label_names(train_ex);
  LLMKIT_CHECK(regression || p.labels.size() >= 2, "finetune: '", r.train_path,
               "' has only one label ('", p.labels[0], "'); classification needs two or more");
  prepare_model(p, r, p.labels);
  p.train = encode_examples(p, train_ex, r.train_path, regression, r.max_len);
  p.val = encode_examples(p, val_ex, r.val_path, regression, r.max_len);
  return p;
}

void export_result(const Prepared& p, const FinetuneRun& r, const nn::LoraConfig& lora) {
  export_classifier(*p.model, p.loaded, p.tokenizer_json, r.method, lora,
                    fs::absolute(r.model_path).string(), r.out_dir, r.qlora_type);
}

// Resolves the run: a new one as given, or a resumed one from its directory.
FinetuneRun resolve_run(const FinetuneRun& given, std::string& resume_dir) {
  const std::string committed = committed_checkpoint(given.out_dir);
  const fs::path run_file = fs::path(given.out_dir) / kRunFile;
  if (given.resume && !committed.empty() && fs::exists(run_file)) {
    FinetuneRun r = run_from_json(io::read_json_file(run_file.string()), run_file.string());
    r.out_dir = given.out_dir;
    r.resume = true;
    r.quiet = given.quiet;
    r.stop_after = given.stop_after;
    const json state = io::read_json_file((fs::path(committed) / "trainer_state.json").string());
    r.train = TrainConfig::from_json(state.at("train"));
    if (given.train.steps > 0) r.train.steps = given.train.steps;
    resume_dir = committed;
    return r;
  }
  LLMKIT_CHECK(
      committed.empty(), "'", given.out_dir,
      "' already holds a fine-tuning run; continue it with --resume or pick another --out");
  if (given.resume && !given.quiet)
    std::fprintf(stderr, "note: nothing to resume in %s; starting\n", given.out_dir.c_str());
  FinetuneRun r = given;
  r.train.objective = r.task;
  if (r.train.steps <= 0) r.train.steps = finetune_defaults(r.method).steps;
  // Warm-up 6% of the schedule (the GLUE recipes'), resolved once so resume keeps it.
  if (r.train.schedule_steps <= 0) r.train.schedule_steps = r.train.steps;
  if (r.train.warmup < 0) r.train.warmup = r.train.schedule_steps * 6 / 100;
  r.train = TrainConfig::from_json(r.train.to_json());  // validates
  fs::create_directories(r.out_dir);
  io::write_file_atomic(run_file.string(), run_to_json(r).dump(2) + "\n");
  return r;
}

// The last step of train_loop evaluates, with the final weights: its figures are reused; a run
// resumed at its end (nothing trained) evaluates here.
void write_report(const FinetuneRun& r, ClassifyTask& task, FinetuneResult& res) {
  const Metrics m = task.evaluated() ? task.last_metrics() : task.evaluate(0);
  res.val_loss = m.at("loss");
  const fs::path dir(r.out_dir);
  json j = json::object();
  for (const auto& [k, v] : m) j[k] = v;
  if (r.task == "regress") {
    res.val_mse = m.at("mse");
    res.val_pearson = m.at("pearson");
  } else {
    res.report = task.last_report();
    io::write_file_atomic((dir / "confusion.txt").string(), res.report.to_text());
    j["report"] = json::parse(res.report.to_json());
  }
  io::write_file_atomic((dir / "report.json").string(), j.dump(2) + "\n");
}

}  // namespace

FinetuneLoop run_finetune_loop(Task& task, nn::Module& model, const TrainConfig& tc,
                               const std::string& out_dir, std::vector<std::string> data,
                               const std::string& tokenizer_json, const std::string& resume_dir,
                               bool quiet, int64_t stop_after) {
  AdamW opt(trainable_parameters(model),
            {.lr = tc.lr,
             .beta1 = tc.beta1,
             .beta2 = tc.beta2,
             .eps = 1e-8,
             .weight_decay = tc.weight_decay},
            task.embedding_tables());
  Checkpoint ck;
  ck.model_config = task.model_config();
  ck.train_config = tc;
  ck.data = std::move(data);
  ck.tokenizer_json = tokenizer_json;
  ck.resume_dir = resume_dir;
  ck.publish_model = false;
  std::vector<StepRecord> history;
  if (!resume_dir.empty()) {
    restore_checkpoint(resume_dir, task, opt, history);
    if (!quiet)
      std::fprintf(stderr, "resuming at step %zu of %lld\n", history.size(),
                   static_cast<long long>(tc.steps));
  }
  LoopOptions lo;
  lo.out_dir = out_dir;
  lo.quiet = quiet;
  lo.stop_after = stop_after;
  lo.save = [&](const std::vector<StepRecord>& h) { save_checkpoint(out_dir, ck, task, opt, h); };
  const int64_t first_step = static_cast<int64_t>(history.size());
  const auto t0 = std::chrono::steady_clock::now();
  FinetuneLoop out;
  out.train = train_loop(task, opt, tc, std::move(history), lo);
  out.train_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  out.steps_run = out.train.step - first_step;
  return out;
}

void export_classifier(models::Classifier& model, const models::LoadedModel& loaded,
                       const std::string& tokenizer_json, const std::string& method,
                       const nn::LoraConfig& lora, const std::string& base_model_path,
                       const std::string& out_dir, const std::string& qlora_type) {
  const fs::path dir(out_dir);
  json cfg = model.config_json();
  cfg["llmkit_finetune"] = {{"method", method}, {"qlora_type", qlora_type}};
  if (method == "lora" || method == "qlora") {
    models::AdapterInfo info;
    info.lora = lora;
    info.task_type = model.head_config().task == "token" ? "TOKEN_CLS" : "SEQ_CLS";
    info.base_model_path = base_model_path;
    models::save_adapter(model, model.arch(), info, out_dir);
  } else {
    io::save_safetensors((dir / "model.safetensors").string(), model.named_parameters(),
                         {{"format", "llmkit"}});
  }
  io::write_file_atomic((dir / "config.json").string(), cfg.dump(2) + "\n");
  io::write_file_atomic((dir / "tokenizer.json").string(), tokenizer_json);
  json tc = loaded.tokenizer_config.is_object() ? loaded.tokenizer_config : json::object();
  if (!tc.contains("tokenizer_class")) tc["tokenizer_class"] = "PreTrainedTokenizerFast";
  tc["add_bos_token"] = loaded.gpt != nullptr &&
                        (loaded.add_bos || loaded.tokenizer_config.value("add_bos_token", false));
  if (!loaded.bos_token.empty()) tc["bos_token"] = loaded.bos_token;
  if (!loaded.eos_token.empty()) tc["eos_token"] = loaded.eos_token;
  io::write_file_atomic((dir / "tokenizer_config.json").string(), tc.dump(2) + "\n");
}

FinetuneResult finetune(const FinetuneRun& given) {
  check_run(given);
  const RunLock lock(given.out_dir);
  std::string resume_dir;
  const FinetuneRun r = resolve_run(given, resume_dir);
  const TrainConfig& tc = r.train;
  Prepared p = prepare(r);
  const nn::LoraConfig lora = choose_trainable(*p.model, r);
  FinetuneResult res;
  const nn::ParamCount pc = nn::count_parameters(*p.model);
  res.trainable_params = pc.trainable;
  res.all_params = pc.all;
  if (!r.quiet)
    std::fprintf(stderr,
                 "finetune: %s %s, method %s, %zu labels, %zu train / %zu val examples\n%s\n",
                 p.model->arch().c_str(), r.model_path.c_str(), r.method.c_str(), p.labels.size(),
                 p.train.size(), p.val.size(), nn::trainable_parameters_line(*p.model).c_str());
  ClassifyTask task(*p.model, std::move(p.train), std::move(p.val), tc.batch_size, tc.seed,
                    r.method == "full", p.model->config_json());
  const FinetuneLoop loop =
      run_finetune_loop(task, *p.model, tc, r.out_dir, {r.train_path, r.val_path}, p.tokenizer_json,
                        resume_dir, r.quiet, r.stop_after);
  res.train = loop.train;
  res.train_seconds = loop.train_seconds;
  res.steps_run = loop.steps_run;
  if (res.train.interrupted) return res;
  write_report(r, task, res);
  export_result(p, r, lora);
  res.export_dir = r.out_dir;
  return res;
}

}  // namespace llmkit::train
