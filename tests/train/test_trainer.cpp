// The trainer: loss falls on real text; a run stopped and resumed gives exactly the losses and
// weights of an uninterrupted run, also with `--steps N` (the schedule keeps its length);
// checkpoints are one committed step directory; errors keep the last checkpoint and an error in
// evaluation commits one first; data too small fails before step 1; bad configs are clear
// errors. (A real `kill -9` / Ctrl-C of the CLI: tests/cli/test_train_kill.cpp.)
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "llmkit/data/pairs.h"
#include "llmkit/io/safetensors.h"
#include "llmkit/train/checkpoint.h"
#include "llmkit/train/task.h"
#include "llmkit/train/trainer.h"
#include "tests/common/temp_dir.h"

using namespace llmkit;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

using llmkit::testing::TempDir;

// Sentences from a tiny grammar (structure to learn); `lines` of them.
std::string grammar_text(int lines) {
  const char* subj[] = {"the cat", "a dog", "my friend", "the king", "her brother"};
  const char* verb[] = {"sees", "likes", "finds", "follows", "calls"};
  const char* obj[] = {"the moon.", "a river.", "the old house.", "his sword.", "every bird."};
  std::string text;
  uint64_t x = 12345;
  for (int i = 0; i < lines; ++i) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    text += std::string(subj[(x >> 33) % 5]) + " " + verb[(x >> 40) % 5] + " " +
            obj[(x >> 50) % 5] + "\n";
  }
  return text;
}

std::string write_file(const fs::path& p, const std::string& text) {
  std::ofstream(p) << text;
  return p.string();
}

json tiny_gpt() {
  return {{"n_layer", 2},     {"n_head", 2},       {"n_embd", 32},
          {"block_size", 32}, {"vocab_size", 300}, {"dropout", 0.1}};
}

json tiny_train(int steps) {
  return {{"batch_size", 4},    {"steps", steps},    {"lr", 3e-3},          {"warmup", 2},
          {"eval_interval", 5}, {"eval_batches", 2}, {"log_interval", 100}, {"seed", 7}};
}

// A run of the tiny GPT on the grammar text in root/out. The text, config and tokenizer are
// shared by every run under root (the tokenizer is trained once, then given with --tokenizer),
// so runs differ only in what a test changes.
struct Runs {
  TempDir t;
  std::string corpus = write_file(t.path / "corpus.txt", grammar_text(3000));
  std::string config = write_file(t.path / "config.json",
                                  json{{"model", tiny_gpt()}, {"train", tiny_train(12)}}.dump());
  std::string tokenizer;
  json over = json::object();

  train::TrainRun make(const std::string& out) {
    train::TrainRun r;
    r.config_path = config;
    r.data = {corpus};
    r.out_dir = (t.path / out).string();
    r.tokenizer_path = tokenizer;
    r.train_overrides = &over;
    r.quiet = true;
    return r;
  }
  std::string dir(const std::string& out) const { return (t.path / out).string(); }
  // The uninterrupted 12-step reference run ("full"), which also makes the shared tokenizer.
  train::TrainResult full() {
    const auto res = train::train_model(make("full"));
    tokenizer = dir("full") + "/tokenizer.json";
    return res;
  }
};

std::vector<double> losses(const train::TrainResult& r) {
  std::vector<double> l;
  for (const auto& s : r.history) l.push_back(s.loss);
  return l;
}

std::vector<double> lrs(const train::TrainResult& r) {
  std::vector<double> l;
  for (const auto& s : r.history) l.push_back(s.lr);
  return l;
}

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The weights of a run directory's model.safetensors, by name.
std::map<std::string, std::vector<float>> weights(const std::string& dir) {
  std::map<std::string, std::vector<float>> w;
  for (auto& [n, t] : io::load_safetensors(dir + "/model.safetensors").tensors)
    w[n] = t.to_vector<float>();
  return w;
}

// Wraps a real Task and throws from next_loss or evaluate at the given call (1-based; 0: never).
class FaultyTask : public train::Task {
 public:
  FaultyTask(std::unique_ptr<train::Task> inner, int fail_step, int fail_eval)
      : inner_(std::move(inner)), fail_step_(fail_step), fail_eval_(fail_eval) {}
  nn::Module& model() override { return inner_->model(); }
  json model_config() const override { return inner_->model_config(); }
  double tokens_per_batch() const override { return inner_->tokens_per_batch(); }
  Tensor next_loss() override {
    if (++steps_ == fail_step_) fail("injected training error");
    return inner_->next_loss();
  }
  train::Metrics evaluate(int64_t max_batches) override {
    if (++evals_ == fail_eval_) fail("injected evaluation error");
    return inner_->evaluate(max_batches);
  }
  json state() const override { return inner_->state(); }
  void load_state(const json& s) override { inner_->load_state(s); }
  std::vector<Tensor> embedding_tables() const override { return inner_->embedding_tables(); }

 private:
  std::unique_ptr<train::Task> inner_;
  int fail_step_, fail_eval_, steps_ = 0, evals_ = 0;
};

auto faulty(int fail_step, int fail_eval, int* built = nullptr) {
  return [=](const json& mc, const train::TrainConfig& tc, const train::TaskData& td) {
    if (built) ++*built;
    return std::make_unique<FaultyTask>(train::make_task(mc, tc, td), fail_step, fail_eval);
  };
}

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST(Trainer, ResumeAfterStopGivesIdenticalLossesAndWeights) {
  Runs runs;
  const auto a = runs.full();
  ASSERT_EQ(a.history.size(), 12u);
  EXPECT_LT(a.history.back().loss, a.history.front().loss);

  train::TrainRun part = runs.make("part");
  part.stop_after = 7;
  const auto b1 = train::train_model(part);
  EXPECT_TRUE(b1.interrupted);
  EXPECT_EQ(b1.step, 7);
  EXPECT_EQ(train::committed_step(runs.dir("part")), 7);
  part.stop_after = 0;
  part.resume = true;
  const auto b2 = train::train_model(part);
  ASSERT_EQ(b2.history.size(), 12u);
  EXPECT_EQ(losses(a), losses(b2));
  EXPECT_EQ(a.last_val_loss, b2.last_val_loss);
  EXPECT_EQ(weights(runs.dir("full")), weights(runs.dir("part")));
  // The saved model loads for inference and evaluates to the trainer's last validation loss.
  auto model = train::load_model(runs.dir("full"));
  EXPECT_NEAR(train::evaluate_shard(*model, runs.dir("full") + "/data/val.bin", 4, 2),
              a.last_val_loss, 1e-5);
}

// checkpoints/latest.json names the one step directory left; it holds the whole set, all of the
// same step; the top-level model directory is that step.
TEST(Trainer, CheckpointIsOneCommittedStepDirectory) {
  Runs runs;
  runs.over = {{"checkpoint_interval", 3}, {"steps", 7}};
  train::TrainRun r = runs.make("run");
  train::train_model(r);
  const fs::path root(runs.dir("run")), cks = root / "checkpoints";
  const json latest = json::parse(slurp((cks / "latest.json").string()));
  EXPECT_EQ(latest.at("step"), 7);
  EXPECT_EQ(latest.at("dir"), "step-00000007");
  std::vector<std::string> entries;
  for (const auto& e : fs::directory_iterator(cks)) entries.push_back(e.path().filename());
  std::sort(entries.begin(), entries.end());
  EXPECT_EQ(entries, (std::vector<std::string>{"latest.json", "step-00000007"}));
  const fs::path step = cks / "step-00000007";
  for (const char* f : {"config.json", "model.safetensors", "optimizer.safetensors",
                        "trainer_state.json", "tokenizer.json"})
    EXPECT_TRUE(fs::exists(step / f)) << f;
  EXPECT_EQ(io::load_safetensors((step / "model.safetensors").string()).metadata["step"], "7");
  EXPECT_EQ(io::load_safetensors((step / "optimizer.safetensors").string()).metadata["step"], "7");
  EXPECT_EQ(json::parse(slurp((step / "trainer_state.json").string())).at("step"), 7);
  for (const char* f : {"config.json", "model.safetensors", "tokenizer.json", "trainer_state.json"})
    EXPECT_EQ(slurp((root / f).string()), slurp((step / f).string())) << f;
  for (const char* f : {"metrics.csv", "loss.svg", "data/train.bin", "data/val.bin"})
    EXPECT_TRUE(fs::exists(root / f)) << f;
  EXPECT_FALSE(fs::exists(root / "optimizer.safetensors"));
}

// --resume --steps N with N the configured steps equals the uninterrupted run; a larger N keeps
// the schedule (lr at min_lr after its end) and is the same whichever way it was reached; a
// smaller N stops early on the same schedule.
TEST(Trainer, ResumeWithStepsContinuesTheSameRun) {
  Runs runs;
  const auto full = runs.full();
  const double min_lr = train::TrainConfig{}.min_lr;

  train::TrainRun r = runs.make("to12");
  r.stop_after = 4;
  train::train_model(r);
  r.stop_after = 0;
  r.resume = true;
  runs.over = {{"steps", 12}};
  EXPECT_EQ(losses(train::train_model(r)), losses(full));

  runs.over = {{"steps", 16}};
  train::TrainRun longer = runs.make("full");
  longer.resume = true;
  const auto a = train::train_model(longer);  // 12 done, then 4 more
  ASSERT_EQ(a.history.size(), 16u);
  for (size_t i = 0; i < 12; ++i) EXPECT_EQ(a.history[i].loss, full.history[i].loss) << i;
  for (size_t i = 12; i < 16; ++i) EXPECT_EQ(a.history[i].lr, min_lr) << i;
  EXPECT_LT(full.history[11].lr, train::TrainConfig{}.lr);  // the cosine had decayed
  // Stopped at 6 (of 12), then --steps 16: the same 16 steps.
  runs.over = json::object();
  train::TrainRun other = runs.make("other");
  other.stop_after = 6;
  train::train_model(other);
  other.stop_after = 0;
  other.resume = true;
  runs.over = {{"steps", 16}};
  const auto b = train::train_model(other);
  EXPECT_EQ(losses(a), losses(b));
  EXPECT_EQ(lrs(a), lrs(b));
  EXPECT_EQ(weights(runs.dir("full")), weights(runs.dir("other")));
  // --steps 8 from step 3: the first 8 steps of the 12-step run, schedule not re-stretched.
  runs.over = json::object();
  train::TrainRun shorter = runs.make("shorter");
  shorter.stop_after = 3;
  train::train_model(shorter);
  shorter.stop_after = 0;
  shorter.resume = true;
  runs.over = {{"steps", 8}};
  const auto c = train::train_model(shorter);
  ASSERT_EQ(c.history.size(), 8u);
  for (size_t i = 0; i < 8; ++i) {
    EXPECT_EQ(c.history[i].loss, full.history[i].loss) << i;
    EXPECT_EQ(c.history[i].lr, full.history[i].lr) << i;
  }
  // A finished run resumed without more steps has nothing to do and changes nothing.
  runs.over = json::object();
  const std::string before = slurp(runs.dir("shorter") + "/model.safetensors");
  EXPECT_EQ(train::train_model(shorter).step, 8);
  EXPECT_EQ(slurp(runs.dir("shorter") + "/model.safetensors"), before);
}

TEST(Trainer, DefaultWarmupFitsShortRuns) {
  Runs runs;
  json cfg = {{"model", tiny_gpt()}, {"train", tiny_train(12)}};
  cfg["train"].erase("warmup");
  runs.config = write_file(runs.t.path / "nowarmup.json", cfg.dump());
  runs.over = {{"steps", 20}};
  const auto res = train::train_model(runs.make("run"));
  // warm-up min(100, 20 / 10) = 2 steps: lr/2, lr, then the cosine down.
  EXPECT_DOUBLE_EQ(res.history[0].lr, 3e-3 / 2);
  EXPECT_DOUBLE_EQ(res.history[1].lr, 3e-3);
  EXPECT_DOUBLE_EQ(res.history[2].lr, 3e-3);  // the cosine starts at the top
  EXPECT_LT(res.history[3].lr, 3e-3);
  const json state = json::parse(slurp(runs.dir("run") + "/trainer_state.json"));
  EXPECT_EQ(state.at("train").at("warmup"), 2);
  EXPECT_EQ(state.at("train").at("schedule_steps"), 20);
}

// An error in training after a checkpoint leaves that checkpoint whole: resuming from it gives
// the uninterrupted run.
TEST(Trainer, ErrorAfterACheckpointKeepsIt) {
  Runs runs;
  const auto full = runs.full();
  runs.over = {{"checkpoint_interval", 2}};
  train::TrainRun r = runs.make("run");
  r.task_factory = faulty(/*fail_step=*/8, 0);
  EXPECT_NE(error_of([&] { train::train_model(r); }).find("injected training error"),
            std::string::npos);
  EXPECT_EQ(train::committed_step(runs.dir("run")), 6);
  EXPECT_EQ(io::load_safetensors(runs.dir("run") + "/model.safetensors").metadata["step"], "6");
  r.task_factory = nullptr;
  r.resume = true;
  EXPECT_EQ(losses(train::train_model(r)), losses(full));
  EXPECT_EQ(weights(runs.dir("run")), weights(runs.dir("full")));
}

// An error thrown by evaluation first commits a checkpoint of the step just trained.
TEST(Trainer, EvaluationErrorCommitsACheckpointFirst) {
  Runs runs;
  const auto full = runs.full();
  train::TrainRun r = runs.make("run");
  r.task_factory = faulty(0, /*fail_eval=*/2);  // the evaluation at step 10 (eval_interval 5)
  EXPECT_NE(error_of([&] { train::train_model(r); }).find("injected evaluation error"),
            std::string::npos);
  EXPECT_EQ(train::committed_step(runs.dir("run")), 10);
  r.task_factory = nullptr;
  r.resume = true;
  EXPECT_EQ(losses(train::train_model(r)), losses(full));
  EXPECT_EQ(weights(runs.dir("run")), weights(runs.dir("full")));
}

// A run directory of the older layout (every file at the top, no checkpoints/) resumes.
TEST(Trainer, ResumesARunDirectoryOfTheOlderLayout) {
  Runs runs;
  const auto full = runs.full();
  train::TrainRun r = runs.make("old");
  r.stop_after = 6;
  train::train_model(r);
  const fs::path root(runs.dir("old"));
  for (const auto& e : fs::directory_iterator(root / "checkpoints" / "step-00000006")) {
    fs::remove(root / e.path().filename());  // model.safetensors is a hard link to the step's
    fs::copy_file(e.path(), root / e.path().filename());
  }
  fs::remove_all(root / "checkpoints");
  EXPECT_EQ(train::committed_checkpoint(root.string()), root.string());
  EXPECT_EQ(train::committed_step(root.string()), 6);
  // Older states have no schedule_steps: their schedule was as long as their steps (12), also
  // when --steps asks for more.
  json state = json::parse(slurp((root / "trainer_state.json").string()));
  state["train"].erase("schedule_steps");
  std::ofstream((root / "trainer_state.json").string()) << state.dump();
  r.stop_after = 0;
  r.resume = true;
  runs.over = {{"steps", 14}};
  const auto res = train::train_model(r);
  ASSERT_EQ(res.history.size(), 14u);
  for (size_t i = 0; i < 12; ++i) EXPECT_EQ(res.history[i].loss, full.history[i].loss) << i;
  EXPECT_EQ(res.history[12].lr, train::TrainConfig{}.min_lr);
  EXPECT_EQ(train::committed_step(root.string()), 14);
  EXPECT_FALSE(fs::exists(root / "optimizer.safetensors"));  // now in the step directory
}

// Nothing committed yet (a kill during tokenizer training or shard building): --resume with the
// config starts the run; without it, it says there is nothing to resume.
TEST(Trainer, ResumeWithNothingCommitted) {
  Runs runs;
  const auto full = runs.full();
  fs::create_directories(runs.dir("run") + "/data");
  fs::copy_file(runs.tokenizer, runs.dir("run") + "/tokenizer.json");  // as a kill leaves it
  train::TrainRun r = runs.make("run");
  r.resume = true;
  r.config_path.clear();
  EXPECT_NE(error_of([&] { train::train_model(r); }).find("nothing to resume"), std::string::npos);
  r.config_path = runs.config;
  EXPECT_EQ(losses(train::train_model(r)), losses(full));
}

TEST(Trainer, OneProcessPerRunDirectory) {
  Runs runs;
  fs::create_directories(runs.dir("run"));
  const train::RunLock held(runs.dir("run"));
  EXPECT_NE(error_of([&] { train::train_model(runs.make("run")); }).find("in use"),
            std::string::npos);
}

// Text too small for one batch or one evaluation fails before step 1 (no step trained, nothing
// committed) with the amounts needed, for every family and objective.
TEST(Trainer, DataTooSmallFailsBeforeStepOne) {
  TempDir t;
  const std::string small = write_file(t.path / "small.txt", grammar_text(25));  // ~330 tokens
  const std::string tiny = write_file(t.path / "tiny.txt", grammar_text(3));
  std::string tsv;  // two pairs, neither in the held-out split (a hash of the source)
  for (int i = 0, n = 0; n < 2; ++i) {
    const data::TextPair p{"a cat number " + std::to_string(i), "yes"};
    if (!data::is_held_out(p, 0.05)) {
      tsv += p.source + "\t" + p.target + "\n";
      ++n;
    }
  }
  const std::string pairs = write_file(t.path / "pairs.tsv", tsv);
  const json t5 = {{"arch", "t5"},         {"vocab_size", 300}, {"n_layer", 1},
                   {"n_decoder_layer", 1}, {"n_head", 2},       {"n_embd", 32},
                   {"d_kv", 16},           {"ffn_hidden", 64},  {"block_size", 32},
                   {"pad_id", 0},          {"eos_id", 1},       {"decoder_start_id", 0}};
  json bart = t5;
  bart["arch"] = "bart";
  bart["pos_encoding"] = "learned";
  struct Case {
    const char* name;
    json model;
    std::string objective, data, pairs, want;
  };
  json bert = tiny_gpt();
  bert["arch"] = "bert";
  json rnn = {{"arch", "rnn"}, {"cell", "lstm"},    {"n_layer", 1},    {"n_embd", 32},
              {"hidden", 32},  {"vocab_size", 300}, {"block_size", 32}};
  const std::vector<Case> cases = {
      {"gpt", tiny_gpt(), "clm", small, "", "needs 33 to evaluate (one window of block_size + 1"},
      {"rnn", rnn, "clm", tiny, "", "needs 129 for one batch (batch_size 4 streams"},
      {"bert", bert, "mlm", small, "", "needs 30 to evaluate (one window of block_size - 2"},
      {"t5", t5, "span", small, "", "to evaluate (one span-corruption window of"},
      {"bart", bart, "infill", small, "", "needs 31 to evaluate (one infilling window"},
      {"t5 translate", t5, "translate", "", pairs, "none of the 2 pairs falls in the held-out"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    const fs::path out = t.path / (std::string("run-") + c.name);
    const std::string cfg = write_file(
        t.path / "cfg.json",
        json{{"model", c.model}, {"train", {{"objective", c.objective}, {"batch_size", 4}}}}
            .dump());
    train::TrainRun r;
    r.config_path = cfg;
    if (!c.data.empty()) r.data = {c.data};
    if (!c.pairs.empty()) r.pairs = {c.pairs};
    r.out_dir = out.string();
    r.quiet = true;
    int built = 0;
    r.task_factory = faulty(1, 1, &built);  // any step or evaluation would throw "injected"
    const std::string err = error_of([&] { train::train_model(r); });
    EXPECT_NE(err.find(c.want), std::string::npos) << err;
    EXPECT_NE(err.find("data: "), std::string::npos) << err;
    if (!c.data.empty()) {
      EXPECT_NE(err.find("give at least"), std::string::npos) << err;
    }
    EXPECT_EQ(err.find("injected"), std::string::npos) << err;
    EXPECT_EQ(train::committed_step(out.string()), -1);
  }
}

TEST(Trainer, ClearErrors) {
  Runs runs;
  train::TrainRun r = runs.make("run");
  r.resume = true;
  r.config_path.clear();
  EXPECT_THROW(train::train_model(r), Error);  // nothing to resume
  r.config_path = runs.config;
  r.resume = false;
  json bad = {{"steps", -1}};
  r.train_overrides = &bad;
  EXPECT_THROW(train::train_model(r), Error);
  json unknown = {{"stepz", 3}};
  r.train_overrides = &unknown;
  EXPECT_NE(error_of([&] { train::train_model(r); }).find("stepz"), std::string::npos);
  r.train_overrides = nullptr;
  r.data = {(runs.t.path / "missing.txt").string()};
  EXPECT_THROW(train::train_model(r), Error);
  // A directory that holds a run refuses a new one.
  runs.full();
  EXPECT_NE(error_of([&] { train::train_model(runs.make("full")); }).find("already holds"),
            std::string::npos);
}
