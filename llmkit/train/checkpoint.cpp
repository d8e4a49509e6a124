#include "llmkit/train/checkpoint.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "llmkit/io/atomic_file.h"
#include "llmkit/io/safetensors.h"
#include "llmkit/io/svg_plot.h"
#include "llmkit/tokenizer/tokenizer.h"

namespace llmkit::train {

namespace fs = std::filesystem;
using tokenizer::Tokenizer;
using tokenizer::TrainOptions;
using nlohmann::json;

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

void write_json(const std::string& path, const json& j) { io::write_file_atomic(path, j.dump(2) + "\n"); }

Tokenizer obtain_tokenizer(const TrainRun& run, const std::vector<std::string>& data,
                           int32_t vocab_size) {
  if (!run.tokenizer_path.empty()) return Tokenizer::load(run.tokenizer_path);
  if (!run.quiet)
    std::fprintf(stderr, "training a byte-level BPE tokenizer of %d tokens on %zu file(s)\n",
                 vocab_size, data.size());
  TrainOptions to;
  to.vocab_size = vocab_size;
  return Tokenizer::train(data, to);
}

std::string metrics_csv(const std::vector<StepRecord>& h) {
  std::ostringstream os;
  os << "step,lr,train_loss,val_loss,grad_norm,tokens_per_sec\n";
  for (const auto& r : h) {
    os << r.step << ',' << r.lr << ',' << r.loss << ',';
    if (r.val_loss >= 0) os << r.val_loss;
    os << ',' << r.grad_norm << ',' << r.tokens_per_sec << '\n';
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
    ck.model_config = models::GPTConfig::load((dir / "config.json").string());
    train_json = state.at("train");
    ck.data = run.data.empty() ? state.at("data").get<std::vector<std::string>>() : run.data;
  } else {
    LLMKIT_CHECK(!fs::exists(state_path), "'", run.out_dir,
                 "' already holds a training run; continue it with --resume or pick another --out");
    LLMKIT_CHECK(!run.config_path.empty(), "train: --config FILE is required");
    const json cfg = read_json(run.config_path);
    LLMKIT_CHECK(cfg.contains("model"), run.config_path, ": no \"model\" object");
    try {
      ck.model_config = models::GPTConfig::from_json(cfg.at("model"));
    } catch (const Error& e) {
      fail(run.config_path, ": ", e.what());
    }
    train_json = cfg.value("train", json::object());
    ck.data = run.data;
  }
  if (run.train_overrides != nullptr)
    for (auto& [k, v] : run.train_overrides->items()) train_json[k] = v;
  ck.train_config = TrainConfig::from_json(train_json);
  LLMKIT_CHECK(!ck.data.empty(), "train: give the training text with --data FILE...");
  for (const auto& f : ck.data) LLMKIT_CHECK(fs::exists(f), "train: data file '", f, "' not found");

  fs::create_directories(dir);
  const std::string tok_path = (dir / "tokenizer.json").string();
  Tokenizer tok = run.resume ? Tokenizer::load(tok_path)
                             : obtain_tokenizer(run, ck.data, static_cast<int32_t>(ck.model_config.vocab_size));
  if (!run.resume) {
    if (tok.vocab_size() != ck.model_config.vocab_size) {
      if (!run.quiet)
        std::fprintf(stderr, "note: vocab_size %lld -> %d to match the tokenizer\n",
                     static_cast<long long>(ck.model_config.vocab_size), tok.vocab_size());
      ck.model_config.vocab_size = tok.vocab_size();
    }
    tok.save(tok_path);
    write_json((dir / "config.json").string(), ck.model_config.to_json());
  }
  ck.shards = data::prepare_shards(ck.data, tok, (dir / "data").string(),
                                   ck.train_config.val_fraction);
  return ck;
}

void save_checkpoint(const std::string& dir, const Checkpoint& ck, models::GPT& model,
                     const AdamW& opt, const data::BatchSampler& sampler,
                     const std::vector<StepRecord>& history) {
  const fs::path d(dir);
  const std::string step = std::to_string(history.size());
  io::save_safetensors((d / "model.safetensors").string(), model.named_parameters(),
                       {{"step", step}, {"format", "llmkit"}});
  io::save_safetensors((d / "optimizer.safetensors").string(), opt.state(),
                       {{"step", std::to_string(opt.step_count())}});
  json hist = json::array();
  for (const auto& r : history)
    hist.push_back({r.step, r.lr, r.loss, r.val_loss, r.grad_norm, r.tokens_per_sec});
  json state = {{"step", history.size()},
                {"train", ck.train_config.to_json()},
                {"data", ck.data},
                {"sampler_position", sampler.position()},
                {"dropout_rng", {{"seed", model.dropout_generator().seed()},
                                 {"offset", model.dropout_generator().offset()}}},
                {"history", hist}};
  io::write_file_atomic((d / "metrics.csv").string(), metrics_csv(history));
  io::write_file_atomic((d / "loss.svg").string(), loss_svg(history));
  write_json((d / "trainer_state.json").string(), state);
}

void restore_checkpoint(const std::string& dir, models::GPT& model, AdamW& opt,
                        data::BatchSampler& sampler, std::vector<StepRecord>& history) {
  const fs::path d(dir);
  const json state = read_json((d / "trainer_state.json").string());
  const int64_t step = state.at("step").get<int64_t>();
  io::SafetensorsFile mf = io::load_safetensors((d / "model.safetensors").string());
  io::SafetensorsFile of = io::load_safetensors((d / "optimizer.safetensors").string());
  LLMKIT_CHECK(mf.metadata["step"] == std::to_string(step),
               "checkpoint in '", dir, "' is inconsistent: trainer_state.json is at step ", step,
               " but model.safetensors at step ", mf.metadata["step"]);
  std::map<std::string, Tensor> weights(mf.tensors.begin(), mf.tensors.end());
  model.load_state_dict(weights);
  std::map<std::string, Tensor> moments(of.tensors.begin(), of.tensors.end());
  opt.load_state(moments, std::stoll(of.metadata["step"]));
  sampler.set_position(state.at("sampler_position").get<uint64_t>());
  model.dropout_generator().set_state(state.at("dropout_rng").at("seed").get<uint64_t>(),
                                      state.at("dropout_rng").at("offset").get<uint64_t>());
  history.clear();
  for (const auto& h : state.at("history")) {
    StepRecord r;
    r.step = h[0];
    r.lr = h[1];
    r.loss = h[2];
    r.val_loss = h[3];
    r.grad_norm = h[4];
    r.tokens_per_sec = h[5];
    history.push_back(r);
  }
  LLMKIT_CHECK(static_cast<int64_t>(history.size()) == step, "checkpoint in '", dir,
               "': history has ", history.size(), " steps, state says ", step);
}

std::unique_ptr<models::GPT> load_model(const std::string& dir) {
  const fs::path d(dir);
  LLMKIT_CHECK(fs::exists(d / "config.json"), "'", dir,
               "' is not a model directory (no config.json)");
  auto model = std::make_unique<models::GPT>(models::GPTConfig::load((d / "config.json").string()));
  io::SafetensorsFile f = io::load_safetensors((d / "model.safetensors").string());
  model->load_state_dict(std::map<std::string, Tensor>(f.tensors.begin(), f.tensors.end()));
  model->eval();
  return model;
}

}  // namespace llmkit::train
