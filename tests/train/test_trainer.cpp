// The trainer: loss falls on real text; a run stopped and resumed gives exactly the losses and
// weights of an uninterrupted run; checkpoints and logs exist; bad configs are clear errors.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "llmkit/io/safetensors.h"
#include "llmkit/train/checkpoint.h"
#include "llmkit/train/trainer.h"
#include "tests/common/temp_dir.h"

using namespace llmkit;
namespace fs = std::filesystem;

namespace {

using llmkit::testing::TempDir;

// A small corpus with structure to learn: sentences from a tiny grammar.
std::string write_corpus(const fs::path& dir) {
  const char* subj[] = {"the cat", "a dog", "my friend", "the king", "her brother"};
  const char* verb[] = {"sees", "likes", "finds", "follows", "calls"};
  const char* obj[] = {"the moon.", "a river.", "the old house.", "his sword.", "every bird."};
  std::string text;
  uint64_t x = 12345;
  for (int i = 0; i < 3000; ++i) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    text += std::string(subj[(x >> 33) % 5]) + " " + verb[(x >> 40) % 5] + " " +
            obj[(x >> 50) % 5] + "\n";
  }
  const fs::path p = dir / "corpus.txt";
  std::ofstream(p) << text;
  return p.string();
}

std::string write_config(const fs::path& dir, int steps) {
  nlohmann::json cfg = {{"model",
                         {{"n_layer", 2},
                          {"n_head", 2},
                          {"n_embd", 32},
                          {"block_size", 32},
                          {"vocab_size", 300},
                          {"dropout", 0.1}}},
                        {"train",
                         {{"batch_size", 4},
                          {"steps", steps},
                          {"lr", 3e-3},
                          {"warmup", 2},
                          {"eval_interval", 5},
                          {"eval_batches", 2},
                          {"log_interval", 100},
                          {"seed", 7}}}};
  const fs::path p = dir / "config.json";
  std::ofstream(p) << cfg.dump();
  return p.string();
}

train::TrainRun make_run(const fs::path& root, const std::string& out) {
  train::TrainRun r;
  r.config_path = write_config(root, 12);
  r.data = {write_corpus(root)};
  r.out_dir = (root / out).string();
  r.quiet = true;
  return r;
}

}  // namespace

TEST(Trainer, ResumeAfterStopGivesIdenticalLossesAndWeights) {
  TempDir t;
  train::TrainRun full = make_run(t.path, "full");
  const auto a = train::train_model(full);
  ASSERT_EQ(a.history.size(), 12u);
  EXPECT_LT(a.history.back().loss, a.history.front().loss);

  train::TrainRun part = make_run(t.path, "part");
  part.stop_after = 7;
  const auto b1 = train::train_model(part);
  EXPECT_TRUE(b1.interrupted);
  EXPECT_EQ(b1.step, 7);
  part.stop_after = 0;
  part.resume = true;
  const auto b2 = train::train_model(part);
  ASSERT_EQ(b2.history.size(), 12u);
  for (size_t i = 0; i < 12; ++i)
    EXPECT_EQ(a.history[i].loss, b2.history[i].loss) << "step " << i + 1;
  EXPECT_EQ(a.last_val_loss, b2.last_val_loss);
  auto wa = io::load_safetensors((t.path / "full" / "model.safetensors").string());
  auto wb = io::load_safetensors((t.path / "part" / "model.safetensors").string());
  ASSERT_EQ(wa.tensors.size(), wb.tensors.size());
  for (size_t i = 0; i < wa.tensors.size(); ++i)
    EXPECT_EQ(wa.tensors[i].second.to_vector<float>(), wb.tensors[i].second.to_vector<float>())
        << wa.tensors[i].first;
  for (const char* f : {"config.json", "tokenizer.json", "optimizer.safetensors",
                        "trainer_state.json", "metrics.csv", "loss.svg", "data/train.bin"})
    EXPECT_TRUE(fs::exists(t.path / "part" / f)) << f;
  // The saved model loads for inference and evaluates to the trainer's last validation loss.
  auto model = train::load_model((t.path / "full").string());
  EXPECT_NEAR(train::evaluate_shard(*model, (t.path / "full" / "data" / "val.bin").string(), 4, 2),
              a.last_val_loss, 1e-5);
}

TEST(Trainer, ClearErrors) {
  TempDir t;
  train::TrainRun r = make_run(t.path, "run");
  r.resume = true;
  EXPECT_THROW(train::train_model(r), Error);  // nothing to resume
  r.resume = false;
  nlohmann::json bad = {{"steps", -1}};
  r.train_overrides = &bad;
  EXPECT_THROW(train::train_model(r), Error);
  nlohmann::json unknown = {{"stepz", 3}};
  r.train_overrides = &unknown;
  try {
    train::train_model(r);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("stepz"), std::string::npos);
  }
  r.train_overrides = nullptr;
  r.data = {(t.path / "missing.txt").string()};
  EXPECT_THROW(train::train_model(r), Error);
}
