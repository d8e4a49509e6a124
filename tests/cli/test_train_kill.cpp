// `kill -9` and Ctrl-C of a real `llmkit train` process at random moments (seeded, one moment in
// each slice of the run's duration, so tokenizer training, shard building, training steps and
// checkpoint writes all get hit), then `--resume` to the end: the final weights (the bytes of
// model.safetensors) and the loss history must equal those of an uninterrupted run bit for bit,
// and no kill may lose more than the steps since the last committed checkpoint. Ctrl-C must
// commit the step it stopped at and exit with status 130.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <regex>
#include <sstream>
#include <thread>

#include "common/process.h"
#include "common/temp_dir.h"

using llmkit::testing::ChildProcess;
using llmkit::testing::llmkit_binary;
using llmkit::testing::ProcessResult;
using llmkit::testing::TempDir;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

constexpr int kSteps = 16, kCheckpointInterval = 2;

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A tiny GPT (2 layers x 32) on sentences of a small grammar; a checkpoint every 2 steps.
struct KillFixture {
  TempDir t;
  std::string corpus = t.file("corpus.txt"), config = t.file("config.json");

  KillFixture() {
    const char* subj[] = {"the cat", "a dog", "my friend", "the king", "her brother"};
    const char* verb[] = {"sees", "likes", "finds", "follows", "calls"};
    const char* obj[] = {"the moon.", "a river.", "the old house.", "his sword.", "every bird."};
    std::ofstream text(corpus);
    uint64_t x = 12345;
    for (int i = 0; i < 3000; ++i) {
      x = x * 6364136223846793005ull + 1442695040888963407ull;
      text << subj[(x >> 33) % 5] << ' ' << verb[(x >> 40) % 5] << ' ' << obj[(x >> 50) % 5]
           << '\n';
    }
    const json cfg = {{"model",
                       {{"n_layer", 2},
                        {"n_head", 2},
                        {"n_embd", 32},
                        {"block_size", 32},
                        {"vocab_size", 300},
                        {"dropout", 0.1}}},
                      {"train",
                       {{"batch_size", 4},
                        {"steps", kSteps},
                        {"lr", 3e-3},
                        {"eval_interval", 8},
                        {"eval_batches", 2},
                        {"checkpoint_interval", kCheckpointInterval},
                        {"log_interval", 1},
                        {"seed", 7}}}};
    std::ofstream(config) << cfg.dump();
  }

  // `llmkit train` into out (with --resume when asked; --config and --data stay, so a run killed
  // before its first checkpoint starts again).
  std::vector<std::string> argv(const std::string& out, bool resume) const {
    std::vector<std::string> a = {llmkit_binary(), "train", "--config", config,      "--data",
                                  corpus,          "--out", out,        "--threads", "1"};
    if (resume) a.push_back("--resume");
    return a;
  }
};

// The last "step N/" progress line the process printed (0: none).
int last_printed_step(const std::string& err) {
  static const std::regex re(R"(step +([0-9]+)/)");
  int last = 0;
  for (auto it = std::sregex_iterator(err.begin(), err.end(), re); it != std::sregex_iterator();
       ++it)
    last = std::stoi((*it)[1]);
  return last;
}

int committed_step(const fs::path& run) {
  const fs::path latest = run / "checkpoints" / "latest.json";
  if (!fs::exists(latest)) return -1;
  return json::parse(slurp(latest)).at("step").get<int>();
}

// A checkpoint was being written when the process died: its temporary directory, or a step
// directory renamed into place but not yet committed, is still there.
bool killed_inside_checkpoint_write(const fs::path& run) {
  const fs::path cks = run / "checkpoints";
  if (!fs::is_directory(cks)) return false;
  const int committed = committed_step(run);
  for (const auto& e : fs::directory_iterator(cks)) {
    const std::string name = e.path().filename().string();
    if (name.rfind(".tmp-", 0) == 0) return true;
    if (name.rfind("step-", 0) == 0 && std::stoi(name.substr(5)) != committed) return true;
  }
  return false;
}

// (step, lr, loss, val_loss, grad_norm) of every step: the history minus the timings.
json losses(const fs::path& run) {
  const json state = json::parse(slurp(run / "trainer_state.json"));
  json out = json::array();
  for (const auto& h : state.at("history")) out.push_back({h[0], h[1], h[2], h[3], h[4]});
  return out;
}

struct Outcome {
  ProcessResult first;
  int printed = 0, committed = -1;
  bool inside_write = false;
};

// Starts a run in out, sends `sig` after `delay`, waits, then resumes it to the end.
Outcome interrupt_and_resume(const KillFixture& f, const fs::path& out, int sig,
                             std::chrono::microseconds delay) {
  Outcome o;
  {
    ChildProcess p(f.argv(out.string(), false));
    std::this_thread::sleep_for(delay);
    p.signal(sig);
    o.first = p.wait(120);
  }
  o.printed = last_printed_step(o.first.err);
  o.committed = committed_step(out);
  o.inside_write = killed_inside_checkpoint_write(out);
  const std::vector<std::string> resume = f.argv(out.string(), true);
  ProcessResult r = ChildProcess(resume).wait(120);
  EXPECT_EQ(r.exit_code, 0) << "resume failed: " << r.err;
  return o;
}

}  // namespace

TEST(TrainKill, KillAndCtrlCAtRandomMomentsThenResumeEqualsAnUninterruptedRun) {
  KillFixture f;
  const fs::path ref = f.t.path / "reference";
  const auto t0 = std::chrono::steady_clock::now();
  const ProcessResult full = ChildProcess(f.argv(ref.string(), false)).wait(120);
  const auto run_time = std::chrono::steady_clock::now() - t0;
  ASSERT_EQ(full.exit_code, 0) << full.err;
  ASSERT_EQ(committed_step(ref), kSteps);
  const std::string want_weights = slurp(ref / "model.safetensors");
  const json want_losses = losses(ref);
  ASSERT_EQ(want_losses.size(), static_cast<size_t>(kSteps));

  // One moment drawn in each of `trials` equal slices of [0, 1.05 x the reference's duration].
  std::mt19937_64 rng(20261202);
  const auto span = std::chrono::duration_cast<std::chrono::microseconds>(run_time * 1.05);
  auto moment = [&](int i, int trials) {
    std::uniform_real_distribution<double> u(static_cast<double>(i) / trials,
                                             static_cast<double>(i + 1) / trials);
    return std::chrono::microseconds(static_cast<int64_t>(u(rng) * span.count()));
  };
  int inside_write = 0, before_first = 0;
  const int kills = 7, interrupts = 3;
  for (int i = 0; i < kills; ++i) {
    const fs::path out = f.t.path / ("kill-" + std::to_string(i));
    const auto at = moment(i, kills);
    const Outcome o = interrupt_and_resume(f, out, SIGKILL, at);
    SCOPED_TRACE("SIGKILL after " + std::to_string(at.count() / 1000) + " ms, at step " +
                 std::to_string(o.printed) + ", committed " + std::to_string(o.committed));
    // Killed, or it had already finished.
    EXPECT_TRUE(o.first.term_signal == SIGKILL || o.first.exit_code == 0) << o.first.err;
    EXPECT_LE(o.printed - std::max(o.committed, 0), kCheckpointInterval) << o.first.err;
    inside_write += o.inside_write;
    before_first += o.committed < 0;
    EXPECT_TRUE(slurp(out / "model.safetensors") == want_weights) << "final weights differ";
    EXPECT_EQ(losses(out), want_losses);
  }
  for (int i = 0; i < interrupts; ++i) {
    const fs::path out = f.t.path / ("int-" + std::to_string(i));
    const auto at = moment(i, interrupts);
    const Outcome o = interrupt_and_resume(f, out, SIGINT, at);
    SCOPED_TRACE("SIGINT after " + std::to_string(at.count() / 1000) + " ms, at step " +
                 std::to_string(o.printed) + ", committed " + std::to_string(o.committed));
    if (o.first.exit_code == 130) {
      // Ctrl-C while training: the step it stopped at is committed, nothing is lost.
      EXPECT_EQ(o.committed, o.printed) << o.first.err;
      EXPECT_NE(o.first.err.find("continue with --resume"), std::string::npos) << o.first.err;
    } else {
      // Before training started (the default action ends tokenizer training or shard
      // building) or after it ended.
      EXPECT_TRUE(o.first.term_signal == SIGINT || o.first.exit_code == 0) << o.first.err;
      EXPECT_TRUE(o.committed == -1 || o.committed == kSteps) << o.first.err;
    }
    EXPECT_TRUE(slurp(out / "model.safetensors") == want_weights) << "final weights differ";
    EXPECT_EQ(losses(out), want_losses);
  }
  std::printf(
      "  reference run %.2f s; %d of %d kills landed inside a checkpoint write, %d before "
      "the first checkpoint\n",
      std::chrono::duration<double>(run_time).count(), inside_write, kills, before_first);
}
