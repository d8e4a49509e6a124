// Task heads (models/classifier.h): finite-difference gradients of every head (f64, tiny BERT
// and GPT bodies: [CLS] pooler, mean pooling, last token, token classification, regression),
// the config.json fields round trip, an llmkit classifier directory loads back, and with
// transformers in the reference Python, logits and loss equal BertForSequenceClassification's
// (classification and regression) and LlamaForSequenceClassification's on tiny random models
// saved by save_pretrained (tests/models/classifier_ref.py), within 1e-4 relative.
#include <gtest/gtest.h>

#include <cstdlib>
#include <nlohmann/json.hpp>

#include "common/error_of.h"
#include "llmkit/io/atomic_file.h"
#include "llmkit/models/classifier.h"
#include "llmkit/models/load.h"
#include "tests/common/gradcheck.h"
#include "tests/common/parity.h"
#include "tests/common/reference.h"
#include "tests/common/temp_dir.h"

using namespace llmkit;
using llmkit::testing::error_of;
using models::Classifier;
using models::HeadConfig;

namespace {

models::BertConfig tiny_bert() {
  models::BertConfig c;
  c.vocab_size = 20;
  c.n_layer = 1;
  c.n_head = 2;
  c.n_embd = 8;
  c.block_size = 8;
  c.pretraining_heads = false;
  return c;
}

models::GPTConfig tiny_gpt(const std::string& arch) {
  models::GPTConfig c;
  c.arch = arch;
  c.n_layer = 1;
  c.n_head = 2;
  c.n_embd = 8;
  c.block_size = 8;
  c.vocab_size = 20;
  if (arch == "llama") {
    c.pos_encoding = "rope";
    c.norm = "rmsnorm";
    c.activation = "swiglu";
    c.bias = false;
  }
  return c;
}

HeadConfig head(const std::string& task, const std::string& pooling, bool regression = false) {
  HeadConfig h;
  h.task = task;
  h.pooling = pooling;
  h.dropout = 0;
  h.labels =
      regression ? std::vector<std::string>{"score"} : std::vector<std::string>{"a", "b", "c"};
  if (regression) h.problem_type = "regression";
  return h;
}

// Rows of lengths 5, 3, 4 right-padded to 5 (pad id 0).
struct Inputs {
  Tensor ids, mask;
};
Inputs inputs() {
  const std::vector<int> lens = {5, 3, 4};
  std::vector<int32_t> ids(15, 0);
  std::vector<uint8_t> mask(15, 0);
  for (int b = 0; b < 3; ++b)
    for (int t = 0; t < lens[b]; ++t) {
      ids[b * 5 + t] = 1 + (b * 7 + t * 3) % 19;
      mask[b * 5 + t] = 1;
    }
  return {Tensor::from_vector(ids, {3, 5}), Tensor::from_vector(mask, {3, 5})};
}

Tensor labels_for(const HeadConfig& h) {
  if (h.regression()) return Tensor::from_vector(std::vector<double>{0.5, -1.0, 2.0}, {3});
  if (h.task == "token") {
    std::vector<int32_t> l(15, -100);
    for (int i = 0; i < 15; ++i)
      if (inputs().mask.to_vector<uint8_t>()[i]) l[i] = i % 3;
    return Tensor::from_vector(l, {3, 5});
  }
  return Tensor::from_vector(std::vector<int32_t>{0, 2, 1}, {3});
}

// Gradients of the loss for the head and a few body tensors against central differences.
void check_grads(Classifier& model, const std::vector<std::string>& names) {
  const Inputs in = inputs();
  const Tensor labels = labels_for(model.head_config());
  std::vector<Tensor> params;
  const nn::NamedTensors named = model.named_parameters();
  const std::map<std::string, Tensor> all(named.begin(), named.end());
  for (const auto& n : names) {
    ASSERT_TRUE(all.count(n)) << n;
    params.push_back(all.at(n));
  }
  llmkit::testing::gradcheck(
      [&](const std::vector<Tensor>&) {
        return model.loss(model.forward(in.ids, in.mask), labels).reshape({1});
      },
      params, 1e-6, 1e-7, 1e-5);
}

}  // namespace

TEST(Classifier, BertHeadsGradcheck) {
  for (const auto& [task, pool, reg] :
       std::vector<std::tuple<std::string, std::string, bool>>{{"sequence", "cls", false},
                                                               {"sequence", "mean", false},
                                                               {"token", "cls", false},
                                                               {"sequence", "cls", true}}) {
    SCOPED_TRACE(task + " " + pool + (reg ? " regression" : ""));
    auto body = std::make_shared<models::Bert>(tiny_bert(), 3, DType::F64);
    Classifier model(body, head(task, pool, reg), 5);
    model.eval();
    std::vector<std::string> names = {"classifier.weight", "classifier.bias",
                                      "bert.encoder.layer.0.attention.self.value.weight"};
    if (pool == "cls" && task == "sequence") names.push_back("bert.pooler.dense.weight");
    check_grads(model, names);
  }
}

TEST(Classifier, DecoderHeadsGradcheck) {
  for (const std::string arch : {"gpt", "llama"})
    for (const std::string task : {"sequence", "token"}) {
      SCOPED_TRACE(arch + " " + task);
      auto body = std::make_shared<models::GPT>(tiny_gpt(arch), 3, DType::F64);
      Classifier model(body, head(task, task == "sequence" ? "last" : ""), 5);
      model.eval();
      EXPECT_EQ(model.head_name(), "score");
      EXPECT_FALSE(model.head->bias.defined());
      const std::string ln = arch == "gpt" ? "ln_f.weight" : "model.norm.weight";
      check_grads(model, {"score.weight", ln});
    }
}

TEST(Classifier, LastTokenIgnoresPadding) {
  // The decoder head reads the last real token: padding ids change nothing.
  auto body = std::make_shared<models::GPT>(tiny_gpt("gpt"), 3);
  Classifier model(body, head("sequence", "last"), 5);
  model.eval();
  NoGradGuard ng;
  Inputs in = inputs();
  const Tensor a = model.forward(in.ids, in.mask);
  Tensor ids2 = in.ids.contiguous();
  ids2.data<int32_t>()[1 * 5 + 4] = 7;  // row 1 has 3 real tokens
  const Tensor b = model.forward(ids2, in.mask);
  EXPECT_EQ(a.to_vector<float>(), b.to_vector<float>());
}

TEST(Classifier, NamesAreTheBodysPlusTheHeads) {
  auto body = std::make_shared<models::Bert>(tiny_bert(), 3);
  Classifier model(body, head("sequence", "cls"), 5);
  const auto names = model.named_parameters();
  EXPECT_EQ(names.front().first, "bert.embeddings.word_embeddings.weight");
  EXPECT_EQ(names.back().first, "classifier.bias");
}

TEST(Classifier, HeadConfigRoundTripsAndErrors) {
  nlohmann::json cfg = tiny_bert().to_json();
  HeadConfig h = head("sequence", "mean");
  h.dropout = 0.1;
  h.to_json(cfg);
  EXPECT_TRUE(models::has_head_fields(cfg));
  const HeadConfig back = HeadConfig::from_json(cfg, "bert");
  EXPECT_EQ(back.labels, h.labels);
  EXPECT_EQ(back.pooling, "mean");
  EXPECT_DOUBLE_EQ(back.dropout, 0.1);
  EXPECT_NO_THROW(models::BertConfig::from_json(models::strip_head_fields(cfg)));
  nlohmann::json bad = cfg;
  bad["id2label"] = {{"0", "a"}, {"5", "b"}};
  EXPECT_NE(error_of([&] { HeadConfig::from_json(bad, "bert"); }).find("id2label"),
            std::string::npos);
  bad.erase("id2label");
  EXPECT_NE(error_of([&] { HeadConfig::from_json(bad, "bert"); }).find("id2label"),
            std::string::npos);
  HeadConfig one = head("sequence", "cls");
  one.labels = {"only"};
  EXPECT_NE(error_of([&] { one.validate("bert"); }).find("at least 2"), std::string::npos);
  EXPECT_NE(error_of([&] { head("sequence", "cls").validate("t5"); }).find("t5"),
            std::string::npos);
}

TEST(Classifier, LlmkitDirectoryLoadsBack) {
  const llmkit::testing::TempDir tmp;
  auto body = std::make_shared<models::GPT>(tiny_gpt("llama"), 3);
  Classifier model(body, head("sequence", "last"), 5);
  io::write_file_atomic(tmp.file("config.json"), model.config_json().dump(2));
  io::save_safetensors(tmp.file("model.safetensors"), model.named_parameters(), {});
  models::LoadOptions o;
  o.tokenizer = false;
  models::LoadedModel m = models::load(tmp.path.string(), o);
  ASSERT_NE(m.classifier, nullptr);
  EXPECT_EQ(m.arch, "llama");
  EXPECT_EQ(m.classifier->head_config().labels, model.head_config().labels);
  NoGradGuard ng;
  model.eval();
  const Inputs in = inputs();
  EXPECT_EQ(m.classifier->forward(in.ids, in.mask).to_vector<float>(),
            model.forward(in.ids, in.mask).to_vector<float>());
}

TEST(Classifier, TransformersSequenceClassificationParity) {
  if (!llmkit::testing::ref_python_has("transformers"))
    GTEST_SKIP() << "transformers does not import in " << llmkit::testing::ref_python()
                 << ": classifier parity skipped (scripts/install-deps.sh --test)";
  const llmkit::testing::TempDir tmp;
  const std::string cmd = llmkit::testing::ref_python() + " " + llmkit::testing::source_dir() +
                          "/tests/models/classifier_ref.py " + tmp.path.string();
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  const io::SafetensorsFile ref = io::load_safetensors(tmp.file("ref.safetensors"));
  const Tensor ids = ref.get("ids"), mask = ref.get("attention_mask").to(DType::U8);
  for (const std::string name : {"bert_cls", "bert_reg", "llama_cls"}) {
    SCOPED_TRACE(name);
    models::LoadOptions o;
    o.tokenizer = false;
    models::LoadedModel m = models::load(tmp.file(name), o);
    ASSERT_NE(m.classifier, nullptr);
    const bool reg = name == "bert_reg";
    EXPECT_EQ(m.classifier->head_config().regression(), reg);
    if (name == "bert_cls") {
      EXPECT_EQ(m.classifier->head_config().labels,
                (std::vector<std::string>{"neg", "neu", "pos"}));
    }
    NoGradGuard ng;
    const Tensor logits = m.classifier->forward(ids, mask);
    const Tensor loss = m.classifier->loss(logits, reg ? ref.get("targets") : ref.get("labels"));
    const double el =
        llmkit::testing::rel_err(logits, ref.get(name + ".logits").reshape(logits.shape()));
    const double ll = llmkit::testing::rel_err(loss.reshape({1}), ref.get(name + ".loss"));
    std::printf("  %-10s logits rel err %.2e, loss rel err %.2e\n", name.c_str(), el, ll);
    EXPECT_LT(el, 1e-4);
    EXPECT_LT(ll, 1e-4);
  }
}
