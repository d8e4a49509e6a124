// Checkpoints and run directories (the layout and the commit protocol: checkpoint.h), and the
// loaders of a trained model directory for generate / eval / chat.
#include "llmkit/train/checkpoint.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "llmkit/io/atomic_file.h"
#include "llmkit/io/json_file.h"
#include "llmkit/io/safetensors.h"
#include "llmkit/io/svg_plot.h"
#include "llmkit/models/config_file.h"
#include "llmkit/models/load.h"
#include "llmkit/tokenizer/read_file.h"
#include "llmkit/tokenizer/tokenizer.h"

namespace llmkit::train {

namespace fs = std::filesystem;
using nlohmann::json;
using tokenizer::Tokenizer;
using tokenizer::TrainOptions;

namespace {

using io::read_json_file;

void write_json(const std::string& path, const json& j) {
  io::write_file_atomic(path, j.dump(2) + "\n");
}

constexpr const char* kCheckpoints = "checkpoints";
constexpr const char* kLatest = "latest.json";  // the commit point

std::string step_dir_name(int64_t step) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "step-%08lld", static_cast<long long>(step));
  return buf;
}

// The model directory at the top of the run directory (what generate / eval / chat read)
// becomes the checkpoint in `dir`. Runs only after the commit, so a kill here leaves the
// previous top-level files, which the next commit or --resume replaces. model.safetensors is a
// hard link where the file system has them (no bytes copied; a step directory's files are never
// written again, so sharing is safe); the small files are copies, so that editing one at the
// top can never change a checkpoint.
void publish_checkpoint(const fs::path& root, const fs::path& dir) {
  const fs::path model = root / "model.safetensors";
  const std::string tmp = model.string() + ".tmp." + std::to_string(getpid());
  ::unlink(tmp.c_str());
  if (::link((dir / "model.safetensors").c_str(), tmp.c_str()) == 0) {
    if (::rename(tmp.c_str(), model.c_str()) != 0) {
      const int err = errno;
      ::unlink(tmp.c_str());
      fail("cannot replace '", model.string(), "': ", std::strerror(err));
    }
  } else {
    io::write_file_atomic(model.string(),
                          tokenizer::read_file((dir / "model.safetensors").string()),
                          io::Durability::kFile);
  }
  for (const char* f : {"config.json", "tokenizer.json", "trainer_state.json"})
    io::write_file_atomic((root / f).string(), tokenizer::read_file((dir / f).string()),
                          io::Durability::kFile);
  fs::remove(root / "optimizer.safetensors");  // of the older layout; now in the step dir
  io::fsync_directory(root.string());
}

// Files that io::AtomicFile ("<name>.tmp.<pid>") or this file left behind when a process was
// killed while writing them. Only called under the run's lock.
void remove_stale_temps(const fs::path& root) {
  for (const fs::path& d : {root, root / "data"}) {
    if (!fs::is_directory(d)) continue;
    for (const auto& e : fs::directory_iterator(d)) {
      const std::string name = e.path().filename().string();
      const size_t at = name.rfind(".tmp.");
      if (at == std::string::npos || at + 5 == name.size()) continue;
      if (name.find_first_not_of("0123456789", at + 5) == std::string::npos) fs::remove(e.path());
    }
  }
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

RunLock::RunLock(const std::string& dir) {
  fs::create_directories(dir);
  const std::string path = (fs::path(dir) / "train.lock").string();
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  LLMKIT_CHECK(fd_ >= 0, "cannot create '", path, "': ", std::strerror(errno));
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    if (err == ENOLCK || err == EOPNOTSUPP) return;  // a file system without locks: go on
    ::close(fd_);
    fd_ = -1;
    LLMKIT_CHECK(err != EWOULDBLOCK, "'", dir, "' is in use by another llmkit train process (",
                 path, " is locked)");
    fail("cannot lock '", path, "': ", std::strerror(err));
  }
  remove_stale_temps(dir);
}

RunLock::~RunLock() {
  if (fd_ >= 0) ::close(fd_);  // releases the lock
}

std::string committed_checkpoint(const std::string& run_dir) {
  const fs::path root(run_dir), latest = root / kCheckpoints / kLatest;
  if (fs::exists(latest)) {
    const json j = read_json_file(latest.string());
    LLMKIT_CHECK(j.is_object() && j.contains("dir") && j.at("dir").is_string(), latest.string(),
                 ": no \"dir\" naming the committed checkpoint");
    const std::string name = j.at("dir").get<std::string>();
    LLMKIT_CHECK(name.rfind("step-", 0) == 0 && name.find('/') == std::string::npos,
                 latest.string(), ": \"", name, "\" is not a checkpoint directory name");
    const fs::path dir = root / kCheckpoints / name;
    LLMKIT_CHECK(fs::is_directory(dir), latest.string(), " names '", dir.string(),
                 "', which does not exist");
    return dir.string();
  }
  if (fs::exists(root / "trainer_state.json")) return run_dir;  // the older layout
  return "";
}

int64_t committed_step(const std::string& run_dir) {
  const fs::path latest = fs::path(run_dir) / kCheckpoints / kLatest;
  if (fs::exists(latest)) {
    const json j = read_json_file(latest.string());
    LLMKIT_CHECK(j.contains("step") && j.at("step").is_number_integer(), latest.string(),
                 ": no integer \"step\"");
    return j.at("step").get<int64_t>();
  }
  const std::string dir = committed_checkpoint(run_dir);
  if (dir.empty()) return -1;
  return read_json_file((fs::path(dir) / "trainer_state.json").string()).value("step", int64_t{-1});
}

LrSchedule make_schedule(const TrainConfig& tc) {
  LrSchedule s;
  s.kind = tc.schedule == "cosine"   ? LrSchedule::Kind::Cosine
           : tc.schedule == "linear" ? LrSchedule::Kind::Linear
           : tc.schedule == "constant"
               ? LrSchedule::Kind::Constant
               : (fail("config: schedule '", tc.schedule, "' is not cosine, linear or constant"),
                  LrSchedule::Kind::Constant);
  s.warmup = tc.warmup;
  s.total = tc.schedule_steps;
  s.max_lr = tc.lr;
  s.min_lr = tc.min_lr;
  return s;
}

Checkpoint prepare_run(const TrainRun& run) {
  Checkpoint ck;
  LLMKIT_CHECK(!run.out_dir.empty(), "train: --out DIR is required");
  const fs::path dir(run.out_dir);
  const std::string committed = committed_checkpoint(run.out_dir);
  if (run.resume && committed.empty()) {
    LLMKIT_CHECK(!run.config_path.empty(), "nothing to resume in '", run.out_dir,
                 "': no committed checkpoint (the run stopped before its first one, or never "
                 "started); start it with --config and --data");
    if (!run.quiet)
      std::fprintf(stderr, "note: nothing to resume in %s (no committed checkpoint); starting\n",
                   run.out_dir.c_str());
  }
  const bool resume = run.resume && !committed.empty();
  const std::string state_path = (fs::path(committed) / "trainer_state.json").string();
  json train_json;
  if (resume) {
    ck.resume_dir = committed;
    const json state = read_json_file(state_path);
    ck.model_config = read_json_file((fs::path(committed) / "config.json").string());
    try {
      train_json = state.at("train");
      // Runs saved before schedule_steps existed had a schedule as long as their steps.
      if (!train_json.contains("schedule_steps"))
        train_json["schedule_steps"] = state.at("train").at("steps");
      ck.data = run.data.empty() ? state.at("data").get<std::vector<std::string>>() : run.data;
      ck.pairs = run.pairs.empty() ? state.value("pairs", std::vector<std::string>{}) : run.pairs;
    } catch (const json::exception& e) {
      fail(state_path, ": ", e.what());
    }
  } else {
    LLMKIT_CHECK(committed.empty(), "'", run.out_dir,
                 "' already holds a training run; continue it with --resume or pick another --out");
    LLMKIT_CHECK(!run.config_path.empty(), "train: --config FILE is required");
    const json cfg = read_json_file(run.config_path);
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
    fail(resume ? state_path : run.config_path, ": ", e.what());
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
  if (resume) {
    ck.tokenizer_path = (fs::path(committed) / "tokenizer.json").string();
    ck.tokenizer_json = tokenizer::read_file(ck.tokenizer_path);
    // A kill between a commit and the top-level update left the top one step behind.
    if (committed != run.out_dir) publish_checkpoint(dir, committed);
  } else {
    // The tokenizer learns from everything the model will read: the text and both sides of pairs.
    std::vector<std::string> corpus = ck.data;
    corpus.insert(corpus.end(), ck.pairs.begin(), ck.pairs.end());
    // Checked here, not by the model config: with --tokenizer the tokenizer's size replaces it,
    // and an absurd value (0, -5, 1e30) must not pass silently.
    int64_t vocab64 = -1;
    try {
      models::read_field(ck.model_config, "vocab_size", vocab64);
    } catch (const Error& e) {
      fail(run.config_path, ": ", e.what());
    }
    if (vocab64 == -1 && !ck.model_config.contains("vocab_size"))
      fail(run.config_path, ": \"model\" needs an integer vocab_size");
    if (vocab64 <= 0 || vocab64 > std::numeric_limits<int32_t>::max())
      fail(run.config_path, ": \"model\" vocab_size must be a positive integer below 2^31, got ",
           vocab64);
    const auto vocab = static_cast<int32_t>(vocab64);
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
    ck.tokenizer_path = (dir / "tokenizer.json").string();
    ck.tokenizer_json = tok.to_json() + "\n";
    io::write_file_atomic(ck.tokenizer_path, ck.tokenizer_json);
  }
  if (!ck.data.empty()) {
    const Tokenizer tok = Tokenizer::load(ck.tokenizer_path);
    ck.shards =
        data::prepare_shards(ck.data, tok, (dir / "data").string(), ck.train_config.val_fraction);
  }
  return ck;
}

void save_checkpoint(const std::string& run_dir, const Checkpoint& ck, Task& task, const AdamW& opt,
                     const std::vector<StepRecord>& history) {
  const fs::path root(run_dir), cks = root / kCheckpoints;
  const auto step = static_cast<int64_t>(history.size());
  const std::string name = step_dir_name(step);
  const fs::path tmp = cks / (".tmp-" + name), final_dir = cks / name;
  LLMKIT_CHECK(committed_step(run_dir) != step, "checkpoint: step ", step,
               " is already committed in '", run_dir, "'");
  // 1. The whole set in a directory nobody reads; every file fsynced (io::AtomicFile).
  fs::create_directories(cks);
  fs::remove_all(tmp);  // left by a kill while writing
  fs::create_directory(tmp);
  json hist = json::array();
  for (const auto& r : history) {
    json metrics = json::object();
    for (const auto& [k, v] : r.val_metrics) metrics[k] = v;
    hist.push_back({r.step, r.lr, r.loss, r.val_loss, r.grad_norm, r.tokens_per_sec, metrics});
  }
  const json state = {{"step", step},      {"train", ck.train_config.to_json()}, {"data", ck.data},
                      {"pairs", ck.pairs}, {"task_state", task.state()},         {"history", hist}};
  io::write_file_atomic((tmp / "config.json").string(), task.model_config().dump(2) + "\n",
                        io::Durability::kFile);
  io::save_safetensors((tmp / "model.safetensors").string(), task.checkpoint_tensors(),
                       {{"step", std::to_string(step)}, {"format", "llmkit"}});
  io::save_safetensors((tmp / "optimizer.safetensors").string(), opt.state(),
                       {{"step", std::to_string(opt.step_count())}});
  io::write_file_atomic((tmp / "tokenizer.json").string(), ck.tokenizer_json,
                        io::Durability::kFile);
  io::write_file_atomic((tmp / "trainer_state.json").string(), state.dump(2) + "\n",
                        io::Durability::kFile);
  io::fsync_directory(tmp.string());
  // 2. Renamed into place (a directory of that name was renamed but never committed).
  fs::remove_all(final_dir);
  fs::rename(tmp, final_dir);
  io::fsync_directory(cks.string());
  // 3. The commit: latest.json names the new step, atomically.
  write_json((cks / kLatest).string(), json{{"step", step}, {"dir", name}});
  // 4. The model directory at the top, the curves, and the older checkpoints go.
  if (ck.publish_model) publish_checkpoint(root, final_dir);
  // The curves are logs, derived from the history: atomic, not worth an fsync each.
  io::write_file_atomic((root / "metrics.csv").string(), metrics_csv(history),
                        io::Durability::kNone);
  io::write_file_atomic((root / "loss.svg").string(), loss_svg(history), io::Durability::kNone);
  for (const auto& e : fs::directory_iterator(cks))
    if (e.is_directory() && e.path().filename() != name) fs::remove_all(e.path());
}

namespace {

// Copies the checkpoint's tensors into the task's checkpoint_tensors(): the same set of names,
// each with its shape (Errors name the tensor).
void load_checkpoint_tensors(Task& task, const io::SafetensorsFile& f, const std::string& dir) {
  const nn::NamedTensors mine = task.checkpoint_tensors();
  const std::map<std::string, Tensor> saved(f.tensors.begin(), f.tensors.end());
  for (const auto& [name, t] : mine) {
    const auto it = saved.find(name);
    LLMKIT_CHECK(it != saved.end(), "checkpoint in '", dir, "': model.safetensors has no '", name,
                 "'");
    LLMKIT_CHECK(it->second.shape() == t.shape(), "checkpoint in '", dir, "': tensor '", name,
                 "' has shape ", shape_str(it->second.shape()), ", the model's is ",
                 shape_str(t.shape()));
    NoGradGuard ng;
    Tensor dst = t;
    dst.copy_(it->second);
  }
  LLMKIT_CHECK(saved.size() == mine.size(), "checkpoint in '", dir, "': model.safetensors has ",
               saved.size(), " tensors, the model saves ", mine.size());
}

}  // namespace

void restore_checkpoint(const std::string& checkpoint_dir, Task& task, AdamW& opt,
                        std::vector<StepRecord>& history) {
  const fs::path d(checkpoint_dir);
  const std::string state_path = (d / "trainer_state.json").string();
  const json state = read_json_file(state_path);
  try {
    const int64_t step = state.at("step").get<int64_t>();
    io::SafetensorsFile mf = io::load_safetensors((d / "model.safetensors").string());
    io::SafetensorsFile of = io::load_safetensors((d / "optimizer.safetensors").string());
    LLMKIT_CHECK(mf.metadata["step"] == std::to_string(step), "checkpoint in '", checkpoint_dir,
                 "' is inconsistent: trainer_state.json is at step ", step,
                 " but model.safetensors at step ", mf.metadata["step"]);
    load_checkpoint_tensors(task, mf, checkpoint_dir);
    std::map<std::string, Tensor> moments(of.tensors.begin(), of.tensors.end());
    opt.load_state(moments, std::stoll(of.metadata["step"]));
    LLMKIT_CHECK(state.contains("task_state"), "checkpoint in '", checkpoint_dir,
                 "' has no task_state (written by an older llmkit); start a new run");
    task.load_state(state.at("task_state"));
    history.clear();
    for (const auto& h : state.at("history")) {
      StepRecord r;
      r.step = h.at(0);
      r.lr = h.at(1);
      r.loss = h.at(2);
      r.val_loss = h.at(3);
      r.grad_norm = h.at(4);
      r.tokens_per_sec = h.at(5);
      if (h.size() > 6)
        for (const auto& [k, v] : h.at(6).items()) r.val_metrics[k] = v.get<double>();
      history.push_back(r);
    }
    LLMKIT_CHECK(static_cast<int64_t>(history.size()) == step, "checkpoint in '", checkpoint_dir,
                 "': history has ", history.size(), " steps, state says ", step);
  } catch (const json::exception& e) {
    fail(state_path, ": ", e.what());
  } catch (const std::logic_error& e) {  // std::stoll of a bad optimizer step
    fail("checkpoint in '", checkpoint_dir, "': ", e.what());
  }
}

namespace {

void load_weights(const fs::path& d, nn::Module& model) {
  io::SafetensorsFile f = io::load_safetensors((d / "model.safetensors").string());
  std::map<std::string, Tensor> state(f.tensors.begin(), f.tensors.end());
  if (auto* g = dynamic_cast<models::GPT*>(&model))  // older llama checkpoints: fused names
    state = models::upgrade_gpt_state(g->config(), std::move(state));
  model.load_state_dict(state);
  model.eval();
}

void check_model_dir(const fs::path& d) {
  LLMKIT_CHECK(fs::exists(d / "config.json"), "'", d.string(),
               "' is not a model directory (no config.json)");
}

}  // namespace

std::unique_ptr<models::GPT> load_model(const std::string& dir) {
  models::LoadOptions opt;
  opt.tokenizer = false;
  models::LoadedModel m = models::load(dir, opt);
  LLMKIT_CHECK(m.gpt != nullptr, "'", dir, "' holds a ", m.arch,
               " model; this command needs a decoder (gpt, llama)");
  m.gpt = nullptr;
  return std::unique_ptr<models::GPT>(static_cast<models::GPT*>(m.module.release()));
}

std::unique_ptr<Task> load_task(const std::string& dir, TaskData data, int64_t batch_size) {
  const fs::path d(dir);
  check_model_dir(d);
  const json cfg = read_json_file((d / "config.json").string());
  json train_json = json::object();
  if (fs::exists(d / "trainer_state.json"))
    train_json = read_json_file((d / "trainer_state.json").string()).value("train", json::object());
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

}  // namespace llmkit::train
