// The encoder-decoder Task: the loss falls for span corruption, text infilling and translation
// on small corpora; the data/dropout stream resumes exactly from state(); evaluation is
// deterministic; translate() and the held-out BLEU report run; bad setups are clear errors.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "llmkit/data/shards.h"
#include "llmkit/train/adamw.h"
#include "llmkit/train/task.h"
#include "llmkit/train/trainer.h"
#include "llmkit/train/translate.h"
#include "tests/common/temp_dir.h"

using namespace llmkit;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

using llmkit::testing::TempDir;

uint64_t lcg(uint64_t& x) {
  x = x * 6364136223846793005ull + 1442695040888963407ull;
  return x >> 33;
}

std::string sentences(int n) {
  const char* subj[] = {"the cat", "a dog", "my friend", "the king", "her brother"};
  const char* verb[] = {"sees", "likes", "finds", "follows", "calls"};
  const char* obj[] = {"the moon.", "a river.", "the old house.", "his sword.", "every bird."};
  std::string text;
  uint64_t x = 12345;
  for (int i = 0; i < n; ++i)
    text += std::string(subj[lcg(x) % 5]) + " " + verb[lcg(x) % 5] + " " + obj[lcg(x) % 5] + "\n";
  return text;
}

// A toy English -> Korean corpus from a word-for-word grammar (subject-object-verb in Korean).
std::string toy_pairs(int n) {
  const char* s_en[] = {"the cat", "the dog", "my friend", "the king"};
  const char* s_ko[] = {"고양이가", "개가", "내 친구가", "왕이"};
  const char* o_en[] = {"the moon", "a river", "the house", "a bird"};
  const char* o_ko[] = {"달을", "강을", "집을", "새를"};
  const char* v_en[] = {"sees", "likes", "finds"};
  const char* v_ko[] = {"본다", "좋아한다", "찾는다"};
  std::string tsv;
  uint64_t x = 777;
  for (int i = 0; i < n; ++i) {
    const auto s = lcg(x) % 4, v = lcg(x) % 3, o = lcg(x) % 4;
    tsv += std::string(s_en[s]) + " " + v_en[v] + " " + o_en[o] + ".\t" + s_ko[s] + " " + o_ko[o] +
           " " + v_ko[v] + ".\n";
  }
  return tsv;
}

json tiny_model(const std::string& arch, int64_t vocab) {
  return {{"arch", arch},     {"vocab_size", vocab}, {"n_layer", 1}, {"n_decoder_layer", 1},
          {"n_head", 2},      {"n_embd", 32},        {"d_kv", 16},   {"ffn_hidden", 64},
          {"block_size", 32}, {"pad_id", 0},         {"eos_id", 1},  {"decoder_start_id", 0}};
}

train::TrainConfig train_config(const std::string& objective) {
  train::TrainConfig tc;
  tc.objective = objective;
  tc.batch_size = 8;
  tc.seed = 7;
  tc.val_fraction = 0.1;
  if (objective == "infill") tc.noise_density = 0.3;
  return tc;
}

// Everything a task needs: a tokenizer with the family's special tokens, shards, a pairs file.
struct Fixture {
  TempDir dir;
  std::optional<tokenizer::Tokenizer> tok;
  train::TaskData data;

  Fixture(const json& model, const train::TrainConfig& tc) {
    const std::string text = sentences(400), pairs = toy_pairs(400);
    std::ofstream(dir.path / "text.txt") << text;
    std::ofstream(dir.path / "pairs.tsv") << pairs;
    tokenizer::TrainOptions opt;
    opt.vocab_size = 400;
    opt.special_tokens = train::t5_special_tokens(model, tc);
    tok.emplace(tokenizer::Tokenizer::train_from_text(text + pairs, opt));
    const std::vector<std::string> files = {(dir.path / "text.txt").string()};
    const auto shards = data::prepare_shards(files, *tok, (dir.path / "data").string(), 0.1);
    data.train_shard = shards.train;
    data.val_shard = shards.val;
    data.pairs = {(dir.path / "pairs.tsv").string()};
    data.tokenizer = &*tok;
    data.quiet = true;
  }
};

// Trains `steps` AdamW steps; returns (first eval loss, last eval loss).
std::pair<double, double> train_steps(train::Task& task, int steps, double lr) {
  train::AdamW opt(task.model().named_parameters(), {.lr = lr, .weight_decay = 0.0});
  const double before = task.evaluate(4).at("loss");
  for (int s = 0; s < steps; ++s) {
    opt.zero_grad();
    task.next_loss().backward();
    opt.step();
  }
  return {before, task.evaluate(4).at("loss")};
}

}  // namespace

TEST(T5Task, SpanCorruptionLossFalls) {
  const json m = tiny_model("t5", 400);
  const auto tc = train_config("span");
  Fixture f(m, tc);
  auto task = train::make_t5_task(m, tc, f.data);
  auto [before, after] = train_steps(*task, 60, 3e-3);
  std::printf("  span eval loss %.3f -> %.3f\n", before, after);
  EXPECT_LT(after, before * 0.7);
  EXPECT_EQ(task->evaluate(4).at("loss"), after);  // deterministic
}

TEST(T5Task, BartInfillingLossFalls) {
  const json m = {{"arch", "bart"},       {"vocab_size", 400}, {"n_layer", 1},
                  {"n_decoder_layer", 1}, {"n_head", 2},       {"n_embd", 32},
                  {"ffn_hidden", 64},     {"block_size", 32},  {"decoder_start_id", 1}};
  const auto tc = train_config("infill");
  Fixture f(m, tc);
  auto task = train::make_t5_task(m, tc, f.data);
  auto [before, after] = train_steps(*task, 60, 3e-3);
  std::printf("  infill eval loss %.3f -> %.3f\n", before, after);
  EXPECT_LT(after, before * 0.7);
}

TEST(T5Task, TranslationLearnsAndScores) {
  const json m = tiny_model("t5", 400);
  const auto tc = train_config("translate");
  Fixture f(m, tc);
  auto task = train::make_t5_task(m, tc, f.data);
  auto [before, after] = train_steps(*task, 80, 3e-3);
  std::printf("  translate eval loss %.3f -> %.3f\n", before, after);
  EXPECT_LT(after, before * 0.5);
  // Held-out pairs through the cached greedy decoder and BLEU / chrF.
  std::vector<data::TextPair> all = data::read_pairs(f.data.pairs[0]), tr, held;
  data::split_pairs(all, tc.val_fraction, tr, held);
  ASSERT_FALSE(held.empty());
  held.resize(std::min<size_t>(held.size(), 16));
  auto& model = dynamic_cast<models::T5&>(task->model());
  const auto r = train::evaluate_translation(model, *f.tok, held, {.batch_size = 5});
  std::printf("  held-out BLEU %.1f chrF %.1f; \"%s\" -> \"%s\"\n", r.bleu.bleu, r.chrf,
              held[0].source.c_str(), r.hypotheses[0].c_str());
  EXPECT_EQ(r.pairs, static_cast<int64_t>(held.size()));
  EXPECT_GT(r.chrf, 5.0);
  // Batched translation equals one-by-one translation (padding does not leak).
  const auto one = train::translate(model, *f.tok, {held[1].source}, {.batch_size = 1});
  EXPECT_EQ(one[0], r.hypotheses[1]);
}

TEST(T5Task, NoRepeatNgramPick) {
  std::vector<float> logits = {0.0f, 3.0f, 2.0f, 1.0f};  // token 1 always wins unbanned
  std::vector<int32_t> h = {1, 2, 1};
  EXPECT_EQ(train::pick_no_repeat(logits, h, 2), 1);  // (1, 2) seen bans 2; (1, 1) is new
  EXPECT_EQ(h.back(), 1);
  std::vector<int32_t> h2 = {1, 2, 1, 1};
  EXPECT_EQ(train::pick_no_repeat(logits, h2, 2), 3);  // (1, 2) and (1, 1) seen
  std::vector<int32_t> g = {1, 2, 1};
  EXPECT_EQ(train::pick_no_repeat(logits, g, 3), 1);  // (2, 1, ?) never seen: nothing banned
  std::vector<int32_t> loop = {1, 1};
  EXPECT_EQ(train::pick_no_repeat(logits, loop, 2), 2);  // (1, 1) seen
  std::vector<float> wide = {0, 9, 8, 7, 6, 5, 4, 3, 2, 1};
  std::vector<int32_t> all;
  for (int i = 0; i < 30; ++i) train::pick_no_repeat(wide, all, 3);
  for (size_t i = 0; i + 3 <= all.size(); ++i)
    for (size_t j = i + 1; j + 3 <= all.size(); ++j)
      EXPECT_FALSE(all[i] == all[j] && all[i + 1] == all[j + 1] && all[i + 2] == all[j + 2]);
}

TEST(T5Task, ExactResumeOfDataAndDropoutStreams) {
  for (const char* objective : {"span", "translate"}) {
    json m = tiny_model("t5", 400);
    m["dropout"] = 0.1;
    const auto tc = train_config(objective);
    Fixture f(m, tc);
    auto a = train::make_t5_task(m, tc, f.data);
    for (int i = 0; i < 3; ++i) a->next_loss();
    const json state = a->state();
    std::vector<double> want;
    for (int i = 0; i < 3; ++i) want.push_back(a->next_loss().item<double>());
    auto b = train::make_t5_task(m, tc, f.data);  // same seed, so the same initial weights
    b->load_state(json::parse(state.dump()));
    for (int i = 0; i < 3; ++i) EXPECT_EQ(b->next_loss().item<double>(), want[i]) << objective;
  }
}

TEST(T5Task, ClearErrors) {
  const json m = tiny_model("t5", 400);
  Fixture f(m, train_config("span"));
  auto expect_error = [](auto fn, const std::string& want) {
    try {
      fn();
      ADD_FAILURE() << "no error; wanted " << want;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(want), std::string::npos) << e.what();
    }
  };
  expect_error([&] { train::make_t5_task(m, train_config("clm"), f.data); }, "objective");
  json small = m;
  small["vocab_size"] = 100;
  expect_error([&] { train::make_t5_task(small, train_config("span"), f.data); }, "vocab_size");
  json bad_eos = m;
  bad_eos["eos_id"] = 2;
  expect_error([&] { train::make_t5_task(bad_eos, train_config("span"), f.data); }, "eos_id");
  train::TaskData no_pairs = f.data;
  no_pairs.pairs.clear();
  expect_error([&] { train::make_t5_task(m, train_config("translate"), no_pairs); }, "--pairs");
  std::ofstream(f.dir.path / "bad.tsv") << "hello\tworld\nno tab here\n";
  no_pairs.pairs = {(f.dir.path / "bad.tsv").string()};
  expect_error([&] { train::make_t5_task(m, train_config("translate"), no_pairs); },
               "bad.tsv:2: no tab");
}
