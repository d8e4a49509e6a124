// Fine-tuning (train/finetune.h) on tiny bodies saved as llmkit model directories (BERT, GPT-2
// layout, llama layout) and a separable toy set (each text's words come from its class's word
// list): every method reaches > 90% validation accuracy; only what the method trains changes
// (head: the body bit-identical; full --freeze: the frozen prefix bit-identical; lora: the
// checkpoint holds only adapters and the head); a run stopped with stop_after and resumed ends
// with the same tensors, bit for bit, as an uninterrupted one; errors name the problem.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>

#include "common/error_of.h"
#include "llmkit/io/atomic_file.h"
#include "llmkit/io/safetensors.h"
#include "llmkit/models/load.h"
#include "llmkit/train/checkpoint.h"
#include "llmkit/train/finetune.h"
#include "tests/common/temp_dir.h"

using namespace llmkit;
using llmkit::testing::error_of;
using llmkit::testing::TempDir;
namespace fs = std::filesystem;

namespace {

const char* kPos[] = {"sun", "happy", "bright", "warm", "joy", "glad"};
const char* kNeg[] = {"rain", "sad", "dark", "cold", "gloom", "grey"};

// n lines "words<TAB>pos|neg", balanced, from a seeded stream.
std::string toy_tsv(int n, unsigned seed) {
  std::mt19937 rng(seed);
  std::string s = "text\tlabel\n";
  for (int i = 0; i < n; ++i) {
    const bool pos = i % 2 == 0;
    const int words = 2 + static_cast<int>(rng() % 4);
    for (int w = 0; w < words; ++w) s += std::string(w ? " " : "") + (pos ? kPos : kNeg)[rng() % 6];
    s += pos ? "\tpos\n" : "\tneg\n";
  }
  return s;
}

std::string write(const TempDir& d, const std::string& name, const std::string& text) {
  std::ofstream(d.file(name), std::ios::binary) << text;
  return d.file(name);
}

// A tiny pretrained-looking model directory: config.json, model.safetensors, tokenizer.json.
std::string body_dir(const TempDir& d, const std::string& arch, double dropout = 0) {
  const std::string dir = d.file("body_" + arch);
  fs::create_directories(dir);
  tokenizer::TrainOptions o;
  o.vocab_size = 300;
  o.special_tokens = tokenizer::kBertSpecialTokens;
  const auto tok = tokenizer::Tokenizer::train_from_text(toy_tsv(200, 9), o);
  tok.save(dir + "/tokenizer.json");
  nlohmann::json cfg;
  nn::NamedTensors w;
  std::unique_ptr<nn::Module> m;
  if (arch == "bert") {
    models::BertConfig c;
    c.vocab_size = tok.vocab_size();
    c.n_layer = 1;
    c.n_head = 2;
    c.n_embd = 32;
    c.block_size = 32;
    c.dropout = dropout;
    c.pretraining_heads = false;
    cfg = c.to_json();
    m = std::make_unique<models::Bert>(c, 11);
  } else {
    models::GPTConfig c;
    c.arch = arch;
    c.n_layer = 1;
    c.n_head = 2;
    c.n_embd = 32;
    c.block_size = 32;
    c.vocab_size = tok.vocab_size();
    c.dropout = dropout;
    if (arch == "llama") {
      c.pos_encoding = "rope";
      c.norm = "rmsnorm";
      c.activation = "swiglu";
      c.bias = false;
    }
    cfg = c.to_json();
    m = std::make_unique<models::GPT>(c, 11);
  }
  io::write_file_atomic(dir + "/config.json", cfg.dump(2));
  io::save_safetensors(dir + "/model.safetensors", m->named_parameters(), {});
  return dir;
}

struct Toy {
  TempDir d;
  std::string train = write(d, "train.tsv", toy_tsv(160, 1));
  std::string val = write(d, "val.jsonl", [] {
    // The same kind of data as JSONL, from another seed.
    std::string out;
    std::istringstream in(toy_tsv(40, 2));
    std::string line;
    std::getline(in, line);  // header
    while (std::getline(in, line)) {
      const auto tab = line.find('\t');
      out += nlohmann::json{{"text", line.substr(0, tab)}, {"label", line.substr(tab + 1)}}.dump() +
             "\n";
    }
    return out;
  }());

  train::FinetuneRun run(const std::string& model, const std::string& method,
                         const std::string& out, int64_t steps) {
    train::FinetuneRun r;
    r.model_path = model;
    r.train_path = train;
    r.val_path = val;
    r.out_dir = d.file(out);
    r.method = method;
    r.train = train::finetune_defaults(method);
    r.train.steps = steps;
    r.train.eval_interval = steps;
    r.train.lr = method == "full" ? 1e-3 : method == "head" ? 1e-2 : 5e-3;
    r.quiet = true;
    return r;
  }
};

std::map<std::string, std::vector<float>> tensors(const std::string& file) {
  std::map<std::string, std::vector<float>> out;
  for (auto& [n, t] : io::load_safetensors(file).tensors) out[n] = t.to_vector<float>();
  return out;
}

std::string latest_checkpoint(const std::string& dir) {
  return train::committed_checkpoint(dir) + "/model.safetensors";
}

}  // namespace

TEST(Finetune, HeadMethodLearnsAndKeepsTheBody) {
  Toy t;
  const std::string body = body_dir(t.d, "bert");
  auto r = t.run(body, "head", "head", 60);
  r.pooling = "mean";
  const auto res = train::finetune(r);
  EXPECT_GT(res.report.accuracy, 0.9) << res.report.to_text();
  EXPECT_EQ(res.trainable_params, 2 * 32 + 2);
  // The exported model: the body bit-identical to the pretrained one, the head trained.
  const auto before = tensors(body + "/model.safetensors");
  const auto after = tensors(r.out_dir + "/model.safetensors");
  for (const auto& [n, v] : before) {
    ASSERT_TRUE(after.count("bert." + n) || after.count(n)) << n;
    EXPECT_EQ(after.count(n) ? after.at(n) : after.at("bert." + n), v) << n;
  }
  EXPECT_TRUE(after.count("classifier.weight"));
  // The checkpoint holds only what trains.
  const auto ck = tensors(latest_checkpoint(r.out_dir));
  EXPECT_EQ(ck.size(), 2u);
  EXPECT_TRUE(fs::exists(r.out_dir + "/confusion.txt"));
  EXPECT_TRUE(fs::exists(r.out_dir + "/report.json"));
  EXPECT_TRUE(fs::exists(r.out_dir + "/metrics.csv"));
  EXPECT_TRUE(fs::exists(r.out_dir + "/loss.svg"));
  // The exported directory is a classifier that load() reads, with the same accuracy.
  const models::LoadedModel m = models::load(r.out_dir);
  ASSERT_NE(m.classifier, nullptr);
  EXPECT_EQ(m.classifier->head_config().pooling, "mean");
}

TEST(Finetune, FullMethodLearnsAndFreezesPrefixes) {
  Toy t;
  const std::string body = body_dir(t.d, "gpt");
  auto r = t.run(body, "full", "full", 40);
  r.freeze = {"wte", "h.0.attn"};
  const auto res = train::finetune(r);
  EXPECT_GT(res.report.accuracy, 0.9) << res.report.to_text();
  const auto before = tensors(body + "/model.safetensors");
  const auto after = tensors(r.out_dir + "/model.safetensors");
  EXPECT_EQ(after.at("wte.weight"), before.at("wte.weight"));
  EXPECT_EQ(after.at("h.0.attn.c_attn.weight"), before.at("h.0.attn.c_attn.weight"));
  EXPECT_NE(after.at("h.0.mlp.c_fc.weight"), before.at("h.0.mlp.c_fc.weight"));
}

TEST(Finetune, LoraAndQloraLearnWithOnlyAdaptersTrained) {
  for (const std::string method : {"lora", "qlora"}) {
    SCOPED_TRACE(method);
    Toy t;
    const std::string body = body_dir(t.d, "llama");
    auto r = t.run(body, method, method, 60);
    const auto res = train::finetune(r);
    EXPECT_GT(res.report.accuracy, 0.9) << res.report.to_text();
    // r 8 on q_proj and v_proj [32 -> 32]: 2 * 8 (32 + 32), + score [2, 32].
    EXPECT_EQ(res.trainable_params, 2 * 8 * 64 + 64);
    for (const auto& [n, v] : tensors(latest_checkpoint(r.out_dir)))
      EXPECT_TRUE(n.find(".lora_A.") != std::string::npos ||
                  n.find(".lora_B.") != std::string::npos || n.rfind("score.", 0) == 0)
          << n;
    EXPECT_TRUE(fs::exists(r.out_dir + "/adapter_config.json"));
    // load() of the adapter directory gives the classifier back: its accuracy on the val set.
    const models::LoadedModel m = models::load(r.out_dir);
    ASSERT_NE(m.classifier, nullptr);
  }
}

TEST(Finetune, ResumeGivesTheSameWeightsBitForBit) {
  for (const std::string method : {"full", "lora"}) {
    SCOPED_TRACE(method);
    Toy t;
    const std::string body = body_dir(t.d, method == "full" ? "bert" : "gpt", 0.1);
    auto a = t.run(body, method, "a", 14);
    a.train.eval_interval = 5;
    a.lora.dropout = 0.1;
    const auto res_a = train::finetune(a);
    auto b = a;
    b.out_dir = t.d.file("b");
    b.stop_after = 6;
    const auto stopped = train::finetune(b);
    EXPECT_TRUE(stopped.train.interrupted);
    train::FinetuneRun c;  // everything else comes from the run directory
    c.model_path = "ignored";
    c.train_path = c.val_path = "ignored";
    c.out_dir = b.out_dir;
    c.method = method;
    c.resume = true;
    c.quiet = true;
    c.train.steps = 0;
    const auto resumed = train::finetune(c);
    EXPECT_EQ(resumed.train.step, 14);
    const auto ta = tensors(latest_checkpoint(a.out_dir));
    const auto tb = tensors(latest_checkpoint(b.out_dir));
    ASSERT_EQ(ta.size(), tb.size());
    for (const auto& [n, v] : ta) EXPECT_EQ(tb.at(n), v) << n;
    EXPECT_EQ(resumed.report.accuracy, res_a.report.accuracy);
    EXPECT_EQ(resumed.val_loss, res_a.val_loss);
  }
}

TEST(Finetune, Errors) {
  Toy t;
  const std::string body = body_dir(t.d, "gpt");
  auto r = t.run(body, "sideways", "e1", 5);
  EXPECT_NE(error_of([&] { train::finetune(r); }).find("method 'sideways'"), std::string::npos);
  r = t.run(body, "lora", "e2", 5);
  r.lora.target_modules = {"nothing_here"};
  EXPECT_NE(error_of([&] { train::finetune(r); }).find("match no Linear"), std::string::npos);
  r = t.run(body, "head", "e3", 5);
  r.val_path = write(t.d, "odd.tsv", "sun\tpos\nrain\tmaybe\n");
  EXPECT_NE(error_of([&] { train::finetune(r); }).find("odd.tsv:2: label 'maybe'"),
            std::string::npos);
  r = t.run(body, "head", "e4", 5);
  r.task = "regress";
  EXPECT_NE(error_of([&] { train::finetune(r); }).find("is not a number"), std::string::npos);
  r = t.run(body, "head", "e5", 5);
  train::finetune(r);
  EXPECT_NE(error_of([&] { train::finetune(r); }).find("already holds"), std::string::npos);
}

TEST(Finetune, RegressionLearnsAScore) {
  Toy t;
  const std::string body = body_dir(t.d, "bert");
  std::mt19937 rng(3);
  auto make = [&](int n) {
    std::string s;
    for (int i = 0; i < n; ++i) {
      const bool pos = i % 2 == 0;
      s += std::string(pos ? kPos[rng() % 6] : kNeg[rng() % 6]) + " " +
           (pos ? kPos : kNeg)[rng() % 6] + (pos ? "\t1.5\n" : "\t-1.5\n");
    }
    return s;
  };
  auto r = t.run(body, "full", "reg", 100);
  r.task = "regress";
  r.pooling = "mean";
  r.train.lr = 3e-3;
  r.train_path = write(t.d, "reg_train.tsv", make(120));
  r.val_path = write(t.d, "reg_val.tsv", make(30));
  const auto res = train::finetune(r);
  EXPECT_LT(res.val_mse, 0.5);
  EXPECT_GT(res.val_pearson, 0.9);
}

// --limit draws its examples at random, not the first lines: a file grouped by label (every
// positive line, then every negative one) still gives both labels at a small N.
TEST(Finetune, LimitDrawsAtRandomFromAFileGroupedByLabel) {
  Toy t;
  const std::string body = body_dir(t.d, "bert");
  std::string grouped = "text\tlabel\n", neg;
  std::istringstream in(toy_tsv(200, 5));
  std::string line;
  std::getline(in, line);
  while (std::getline(in, line)) (line.ends_with("\tpos") ? grouped : neg) += line + "\n";
  auto r = t.run(body, "head", "limit", 10);
  r.train_path = write(t.d, "grouped.tsv", grouped + neg);
  r.limit = 16;
  r.pooling = "mean";
  const auto res = train::finetune(r);
  EXPECT_EQ(res.report.labels, (std::vector<std::string>{"neg", "pos"}));
  // The first 12 lines alone are one label, which classification refuses.
  r = t.run(body, "head", "limit_first", 20);
  r.train_path = write(t.d, "first12.tsv", grouped.substr(0, [&] {
    size_t pos = 0;
    for (int i = 0; i < 13; ++i) pos = grouped.find('\n', pos) + 1;
    return pos;
  }()));
  EXPECT_NE(error_of([&] { train::finetune(r); }).find("only one label"), std::string::npos);
}
