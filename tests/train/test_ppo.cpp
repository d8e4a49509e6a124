// RLHF with PPO (train/ppo.h): GAE and the clipped losses against hand-computed values and
// gradients; end to end on a tiny GPT policy (char tokenizer over a..h) and a fixed reward model
// whose score is the mean over the text's letters of +1 (a..d) or -1 (e..h) -- a BERT with
// identity layers, mean pooling and a hand-set regression head -- the mean score rises clearly
// within 40 iterations (full and LoRA), the KL starts at 0 and stays finite and non-negative on
// average; two runs with the same seed are bit-identical; JSONL and chat prompts; bad settings
// are one clear error before anything is written.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "common/error_of.h"
#include "llmkit/core/autograd.h"
#include "llmkit/infer/classify.h"
#include "llmkit/io/atomic_file.h"
#include "llmkit/io/safetensors.h"
#include "llmkit/models/load.h"
#include "llmkit/models/peft.h"
#include "llmkit/train/ppo.h"
#include "tests/common/temp_dir.h"

using namespace llmkit;
using llmkit::testing::error_of;
using llmkit::testing::TempDir;
namespace fs = std::filesystem;

namespace {

Tensor row(const std::vector<float>& v) {
  return Tensor::from_vector(v, {1, static_cast<int64_t>(v.size())});
}

std::vector<float> values_of(const Tensor& t) {
  return t.contiguous().to_vector<float>();
}

}  // namespace

TEST(Ppo, GaeMatchesAHandComputedCase) {
  // gamma 0.9, lam 0.8, values[3] = 0:
  //   delta = [1 + 0.9*0.2 - 0.5, 0 + 0.9*1.0 - 0.2, 2 + 0 - 1.0] = [0.68, 0.7, 1.0]
  //   A2 = 1.0; A1 = 0.7 + 0.72 * 1.0 = 1.42; A0 = 0.68 + 0.72 * 1.42 = 1.7024
  const std::vector<float> rewards = {1.0f, 0.0f, 2.0f}, values = {0.5f, 0.2f, 1.0f};
  std::vector<float> adv(3), ret(3);
  train::gae(rewards, values, 0.9, 0.8, adv, ret);
  const float want_adv[] = {1.7024f, 1.42f, 1.0f}, want_ret[] = {2.2024f, 1.62f, 2.0f};
  for (int i = 0; i < 3; ++i) {
    EXPECT_NEAR(adv[i], want_adv[i], 1e-6) << i;
    EXPECT_NEAR(ret[i], want_ret[i], 1e-6) << i;
  }
  // gamma = lam = 1: the advantage is the reward-to-go minus the value.
  train::gae(rewards, values, 1.0, 1.0, adv, ret);
  EXPECT_NEAR(adv[0], 3.0 - 0.5, 1e-6);
  EXPECT_NEAR(ret[0], 3.0, 1e-6);
  std::vector<float> shorter(2);
  EXPECT_NE(error_of([&] { train::gae(rewards, values, 1, 1, shorter, ret); }).find("length"),
            std::string::npos);
}

TEST(Ppo, ClippedLossesMatchAHandComputedCase) {
  // Three positions, the third padding (mask 0, wild values that must not count).
  // Policy: ratios 1.5 and 0.5, advantages 1 and 1, cliprange 0.2:
  //   token 0: max(-1.5, -1.2) = -1.2 (the clipped term: no gradient)
  //   token 1: max(-0.5, -0.8) = -0.5 (unclipped: d/dlogp = -A r / n = -0.25)
  //   policy_loss = (-1.2 - 0.5) / 2 = -0.85, clipfrac 0.5
  // Values: v = [0.5, -0.1], old = [0.1, 0.0], R = [1.0, 0.3], cliprange_value 0.2:
  //   token 0: clipped v = 0.3: max(0.25, 0.49) = 0.49 (clipped: no gradient)
  //   token 1: clipped v = -0.1: (-0.4)^2 = 0.16 both (d/dv = 0.5 * 2 * (-0.4) / 2 = -0.2)
  //   value_loss = 0.5 * (0.49 + 0.16) / 2 = 0.1625, value_clipfrac 0.5
  Tensor logp = row({std::log(1.5f), std::log(0.5f), 7.0f});
  Tensor v = row({0.5f, -0.1f, 9.0f});
  logp.requires_grad_();
  v.requires_grad_();
  const auto l = train::ppo_loss(logp, v, row({0, 0, -3}), row({0.1f, 0.0f, 4.0f}), row({1, 1, 50}),
                                 row({1.0f, 0.3f, -8.0f}), row({1, 1, 0}), 0.2, 0.2);
  EXPECT_NEAR(l.policy_loss.item<float>(), -0.85, 1e-6);
  EXPECT_NEAR(l.value_loss.item<float>(), 0.1625, 1e-6);
  EXPECT_NEAR(l.clipfrac, 0.5, 1e-12);
  EXPECT_NEAR(l.value_clipfrac, 0.5, 1e-12);
  const double lr0 = std::log(1.5), lr1 = std::log(0.5);
  EXPECT_NEAR(l.approxkl, 0.5 * (lr0 * lr0 + lr1 * lr1) / 2, 1e-6);
  (l.policy_loss + l.value_loss).backward();
  const auto gp = values_of(logp.grad()), gv = values_of(v.grad());
  EXPECT_NEAR(gp[0], 0.0, 1e-7);
  EXPECT_NEAR(gp[1], -0.25, 1e-6);
  EXPECT_NEAR(gp[2], 0.0, 1e-7);
  EXPECT_NEAR(gv[0], 0.0, 1e-7);
  EXPECT_NEAR(gv[1], -0.2, 1e-6);
  EXPECT_NEAR(gv[2], 0.0, 1e-7);
  // Negative advantages clip at the other end: ratio 1.5 with A = -1 -> max(1.5, 1.2) = 1.5,
  // unclipped (the pessimistic bound keeps the larger loss).
  const auto m = train::ppo_loss(row({std::log(1.5f)}), row({0}), row({0}), row({0}), row({-1}),
                                 row({0}), row({1}), 0.2, 0.2);
  EXPECT_NEAR(m.policy_loss.item<float>(), 1.5, 1e-6);
  EXPECT_EQ(m.clipfrac, 0.0);
}

namespace {

// The alphabet of the toy task: the reward likes a..d and dislikes e..h.
constexpr const char* kGood = "abcd";
constexpr const char* kBad = "efgh";

// `extra`: more characters for the vocabulary (a chat template's).
tokenizer::Tokenizer toy_tokenizer(const std::string& extra = "") {
  tokenizer::TrainOptions o;
  o.model = tokenizer::Model::kChar;
  o.vocab_size = 64;
  o.special_tokens = {"<|endoftext|>", "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};
  return tokenizer::Tokenizer::train_from_text("abcdefgh abcdefgh hgfedcba" + extra, o);
}

void save_dir(const std::string& dir, const nlohmann::json& cfg, const nn::Module& m,
              const tokenizer::Tokenizer& tok) {
  fs::create_directories(dir);
  io::write_file_atomic(dir + "/config.json", cfg.dump(2));
  io::save_safetensors(dir + "/model.safetensors", m.named_parameters(), {});
  tok.save(dir + "/tokenizer.json");
}

// A tiny random GPT policy; generation stops at <|endoftext|>. Its (tied) token embeddings are
// scaled up from GPT-2's N(0, 0.02) to N(0, 0.1), the logit range of a trained model: with the
// init's range no adapter on the frozen embeddings could move the output distribution far.
std::string policy_dir(const TempDir& d, const tokenizer::Tokenizer& tok) {
  models::GPTConfig c;
  c.n_layer = 1;
  c.n_head = 2;
  c.n_embd = 32;
  c.block_size = 32;
  c.vocab_size = tok.vocab_size();
  c.eos_token_ids = {tok.token_to_id("<|endoftext|>")};
  const models::GPT g(c, 5);
  {
    NoGradGuard ng;
    g.wte->weight.copy_(g.wte->weight * 5.0);
  }
  const std::string dir = d.file("policy");
  save_dir(dir, c.to_json(), g, tok);
  return dir;
}

// The reward model: a BERT whose layers are the identity (attention and FFN outputs zero, so
// each post-LN sub-layer returns its input), position and type embeddings zero, so the encoder
// output at a letter is LN(word embedding); the word embedding of a good letter is (+1, -1, 0,
// ...), of a bad one (-1, +1, 0, ...), of a special token 0. Mean pooling and the head
// (1 / sqrt(C / 2), 0, ...) give score = (#good - #bad) / (#letters + 2) ([CLS] and [SEP] count
// 0). `labels` empty: a regression head; else a classifier with these labels (same weights in
// its first row).
std::string reward_dir(const TempDir& d, const tokenizer::Tokenizer& tok,
                       const std::vector<std::string>& labels = {}) {
  models::BertConfig c;
  c.vocab_size = tok.vocab_size();
  c.n_layer = 1;
  c.n_head = 2;
  c.n_embd = 16;
  c.block_size = 64;
  c.pretraining_heads = false;
  c.pad_id = tok.token_to_id("[PAD]");
  models::HeadConfig h;
  h.pooling = "mean";
  h.dropout = 0;
  if (labels.empty()) {
    h.problem_type = "regression";
    h.labels = {"score"};
  } else {
    h.labels = labels;
  }
  models::Classifier m(std::make_shared<models::Bert>(c, 7), h, 8);
  NoGradGuard ng;
  for (auto& [name, t] : m.named_parameters()) {
    const bool keep = name.find("LayerNorm") != std::string::npos ||
                      name.find("attention.self") != std::string::npos ||
                      name.find("intermediate") != std::string::npos;
    if (!keep) t.zero_();
  }
  const int64_t C = c.n_embd;
  auto set_word = [&](char ch, float sign) {
    const int32_t id = tok.token_to_id(std::string(1, ch));
    Tensor w = m.bert->embeddings->word_embeddings->weight;
    w.select(0, id).select(0, 0).fill_(sign);
    w.select(0, id).select(0, 1).fill_(-sign);
  };
  for (const char* ch = kGood; *ch; ++ch) set_word(*ch, 1);
  for (const char* ch = kBad; *ch; ++ch) set_word(*ch, -1);
  m.head->weight.select(0, 0).select(0, 0).fill_(1.0 / std::sqrt(C / 2.0));
  const std::string dir = d.file(labels.empty() ? "reward" : "reward_cls");
  save_dir(dir, m.config_json(), m, tok);
  return dir;
}

// Prompts of four random letters, one per line.
std::string prompts_file(const TempDir& d, int n) {
  std::mt19937 rng(3);
  std::string s;
  for (int i = 0; i < n; ++i) {
    for (int k = 0; k < 4; ++k) s += static_cast<char>('a' + rng() % 8);
    s += '\n';
  }
  const std::string path = d.file("prompts.txt");
  std::ofstream(path) << s;
  return path;
}

struct Toy {
  TempDir d;
  tokenizer::Tokenizer tok = toy_tokenizer();
  std::string policy = policy_dir(d, tok);
  std::string reward = reward_dir(d, tok);
  std::string prompts = prompts_file(d, 40);

  train::PpoRun run(const std::string& out, const std::string& method, int64_t steps) const {
    train::PpoRun r;
    r.policy_path = policy;
    r.reward_path = reward;
    r.prompts_path = prompts;
    r.out_dir = d.file(out);
    r.method = method;
    r.steps = steps;
    r.batch_size = 16;
    r.mini_batch_size = 4;
    r.ppo_epochs = 4;
    r.max_new_tokens = 8;
    r.temperature = 1.0;
    r.kl_coef = 0.02;
    r.lr = method == "full" ? 3e-3 : 1e-2;
    // PEFT's default for GPT-2 (c_attn alone) moves a one-layer model's outputs too slowly for
    // a 30-iteration test; every projection does.
    r.lora.target_modules = {"c_attn", "c_proj", "c_fc"};
    r.seed = 11;
    r.quiet = true;
    return r;
  }
};

double mean_score(const std::vector<train::PpoStats>& h, size_t begin, size_t end) {
  double s = 0;
  for (size_t i = begin; i < end; ++i) s += h[i].score;
  return s / static_cast<double>(end - begin);
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void expect_learns(const train::PpoResult& res, const char* what) {
  const auto& h = res.history;
  ASSERT_EQ(h.size(), 40u);
  const double first = mean_score(h, 0, 5), last = mean_score(h, h.size() - 5, h.size());
  std::printf("%s: mean score of the first 5 iterations %.3f, of the last 5 %.3f\n", what, first,
              last);
  EXPECT_GT(last, first + 0.1) << what << ": mean score of the first 5 iterations " << first
                               << ", of the last 5 " << last;
  // The policy starts as the reference: no divergence at all in the first batch.
  EXPECT_NEAR(h[0].kl, 0.0, 1e-5) << what;
  double kl = 0;
  for (const auto& s : h) {
    EXPECT_TRUE(std::isfinite(s.kl) && std::isfinite(s.value_loss)) << what << " step " << s.step;
    kl += s.kl;
  }
  EXPECT_GE(kl / static_cast<double>(h.size()), 0.0) << what;
  EXPECT_GT(h.back().entropy, 0.0) << what;
  EXPECT_GT(res.trainable_params, 0);
}

}  // namespace

TEST(Ppo, RewardModelScoresTheToyRule) {
  // The fixture's own check: the reward is what the other tests assume.
  const TempDir d;
  const auto tok = toy_tokenizer();
  models::LoadedModel m = models::load(reward_dir(d, tok));
  ASSERT_NE(m.classifier, nullptr);
  auto score = [&](const std::string& text) {
    const auto ids = infer::classifier_input_ids(*m.classifier, tok, text, 0, false, -1);
    const std::vector<std::vector<int32_t>> batch = {ids};
    return infer::classify_ids(*m.classifier, batch)[0][0];
  };
  EXPECT_NEAR(score("abcd"), 4.0 / 6.0, 1e-4);
  EXPECT_NEAR(score("aehh"), -2.0 / 6.0, 1e-4);
  EXPECT_NEAR(score("ae"), 0.0, 1e-4);
}

TEST(Ppo, FullFineTuningRaisesTheScore) {
  const Toy toy;
  const auto r = toy.run("full", "full", 40);
  const auto res = train::ppo(r);
  expect_learns(res, "full");
  // The run directory: metrics with TRL's names, samples, the policy as a model directory that
  // loads, the value head.
  const std::string csv = read_text(r.out_dir + "/metrics.csv");
  EXPECT_EQ(csv.rfind("step,objective/scores,objective/kl,", 0), 0u) << csv.substr(0, 200);
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 41);
  const std::string samples = read_text(r.out_dir + "/samples.jsonl");
  const auto first = nlohmann::json::parse(samples.substr(0, samples.find('\n')));
  EXPECT_EQ(first.at("step"), 1);
  EXPECT_TRUE(first.contains("prompt") && first.contains("response") && first.contains("score"));
  EXPECT_TRUE(fs::exists(r.out_dir + "/scores.svg"));
  const auto vh = io::load_safetensors(r.out_dir + "/v_head.safetensors");
  EXPECT_EQ(vh.get("v_head.summary.weight").shape(), (Shape{1, 32}));
  EXPECT_EQ(vh.get("v_head.summary.bias").shape(), (Shape{1}));
  const models::LoadedModel tuned = models::load(r.out_dir);
  ASSERT_NE(tuned.gpt, nullptr);
  const models::LoadedModel base = models::load(toy.policy);
  EXPECT_NE(values_of(tuned.gpt->wte->weight), values_of(base.gpt->wte->weight));
}

TEST(Ppo, LoraRaisesTheScoreAndSavesAnAdapter) {
  const Toy toy;
  const auto r = toy.run("lora", "lora", 40);
  const auto res = train::ppo(r);
  expect_learns(res, "lora");
  // Only the adapters and the value head (33 numbers) train.
  EXPECT_LT(res.trainable_params, res.all_params / 4);
  const models::AdapterInfo info = models::read_adapter_config(r.out_dir);
  EXPECT_EQ(info.task_type, "CAUSAL_LM");
  EXPECT_EQ(fs::path(info.base_model_path), fs::absolute(toy.policy));
  // The adapter loads onto the base and changes it (B trained away from 0).
  models::LoadedModel base = models::load(toy.policy);
  models::load_adapter(*base.gpt, "gpt", r.out_dir);
  double b_norm = 0;
  for (auto& [name, t] : base.gpt->named_parameters())
    if (name.find("lora_B") != std::string::npos)
      for (float x : values_of(t)) b_norm += double(x) * x;
  EXPECT_GT(b_norm, 0.0);
}

TEST(Ppo, SameSeedSameRun) {
  const Toy toy;
  auto r = toy.run("a", "lora", 3);
  const auto a = train::ppo(r);
  r.out_dir = toy.d.file("b");
  const auto b = train::ppo(r);
  ASSERT_EQ(a.history.size(), b.history.size());
  for (size_t i = 0; i < a.history.size(); ++i) {
    const auto &x = a.history[i], &y = b.history[i];
    EXPECT_EQ(x.score, y.score) << i;
    EXPECT_EQ(x.kl, y.kl) << i;
    EXPECT_EQ(x.entropy, y.entropy) << i;
    EXPECT_EQ(x.policy_loss, y.policy_loss) << i;
    EXPECT_EQ(x.value_loss, y.value_loss) << i;
    EXPECT_EQ(x.clipfrac, y.clipfrac) << i;
  }
  EXPECT_EQ(read_text(toy.d.file("a") + "/samples.jsonl"),
            read_text(toy.d.file("b") + "/samples.jsonl"));
  EXPECT_EQ(read_text(toy.d.file("a") + "/adapter_model.safetensors"),
            read_text(toy.d.file("b") + "/adapter_model.safetensors"));
  EXPECT_EQ(read_text(toy.d.file("a") + "/v_head.safetensors"),
            read_text(toy.d.file("b") + "/v_head.safetensors"));
  // Another seed samples other responses.
  r.seed = 12;
  r.out_dir = toy.d.file("c");
  const auto c = train::ppo(r);
  EXPECT_NE(read_text(toy.d.file("a") + "/samples.jsonl"),
            read_text(toy.d.file("c") + "/samples.jsonl"));
}

TEST(Ppo, ErrorsNameTheProblem) {
  const Toy toy;
  auto expect_error = [](train::PpoRun r, const std::string& needle) {
    const std::string e = error_of([&] { train::ppo(r); });
    EXPECT_NE(e.find(needle), std::string::npos) << "want '" << needle << "', got: " << e;
  };
  auto r = toy.run("err", "lora", 1);
  r.mini_batch_size = 3;
  expect_error(r, "mini_batch_size 3 does not divide batch_size 16");

  r = toy.run("err", "lora", 1);
  r.reward_path = reward_dir(toy.d, toy.tok, {"bad", "good"});
  expect_error(r, "name the label");
  r.reward_label = "great";
  expect_error(r, "no label 'great' (its labels: bad, good)");

  r = toy.run("err", "lora", 1);
  r.reward_label = "good";
  expect_error(r, "regression head");

  r = toy.run("err", "lora", 1);
  r.reward_path = toy.policy;
  expect_error(r, "must be a classifier");

  r = toy.run("err", "lora", 1);
  r.policy_path = toy.reward;
  expect_error(r, "must be a decoder");

  r = toy.run("err", "lora", 1);
  r.prompts_path = toy.d.file("empty.txt");
  std::ofstream(r.prompts_path) << "\n  \n";
  expect_error(r, "holds no prompt");

  r = toy.run("err", "lora", 1);
  r.prompts_path = toy.d.file("bad.jsonl");
  std::ofstream(r.prompts_path) << "{\"prompt\": \"ab\"}\n{\"text\": \"cd\"}\n";
  expect_error(r, "bad.jsonl:2");

  r = toy.run("err", "lora", 1);
  r.prompts_path = toy.d.file("messages.jsonl");
  std::ofstream(r.prompts_path) << "{\"messages\": [{\"role\": \"user\", \"content\": \"ab\"}]}\n";
  expect_error(r, "messages.jsonl:1: a \"messages\" prompt needs the chat template");

  r = toy.run("err", "lora", 1);
  r.max_new_tokens = 32;
  expect_error(r, "leaves no room for a prompt");
  // Every refusal came before the run directory was made.
  EXPECT_FALSE(fs::exists(r.out_dir));
}

TEST(Ppo, ReadsJsonlPrompts) {
  const Toy toy;
  auto r = toy.run("jsonl", "lora", 1);
  r.prompts_path = toy.d.file("prompts.jsonl");
  std::ofstream(r.prompts_path) << "{\"prompt\": \"abcd\", \"id\": 1}\n\n{\"prompt\": \"hgfe\"}\n";
  r.batch_size = 4;
  r.mini_batch_size = 2;
  const auto res = train::ppo(r);
  ASSERT_EQ(res.history.size(), 1u);
  // Two prompts, four rollouts: each prompt twice (shuffled epochs), so the samples' prompts are
  // among the two.
  const std::string samples = read_text(r.out_dir + "/samples.jsonl");
  std::istringstream in(samples);
  int n = 0;
  for (std::string line; std::getline(in, line); ++n) {
    const std::string p = nlohmann::json::parse(line).at("prompt");
    EXPECT_TRUE(p == "abcd" || p == "hgfe") << p;
  }
  EXPECT_EQ(n, 3);
}

TEST(Ppo, ChatPromptsGoThroughTheTemplate) {
  // The policy has no template of its own: data::plain_template ("User: ...\nAssistant:").
  const TempDir d;
  const auto tok = toy_tokenizer("User: Assistant:\nSystem: be good\n");
  train::PpoRun r;
  r.policy_path = policy_dir(d, tok);
  r.reward_path = reward_dir(d, tok);
  r.prompts_path = d.file("chat.jsonl");
  std::ofstream(r.prompts_path)
      << "{\"prompt\": \"abcd\"}\n"
      << R"({"messages": [{"role": "system", "content": "be good"}, )"
      << R"({"role": "user", "content": "hgfe"}, {"role": "assistant", "content": "ab"}]})"
      << "\n";
  r.out_dir = d.file("chat");
  r.chat = true;
  r.steps = 1;
  r.batch_size = 4;
  r.mini_batch_size = 2;
  r.max_new_tokens = 4;
  r.quiet = true;
  train::ppo(r);
  std::istringstream in(read_text(r.out_dir + "/samples.jsonl"));
  int n = 0;
  for (std::string line; std::getline(in, line); ++n) {
    const std::string p = nlohmann::json::parse(line).at("prompt");
    // The second prompt is 37 characters, cut from the left to the 28 that leave room for the
    // response in the policy's 32 positions.
    EXPECT_TRUE(p == "User: abcd\nAssistant:" || p == "e good\nUser: hgfe\nAssistant:") << p;
  }
  EXPECT_EQ(n, 3);
}
