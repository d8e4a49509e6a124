// The RNN family's training task (truncated BPTT over parallel streams): the loss falls on a small
// text; a run split in two -- state() saved, everything rebuilt, load_state() -- gives exactly the
// losses of an uninterrupted run; evaluation is deterministic and leaves the training state alone;
// bad objectives and too-small data are clear errors; and `llmkit train` on an rnn config (the
// shared Trainer) trains, stops and resumes bit for bit.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "llmkit/data/shards.h"
#include "llmkit/io/safetensors.h"
#include "llmkit/train/adamw.h"
#include "llmkit/train/task.h"
#include "llmkit/train/trainer.h"
#include "tests/common/temp_dir.h"

using namespace llmkit;
namespace fs = std::filesystem;

namespace {

using llmkit::testing::TempDir;

// Sentences from a tiny grammar (structure an RNN can learn quickly).
std::string corpus_text(int lines) {
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

// Byte-level shards (vocab 128) of the grammar text: train and val.
train::TaskData write_shards(const fs::path& dir) {
  auto bytes = [](const std::string& s) {
    std::vector<int32_t> v(s.begin(), s.end());
    return v;
  };
  train::TaskData d;
  d.train_shard = (dir / "train.bin").string();
  d.val_shard = (dir / "val.bin").string();
  data::write_shard(d.train_shard, bytes(corpus_text(300)), 128);
  data::write_shard(d.val_shard, bytes(corpus_text(20)), 128);
  d.quiet = true;
  return d;
}

nlohmann::json model_json(const std::string& cell, double dropout = 0.1) {
  return {{"arch", "rnn"},    {"cell", cell},       {"n_layer", 2},
          {"n_embd", 32},     {"hidden", 32},       {"vocab_size", 128},
          {"block_size", 16}, {"dropout", dropout}, {"tie_embeddings", true}};
}

train::TrainConfig train_config() {
  train::TrainConfig tc;
  tc.batch_size = 4;
  tc.lr = 1e-2;
  tc.seed = 7;
  return tc;
}

// Runs `steps` AdamW steps of the task; returns the losses.
std::vector<double> run_steps(train::Task& task, train::AdamW& opt, int steps) {
  std::vector<double> losses;
  for (int i = 0; i < steps; ++i) {
    opt.zero_grad();
    Tensor loss = task.next_loss();
    losses.push_back(loss.item<double>());
    loss.backward();
    opt.step();
  }
  return losses;
}

train::AdamW make_opt(train::Task& t) {
  return train::AdamW(t.model().named_parameters(), {.lr = 1e-2});
}

}  // namespace

class RnnTask : public ::testing::TestWithParam<const char*> {};

TEST_P(RnnTask, LossFallsAndResumeIsExact) {
  TempDir dir;
  const train::TaskData data = write_shards(dir.path);
  const train::TrainConfig tc = train_config();
  const int N = 24;  // 24 segments of 16 tokens stay within each stream (~1300 tokens)
  auto full = train::make_rnn_task(model_json(GetParam()), tc, data);
  train::AdamW opt = make_opt(*full);
  const double val0 = full->evaluate(0).at("loss");
  const std::vector<double> a = run_steps(*full, opt, N);
  const double val1 = full->evaluate(0).at("loss");
  EXPECT_LT(val1, val0 - 1.0) << "validation loss " << val0 << " -> " << val1;
  EXPECT_EQ(full->evaluate(3).at("loss"), full->evaluate(3).at("loss"));  // deterministic

  // first half, then save weights + optimizer + task state, rebuild everything, load, second half
  auto first = train::make_rnn_task(model_json(GetParam()), tc, data);
  train::AdamW opt1 = make_opt(*first);
  std::vector<double> b = run_steps(*first, opt1, N / 2);
  first->evaluate(2);  // evaluation in between must not disturb the training streams
  const std::string state = first->state().dump();
  const auto weights = first->model().state_dict();
  std::map<std::string, Tensor> moments;
  for (auto& [k, v] : opt1.state()) moments[k] = v.clone();
  const int64_t opt_steps = opt1.step_count();
  first.reset();

  auto second = train::make_rnn_task(model_json(GetParam()), tc, data);
  second->model().load_state_dict(weights);
  train::AdamW opt2 = make_opt(*second);
  opt2.load_state(moments, opt_steps);
  second->load_state(nlohmann::json::parse(state));
  const std::vector<double> b2 = run_steps(*second, opt2, N - N / 2);
  b.insert(b.end(), b2.begin(), b2.end());
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_EQ(a[i], b[i]) << "step " << i + 1;
}

INSTANTIATE_TEST_SUITE_P(Cells, RnnTask, ::testing::Values("lstm", "gru"));

TEST(RnnTaskErrors, ObjectiveAndDataAreChecked) {
  TempDir dir;
  const train::TaskData data = write_shards(dir.path);
  train::TrainConfig tc = train_config();
  tc.objective = "mlm";
  try {
    train::make_rnn_task(model_json("lstm"), tc, data);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("objective clm"), std::string::npos) << e.what();
  }
  tc.objective = "clm";
  tc.batch_size = 4000;  // more streams than the data can fill
  EXPECT_THROW(train::make_rnn_task(model_json("lstm"), tc, data), Error);
  tc.batch_size = 4;
  auto task = train::make_rnn_task(model_json("gru"), tc, data);
  nlohmann::json s = task->state();
  s["stream_stride"] = 3;
  EXPECT_THROW(task->load_state(s), Error);
}

// Rolling over the end of the streams restarts them (zero state) and keeps training finite.
TEST(RnnTaskErrors, StreamsWrapAround) {
  TempDir dir;
  train::TaskData data = write_shards(dir.path);
  std::vector<int32_t> small(200, 5);
  data::write_shard(data.train_shard, small, 128);
  train::TrainConfig tc = train_config();
  auto task = train::make_rnn_task(model_json("lstm", 0.0), tc, data);  // 49 tokens per stream
  std::vector<double> l;
  for (int i = 0; i < 7; ++i) l.push_back(task->next_loss().item<double>());
  EXPECT_EQ(l[0], l[3]);  // step 4 starts the streams again from a zero state, same weights
  EXPECT_EQ(l[1], l[4]);
}

// `llmkit train --config configs/rnn-*.json`: the shared Trainer with the rnn task; a run stopped
// after 5 steps and resumed equals an uninterrupted one.
TEST(RnnTaskErrors, TrainerTrainsAndResumesTheRnnConfig) {
  const char* src = std::getenv("LLMKIT_SOURCE_DIR");
  if (src == nullptr) GTEST_SKIP() << "LLMKIT_SOURCE_DIR not set (run through ctest)";
  TempDir dir;
  std::ofstream(dir.path / "corpus.txt") << corpus_text(1500);
  nlohmann::json over = {{"steps", 10},       {"batch_size", 4},     {"eval_interval", 5},
                         {"eval_batches", 2}, {"log_interval", 100}, {"warmup", 2}};
  auto make = [&](const std::string& out) {
    train::TrainRun r;
    r.config_path = std::string(src) + "/configs/rnn-lstm-tiny.json";
    r.data = {(dir.path / "corpus.txt").string()};
    r.out_dir = (dir.path / out).string();
    r.train_overrides = &over;
    r.quiet = true;
    return r;
  };
  train::TrainRun full = make("full");
  const auto a = train::train_model(full);
  ASSERT_EQ(a.history.size(), 10u);
  EXPECT_LT(a.history.back().loss, a.history.front().loss);
  train::TrainRun part = make("part");
  part.stop_after = 5;
  EXPECT_TRUE(train::train_model(part).interrupted);
  part.stop_after = 0;
  part.resume = true;
  const auto b = train::train_model(part);
  ASSERT_EQ(b.history.size(), 10u);
  for (size_t i = 0; i < 10; ++i)
    EXPECT_EQ(a.history[i].loss, b.history[i].loss) << "step " << i + 1;
  EXPECT_EQ(a.last_val_loss, b.last_val_loss);
}
