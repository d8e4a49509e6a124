#include "llmkit/train/checkpoint.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "llmkit/io/atomic_file.h"
#include "llmkit/io/safetensors.h"
#include "llmkit/io/svg_plot.h"
#include "llmkit/tokenizer/tokenizer.h"

namespace llmkit::train {

namespace fs = std::filesystem;
using nlohmann::json;
using tokenizer::Tokenizer;
using tokenizer::TrainOptions;

namespace {

json read_json(const std::string& path) {
  std::ifstream in(path);
  LLMKIT_CHECK(in.good(), "cannot open '", path, "'");
  try {
    return json::parse(in);
  } catch (const json::exception& e) {
    fail("'", path, "' is not valid JSON: ", e.what());
  }
}

void write_json(const std::string& path, const json& j) {
  io::write_file_atomic(path, j.dump(2) + "\n");
}

Tokenizer obtain_tokenizer(const TrainRun& run, const std::vector<std::string>& data,
                           int32_t vocab_size, const std::vector<std::string>& special) {
  if (!run.quiet)
    std::fprintf(stderr, "training a byte-level BPE tokenizer of %d tokens on %zu file(s)\n",
                 vocab_size, data.size());
  TrainOptions to;
  to.vocab_size = vocab_size;
  to.special_tokens = special;
  return Tokenizer::train(data, to);
}

// One row per step; validation columns are empty on steps without evaluation. Metrics beyond the
// loss (a family's "accuracy") get a val_<name> column each.
std::string metrics_csv(const std::vector<StepRecord>& h) {
  std::set<std::string> extra;
  for (const auto& r : h)
    for (const auto& [k, v] : r.val_metrics)
      if (k != "loss") extra.insert(k);
  std::ostringstream os;
  os << "step,lr,train_loss,val_loss,grad_norm,tokens_per_sec";
  for (const auto& k : extra) os << ",val_" << k;
  os << '\n';
  for (const auto& r : h) {
    os << r.step << ',' << r.lr << ',' << r.loss << ',';
    if (r.val_loss >= 0) os << r.val_loss;
    os << ',' << r.grad_norm << ',' << r.tokens_per_sec;
    for (const auto& k : extra) {
      os << ',';
      if (const auto it = r.val_metrics.find(k); it != r.val_metrics.end()) os << it->second;
    }
    os << '\n';
  }
  return os.str();
}

std::string loss_svg(const std::vector<StepRecord>& h) {
  io::PlotSeries train{"train loss", {}, {}}, val{"val loss", {}, {}};
  for (const auto& r : h) {
    train.x.push_back(static_cast<double>(r.step));
    train.y.push_back(r.loss);
    if (r.val_loss >= 0) {
      val.x.push_back(static_cast<double>(r.step));
      val.y.push_back(r.val_loss);
    }
  }
  io::PlotOptions po;
  po.title = "llmkit training loss";
  po.x_label = "step";
  po.y_label = "cross-entropy (nats)";
  return io::line_plot_svg({train, val}, po);
}

}  // namespace

LrSchedule make_schedule(const TrainConfig& tc) {
  LrSchedule s;
  s.kind = tc.schedule == "cosine"   ? LrSchedule::Kind::Cosine
           : tc.schedule == "linear" ? LrSchedule::Kind::Linear
           : tc.schedule == "constant"
               ? LrSchedule::Kind::Constant
               : (fail("config: schedule '", tc.schedule, "' is not cosine, linear or constant"),
                  LrSchedule::Kind::Constant);
  s.warmup = tc.warmup;
  s.total = tc.steps;
  s.max_lr = tc.lr;
  s.min_lr = tc.min_lr;
  return s;
}

Checkpoint prepare_run(const TrainRun& run) {
  Checkpoint ck;
  LLMKIT_CHECK(!run.out_dir.empty(), "train: --out DIR is required");
  const fs::path dir(run.out_dir);
  const std::string state_path = (dir / "trainer_state.json").string();
  json train_json;
  if (run.resume) {
    LLMKIT_CHECK(fs::exists(state_path), "nothing to resume in '", run.out_dir,
                 "': no trainer_state.json (start a run there without --resume)");
    const json state = read_json(state_path);
    ck.model_config = read_json((dir / "config.json").string());
    train_json = state.at("train");
    ck.data = run.data.empty() ? state.at("data").get<std::vector<std::string>>() : run.data;
    ck.pairs = run.pairs.empty() ? state.value("pairs", std::vector<std::string>{}) : run.pairs;
  } else {
    LLMKIT_CHECK(!fs::exists(state_path), "'", run.out_dir,
                 "' already holds a training run; continue it with --resume or pick another --out");
    LLMKIT_CHECK(!run.config_path.empty(), "train: --config FILE is required");
    const json cfg = read_json(run.config_path);
    LLMKIT_CHECK(cfg.contains("model") && cfg.at("model").is_object(), run.config_path,
                 ": no \"model\" object");
    ck.model_config = cfg.at("model");
    train_json = cfg.value("train", json::object());
    ck.data = run.data;
    ck.pairs = run.pairs;
  }
  if (run.train_overrides != nullptr)
    for (auto& [k, v] : run.train_overrides->items()) train_json[k] = v;
  try {
    ck.train_config = TrainConfig::from_json(train_json);
  } catch (const Error& e) {
    fail(run.resume ? state_path : run.config_path, ": ", e.what());
  }
  const bool translate = ck.train_config.objective == "translate";
  if (translate)
    LLMKIT_CHECK(!ck.pairs.empty(),
                 "train: objective translate needs --pairs FILE (a TSV of "
                 "source<TAB>target lines)");
  else
    LLMKIT_CHECK(!ck.data.empty(), "train: give the training text with --data FILE...");
  for (const auto& f : ck.data) LLMKIT_CHECK(fs::exists(f), "train: data file '", f, "' not found");
  for (const auto& f : ck.pairs)
    LLMKIT_CHECK(fs::exists(f), "train: pairs file '", f, "' not found");

  fs::create_directories(dir);
  ck.tokenizer_path = (dir / "tokenizer.json").string();
  if (!run.resume) {
    // The tokenizer learns from everything the model will read: the text and both sides of pairs.
    std::vector<std::string> corpus = ck.data;
    corpus.insert(corpus.end(), ck.pairs.begin(), ck.pairs.end());
    int32_t vocab = 0;
    try {
      vocab = ck.model_config.at("vocab_size").get<int32_t>();
    } catch (const json::exception&) {
      fail(run.config_path, ": \"model\" needs an integer vocab_size");
    }
    Tokenizer tok = !run.tokenizer_path.empty()
                        ? Tokenizer::load(run.tokenizer_path)
                        : obtain_tokenizer(run, corpus, vocab,
                                           task_special_tokens(ck.model_config, ck.train_config));
    if (tok.vocab_size() != vocab) {
      if (!run.quiet)
        std::fprintf(stderr, "note: vocab_size %d -> %d to match the tokenizer\n", vocab,
                     tok.vocab_size());
      ck.model_config["vocab_size"] = tok.vocab_size();
    }
    tok.save(ck.tokenizer_path);
  }
  if (!ck.data.empty()) {
    const Tokenizer tok = Tokenizer::load(ck.tokenizer_path);
    ck.shards =
        data::prepare_shards(ck.data, tok, (dir / "data").string(), ck.train_config.val_fraction);
  }
  return ck;
}

void save_checkpoint(const std::string& dir, const Checkpoint& ck, Task& task, const AdamW& opt,
                     const std::vector<StepRecord>& history) {
  const fs::path d(dir);
  const std::string step = std::to_string(history.size());
  write_json((d / "config.json").string(), task.model_config());
  io::save_safetensors((d / "model.safetensors").string(), task.model().named_parameters(),
                       {{"step", step}, {"format", "llmkit"}});
  io::save_safetensors((d / "optimizer.safetensors").string(), opt.state(),
                       {{"step", std::to_string(opt.step_count())}});
  json hist = json::array();
  for (const auto& r : history) {
    json metrics = json::object();
    for (const auto& [k, v] : r.val_metrics) metrics[k] = v;
    hist.push_back({r.step, r.lr, r.loss, r.val_loss, r.grad_norm, r.tokens_per_sec, metrics});
  }
  json state = {{"step", history.size()}, {"train", ck.train_config.to_json()}, {"data", ck.data},
                {"pairs", ck.pairs},      {"task_state", task.state()},         {"history", hist}};
  io::write_file_atomic((d / "metrics.csv").string(), metrics_csv(history));
  io::write_file_atomic((d / "loss.svg").string(), loss_svg(history));
  write_json((d / "trainer_state.json").string(), state);
}

void restore_checkpoint(const std::string& dir, Task& task, AdamW& opt,
                        std::vector<StepRecord>& history) {
  const fs::path d(dir);
  const json state = read_json((d / "trainer_state.json").string());
  const int64_t step = state.at("step").get<int64_t>();
  io::SafetensorsFile mf = io::load_safetensors((d / "model.safetensors").string());
  io::SafetensorsFile of = io::load_safetensors((d / "optimizer.safetensors").string());
  LLMKIT_CHECK(mf.metadata["step"] == std::to_string(step), "checkpoint in '", dir,
               "' is inconsistent: trainer_state.json is at step ", step,
               " but model.safetensors at step ", mf.metadata["step"]);
  task.model().load_state_dict(std::map<std::string, Tensor>(mf.tensors.begin(), mf.tensors.end()));
  std::map<std::string, Tensor> moments(of.tensors.begin(), of.tensors.end());
  opt.load_state(moments, std::stoll(of.metadata["step"]));
  LLMKIT_CHECK(state.contains("task_state"), "checkpoint in '", dir,
               "' has no task_state (written by an older llmkit); start a new run");
  task.load_state(state.at("task_state"));
  history.clear();
  for (const auto& h : state.at("history")) {
    StepRecord r;
    r.step = h[0];
    r.lr = h[1];
    r.loss = h[2];
    r.val_loss = h[3];
    r.grad_norm = h[4];
    r.tokens_per_sec = h[5];
    if (h.size() > 6)
      for (const auto& [k, v] : h[6].items()) r.val_metrics[k] = v.get<double>();
    history.push_back(r);
  }
  LLMKIT_CHECK(static_cast<int64_t>(history.size()) == step, "checkpoint in '", dir,
               "': history has ", history.size(), " steps, state says ", step);
}

namespace {

void load_weights(const fs::path& d, nn::Module& model) {
  io::SafetensorsFile f = io::load_safetensors((d / "model.safetensors").string());
  model.load_state_dict(std::map<std::string, Tensor>(f.tensors.begin(), f.tensors.end()));
  model.eval();
}

void check_model_dir(const fs::path& d) {
  LLMKIT_CHECK(fs::exists(d / "config.json"), "'", d.string(),
               "' is not a model directory (no config.json)");
}

}  // namespace

std::unique_ptr<models::GPT> load_model(const std::string& dir) {
  const fs::path d(dir);
  check_model_dir(d);
  const json cfg = read_json((d / "config.json").string());
  const std::string arch = cfg.value("arch", "gpt");
  LLMKIT_CHECK(arch == "gpt" || arch == "llama", "'", dir, "' holds a ", arch,
               " model; this command needs a decoder (gpt, llama or rnn)");
  auto model = std::make_unique<models::GPT>(models::GPTConfig::from_json(cfg));
  load_weights(d, *model);
  return model;
}

LoadedDecoder load_decoder(const std::string& dir) {
  const fs::path d(dir);
  check_model_dir(d);
  const json cfg = read_json((d / "config.json").string());
  LoadedDecoder out;
  out.arch = cfg.value("arch", "gpt");
  if (out.arch == "rnn") {
    auto m = std::make_unique<models::RNNLM>(models::RNNLMConfig::from_json(cfg));
    load_weights(d, *m);
    out.decoder = std::make_unique<infer::RnnDecoder>(*m);
    out.model = std::move(m);
  } else {
    auto m = load_model(dir);
    out.decoder = std::make_unique<infer::GptDecoder>(*m);
    out.model = std::move(m);
  }
  return out;
}

std::unique_ptr<Task> load_task(const std::string& dir, TaskData data, int64_t batch_size) {
  const fs::path d(dir);
  check_model_dir(d);
  const json cfg = read_json((d / "config.json").string());
  json train_json = json::object();
  if (fs::exists(d / "trainer_state.json"))
    train_json = read_json((d / "trainer_state.json").string()).value("train", json::object());
  else if (cfg.value("arch", "") == "bert")
    train_json["objective"] = "mlm";
  else if (cfg.value("arch", "") == "t5" || cfg.value("arch", "") == "bart")
    train_json["objective"] = "span";
  if (batch_size > 0) train_json["batch_size"] = batch_size;
  TrainConfig tc = TrainConfig::from_json(train_json);
  std::unique_ptr<Task> task = make_task(cfg, tc, data);
  load_weights(d, task->model());
  return task;
}

json read_json_file(const std::string& path) {
  return read_json(path);
}

}  // namespace llmkit::train
