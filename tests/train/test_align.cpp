// Instruction and preference tuning (train/align.h) on a tiny GPT saved as an llmkit model
// directory without a chat template (so the plain template is used) and toy data a model can
// learn in a few hundred steps:
//   sft     the loss per assistant token falls by half; packed and unpacked batches give the same
//           evaluation loss (packing changes nothing but speed); the exported model (full) and
//           adapter (lora) load back with the template and give the trained model's logits
//   dpo     the loss at step 0 is ln 2 (policy == reference); training makes the chosen answers
//           win on held-out pairs; the reference cache is written
//   reward  Bradley-Terry training ranks held-out pairs; the result loads as a one-output
//           classifier
// and the errors name the problem.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "common/error_of.h"
#include "llmkit/infer/classify.h"
#include "llmkit/infer/generate.h"
#include "llmkit/io/atomic_file.h"
#include "llmkit/io/safetensors.h"
#include "llmkit/models/gguf_export.h"
#include "llmkit/models/load.h"
#include "llmkit/train/align.h"
#include "llmkit/train/align_tasks.h"
#include "tests/common/temp_dir.h"

using namespace llmkit;
using llmkit::testing::error_of;
using llmkit::testing::TempDir;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

const char* kThings[] = {"sky", "grass", "sun", "snow", "coal", "rose", "sea", "lemon"};
const char* kColours[] = {"blue", "green", "yellow", "white", "black", "red", "blue", "yellow"};
const char* kGood[] = {"great", "lovely", "superb", "fine", "nice"};
const char* kBad[] = {"awful", "boring", "dull", "poor", "bad"};

std::string write(const TempDir& d, const std::string& name, const std::string& text) {
  std::ofstream(d.file(name), std::ios::binary) << text;
  return d.file(name);
}

// n conversations "what colour is the X?" -> "the X is C." (two phrasings, one multi-turn).
std::string sft_jsonl(int n, unsigned seed) {
  std::mt19937 rng(seed);
  std::string s;
  for (int i = 0; i < n; ++i) {
    const int k = static_cast<int>(rng() % 8);
    const std::string q = std::string("what colour is the ") + kThings[k] + "?";
    const std::string a = std::string("the ") + kThings[k] + " is " + kColours[k] + ".";
    if (i % 3 == 0) {
      s += json{{"prompt", q}, {"completion", a}}.dump() + "\n";
    } else {
      json msgs = json::array(
          {{{"role", "user"}, {"content", q}}, {{"role", "assistant"}, {"content", a}}});
      if (i % 3 == 2) {
        const int k2 = static_cast<int>(rng() % 8);
        msgs.push_back(
            {{"role", "user"}, {"content", std::string("and the ") + kThings[k2] + "?"}});
        msgs.push_back(
            {{"role", "assistant"},
             {"content", std::string("the ") + kThings[k2] + " is " + kColours[k2] + "."}});
      }
      s += json{{"messages", msgs}}.dump() + "\n";
    }
  }
  return s;
}

// n pairs: "review:" -> a good word phrase (chosen) vs a bad one (rejected).
std::string pairs_jsonl(int n, unsigned seed) {
  std::mt19937 rng(seed);
  std::string s;
  for (int i = 0; i < n; ++i) {
    const std::string thing = kThings[rng() % 8];
    s += json{{"prompt", "the " + thing + " film was"},
              {"chosen", std::string(kGood[rng() % 5]) + " and " + kGood[rng() % 5]},
              {"rejected", std::string(kBad[rng() % 5]) + " and " + kBad[rng() % 5]}}
             .dump() +
         "\n";
  }
  return s;
}

// A tiny GPT-2-layout model directory (config.json, model.safetensors, tokenizer.json with
// <|endoftext|>), no chat template.
std::string gpt_dir(const TempDir& d) {
  const std::string dir = d.file("gpt");
  fs::create_directories(dir);
  tokenizer::TrainOptions o;
  o.vocab_size = 320;
  o.special_tokens = {"<|endoftext|>"};
  const auto tok = tokenizer::Tokenizer::train_from_text(
      sft_jsonl(200, 9) + pairs_jsonl(100, 9) + "User: Assistant: System:\n", o);
  tok.save(dir + "/tokenizer.json");
  models::GPTConfig c;
  c.n_layer = 2;
  c.n_head = 2;
  c.n_embd = 48;
  c.block_size = 96;
  c.vocab_size = tok.vocab_size();
  io::write_file_atomic(dir + "/config.json", c.to_json().dump(2));
  models::GPT m(c, 11);
  io::save_safetensors(dir + "/model.safetensors", m.named_parameters(), {});
  return dir;
}

struct Toy {
  TempDir d;
  std::string model = gpt_dir(d);
  std::string sft_train = write(d, "sft_train.jsonl", sft_jsonl(240, 1));
  std::string sft_val = write(d, "sft_val.jsonl", sft_jsonl(30, 2));
  std::string pref_train = write(d, "pref_train.jsonl", pairs_jsonl(160, 3));
  std::string pref_val = write(d, "pref_val.jsonl", pairs_jsonl(40, 4));

  template <typename Run>
  Run run(const std::string& command, const std::string& method, const std::string& out,
          int64_t steps, bool pref) {
    Run r;
    r.model_path = model;
    r.train_path = pref ? pref_train : sft_train;
    r.val_path = pref ? pref_val : sft_val;
    r.out_dir = d.file(out);
    r.method = method;
    r.max_len = 64;
    r.train = train::align_defaults(command, method);
    r.train.steps = steps;
    r.train.eval_interval = steps;
    r.quiet = true;
    return r;
  }
};

// The loss per assistant token of `model` on the toy validation conversations.
double sft_val_loss(Toy& t, const std::string& model, bool pack) {
  models::LoadedModel m = models::load(model);
  data::ChatFormat f;
  f.tok = &*m.tokenizer;
  f.tpl = m.chat_template.empty() ? data::plain_template("<|endoftext|>")
                                  : tokenizer::ChatTemplate(m.chat_template, "", "<|endoftext|>");
  f.eos_id = m.tokenizer->token_to_id("<|endoftext|>");
  std::vector<data::SftExample> val;
  for (const auto& c : data::read_conversations(t.sft_val))
    val.push_back(data::tokenize_conversation(c, f, 64));
  std::vector<data::SftExample> train = val;
  train::SftTask task(*m.gpt, train, val, pack, 64, 8, 0, 1, true, json::object());
  return task.evaluate(0).at("loss");
}

}  // namespace

TEST(Sft, PackedAndUnpackedBatchesGiveTheSameLoss) {
  Toy t;
  const double packed = sft_val_loss(t, t.model, true);
  const double unpacked = sft_val_loss(t, t.model, false);
  EXPECT_TRUE(std::isfinite(packed));
  EXPECT_NEAR(packed, unpacked, 1e-4 * unpacked);
}

TEST(Sft, FullFineTuningHalvesTheAssistantLossAndExportsAChatModel) {
  Toy t;
  auto r = t.run<train::SftRun>("sft", "full", "sft_full", 150, false);
  r.train.lr = 3e-3;
  const double before = sft_val_loss(t, t.model, true);
  const train::AlignResult res = train::sft(r);
  ASSERT_EQ(res.export_dir, r.out_dir);
  EXPECT_LT(res.last_eval.at("loss"), 0.5 * before);
  // The exported directory is a model with the plain template saved in it.
  models::LoadedModel m = models::load(r.out_dir);
  ASSERT_NE(m.gpt, nullptr);
  EXPECT_NE(m.chat_template.find("Assistant:"), std::string::npos);
  EXPECT_NEAR(sft_val_loss(t, r.out_dir, true), res.last_eval.at("loss"),
              1e-4 * res.last_eval.at("loss"));
}

TEST(Sft, LoraAdapterLoadsMergedWithTheTrainedLoss) {
  Toy t;
  auto r = t.run<train::SftRun>("sft", "lora", "sft_lora", 60, false);
  r.train.lr = 1e-2;
  const train::AlignResult res = train::sft(r);
  EXPECT_TRUE(fs::exists(r.out_dir + "/adapter_config.json"));
  EXPECT_LT(res.trainable_params, res.all_params / 5);
  const json cfg = json::parse(std::ifstream(r.out_dir + "/adapter_config.json"));
  EXPECT_EQ(cfg.at("task_type"), "CAUSAL_LM");
  EXPECT_NEAR(sft_val_loss(t, r.out_dir, true), res.last_eval.at("loss"),
              1e-4 * res.last_eval.at("loss"));
  EXPECT_LT(res.last_eval.at("loss"), sft_val_loss(t, t.model, true));
}

TEST(Dpo, LossAtStepZeroIsLn2) {
  Toy t;
  models::LoadedModel m = models::load(t.model);
  data::ChatFormat f;
  f.tok = &*m.tokenizer;
  f.tpl = data::plain_template("<|endoftext|>");
  f.eos_id = m.tokenizer->token_to_id("<|endoftext|>");
  std::vector<data::PreferenceExample> ex;
  for (const auto& p : data::read_preferences(t.pref_train, 16))
    ex.push_back(data::tokenize_preference(p, f, true, 64, 32));
  train::DpoTask task(*m.gpt, ex, ex, 0.1, 8, 0, 1, true, json::object());
  task.compute_reference(true);
  const double loss = task.next_loss().item<double>();
  EXPECT_NEAR(loss, std::log(2.0), 1e-6);
  EXPECT_NEAR(task.last_train_metrics().at("rewards/margins"), 0.0, 1e-6);
}

TEST(Dpo, TrainingMakesTheChosenAnswersWin) {
  Toy t;
  auto r = t.run<train::DpoRun>("dpo", "full", "dpo_full", 60, true);
  r.train.lr = 1e-3;
  const train::AlignResult res = train::dpo(r);
  EXPECT_TRUE(fs::exists(r.out_dir + "/reference_logps.json"));
  EXPECT_GE(res.last_eval.at("rewards/accuracies"), 0.9);
  EXPECT_GT(res.last_eval.at("rewards/margins"), 0.5);
  EXPECT_LT(res.last_eval.at("loss"), std::log(2.0));
  EXPECT_TRUE(models::load(r.out_dir).gpt != nullptr);
}

TEST(Reward, BradleyTerryRanksHeldOutPairs) {
  Toy t;
  auto r = t.run<train::RewardRun>("reward", "full", "rm", 80, true);
  r.train.lr = 2e-3;
  const train::AlignResult res = train::reward_train(r);
  EXPECT_GE(res.last_eval.at("accuracy"), 0.9);
  EXPECT_GT(res.last_eval.at("margin"), 0.0);
  models::LoadedModel m = models::load(r.out_dir);
  ASSERT_NE(m.classifier, nullptr);
  EXPECT_EQ(m.classifier->head_config().num_labels(), 1);
}

TEST(Align, ErrorsNameTheProblem) {
  Toy t;
  auto r = t.run<train::DpoRun>("dpo", "full", "bad", 5, true);
  r.beta = 0;
  EXPECT_NE(error_of([&] { train::dpo(r); }).find("beta"), std::string::npos);
  auto s = t.run<train::SftRun>("sft", "full", "bad2", 5, false);
  s.train_path = t.d.file("missing.jsonl");
  EXPECT_NE(error_of([&] { train::sft(s); }).find("missing.jsonl"), std::string::npos)
      << error_of([&] { train::sft(s); });
  auto q = t.run<train::SftRun>("sft", "qlora", "bad3", 5, false);
  EXPECT_NE(error_of([&] { train::sft(q); }).find("qlora"), std::string::npos);
  auto l = t.run<train::SftRun>("sft", "full", "bad4", 5, false);
  l.max_len = 500;
  EXPECT_NE(error_of([&] { train::sft(l); }).find("context"), std::string::npos)
      << error_of([&] { train::sft(l); });
}

// An SFT adapter over a .gguf base: loading it merges the adapter into the module and drops the
// mapped base file, so the inference engine (which prefers a mapped .gguf) runs the tuned
// weights, not the base's.
TEST(Sft, LoraAdapterOverAGgufBaseReachesTheEngine) {
  Toy t;
  {
    models::GgufExportOptions o;
    o.type = kernels::GgmlType::F32;
    models::export_gguf(models::load(t.model), t.d.file("base.gguf"), o);
  }
  auto r = t.run<train::SftRun>("sft", "lora", "sft_gguf", 30, false);
  r.model_path = t.d.file("base.gguf");
  r.train.lr = 1e-2;
  train::sft(r);
  models::LoadedModel tuned = models::load(r.out_dir);
  EXPECT_EQ(tuned.gguf, nullptr);
  models::LoadedModel base = models::load(t.d.file("base.gguf"));
  const std::vector<int32_t> ids = tuned.tokenizer->encode("User: what colour is the sky?\n");
  auto logits = [&](models::LoadedModel& m) {
    auto dec = infer::make_decoder(m);
    dec->reset(true);
    const auto l = dec->next_logits(ids, ids.size());
    return std::vector<float>(l.begin(), l.end());
  };
  const std::vector<float> lt = logits(tuned), lb = logits(base);
  tuned.module->eval();
  NoGradGuard ng;
  const Tensor full = tuned.gpt->forward(Tensor::from_vector(ids, {1, std::ssize(ids)}));
  const std::vector<float> f = full.contiguous().to_vector<float>();
  const size_t V = lt.size();
  double diff_module = 0, diff_base = 0;
  for (size_t v = 0; v < V; ++v) {
    diff_module = std::max(diff_module, double(std::abs(lt[v] - f[f.size() - V + v])));
    diff_base = std::max(diff_base, double(std::abs(lt[v] - lb[v])));
  }
  EXPECT_LT(diff_module, 1e-3);
  EXPECT_GT(diff_base, 1e-2);
}
