// BERT: Hugging Face parameter names and counts, output shapes, the padding mask (padding changes
// nothing for the real tokens), the masked-position loss against the full-logits loss, every
// parameter's gradient against finite differences (f64), sentence pooling, seeding and config
// validation.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "common/gradcheck.h"
#include "llmkit/core/parallel.h"
#include "llmkit/models/bert.h"

using namespace llmkit;
using models::Bert;
using models::BertConfig;

namespace {

BertConfig tiny() {
  BertConfig c;
  c.vocab_size = 11;
  c.n_layer = 2;
  c.n_head = 2;
  c.n_embd = 8;
  c.block_size = 16;
  c.pad_id = 0;
  return c;
}

Tensor ids_of(std::vector<int32_t> v, int64_t B) {
  const int64_t T = static_cast<int64_t>(v.size()) / B;
  return Tensor::from_vector(v, {B, T});
}

Tensor mask_of(std::vector<uint8_t> v, int64_t B) {
  const int64_t T = static_cast<int64_t>(v.size()) / B;
  Tensor m = Tensor::empty({B, T}, DType::U8);
  std::copy(v.begin(), v.end(), m.data<uint8_t>());
  return m;
}

// Larger weights than BERT's init, so every path carries signal in the checks below.
void scramble(Bert& m, uint64_t seed, double std) {
  NoGradGuard ng;
  Generator g(seed);
  for (auto& [n, p] : m.named_parameters())
    g.normal_(p, n.find("LayerNorm.weight") != std::string::npos ? 1.0 : 0.0, std);
}

// One thread while it lives: finite differences run thousands of tiny forwards, which gain
// nothing from more, and on a loaded machine every OpenMP barrier waits for a descheduled thread.
struct OneThread {
  int saved = num_threads();
  OneThread() { set_num_threads(1); }
  ~OneThread() { set_num_threads(saved); }
};

}  // namespace

TEST(Bert, HuggingFaceNamesAndParameterCount) {
  Bert m(tiny());
  auto sd = m.state_dict();
  for (const char* n :
       {"bert.embeddings.word_embeddings.weight", "bert.embeddings.position_embeddings.weight",
        "bert.embeddings.token_type_embeddings.weight", "bert.embeddings.LayerNorm.weight",
        "bert.embeddings.LayerNorm.bias", "bert.encoder.layer.0.attention.self.query.weight",
        "bert.encoder.layer.0.attention.self.key.bias",
        "bert.encoder.layer.1.attention.self.value.weight",
        "bert.encoder.layer.0.attention.output.dense.weight",
        "bert.encoder.layer.0.attention.output.LayerNorm.weight",
        "bert.encoder.layer.1.intermediate.dense.weight", "bert.encoder.layer.1.output.dense.bias",
        "bert.encoder.layer.1.output.LayerNorm.bias", "bert.pooler.dense.weight",
        "cls.predictions.transform.dense.weight", "cls.predictions.transform.LayerNorm.weight",
        "cls.predictions.bias", "cls.seq_relationship.weight", "cls.seq_relationship.bias"})
    EXPECT_TRUE(sd.count(n)) << n;
  EXPECT_FALSE(sd.count("cls.predictions.decoder.weight"));  // tied to the word embeddings
  EXPECT_EQ(sd.at("bert.encoder.layer.0.intermediate.dense.weight").shape(), (Shape{32, 8}));
  EXPECT_EQ(sd.at("cls.seq_relationship.weight").shape(), (Shape{2, 8}));
  // embeddings: 11*8 + 16*8 + 2*8 + LN 16; per layer: q, k, v, o (4 * 72) + 2 LN (32) + FFN
  // (256 + 32 + 256 + 8); pooler 72; transform 72 + LN 16; decoder bias 11; NSP 18.
  const int64_t per_layer = 4 * 72 + 32 + 256 + 32 + 256 + 8;
  EXPECT_EQ(m.num_parameters(), 88 + 128 + 16 + 16 + 2 * per_layer + 72 + 72 + 16 + 11 + 18);
  // Initialisation: the [PAD] row is zero, LayerNorms are identity, weights have std ~0.02.
  auto word = sd.at("bert.embeddings.word_embeddings.weight").to_vector<float>();
  for (int c = 0; c < 8; ++c) EXPECT_EQ(word[c], 0.0f);
  EXPECT_EQ(sd.at("bert.embeddings.LayerNorm.weight").to_vector<float>()[3], 1.0f);
  double ss = 0;
  auto q = sd.at("bert.encoder.layer.0.attention.self.query.weight").to_vector<float>();
  for (float v : q) ss += v * v;
  EXPECT_NEAR(std::sqrt(ss / q.size()), 0.02, 0.006);
}

TEST(Bert, ForwardShapes) {
  Bert m(tiny(), 1);
  NoGradGuard ng;
  Tensor ids = ids_of({2, 5, 6, 3, 7, 3, 2, 9, 3, 10, 8, 3}, 2);  // [2, 6]
  Tensor types = ids_of({0, 0, 0, 0, 1, 1, 0, 0, 0, 1, 1, 1}, 2);
  auto out = m.forward(ids, types);
  EXPECT_EQ(out.hidden.shape(), (Shape{2, 6, 8}));
  EXPECT_EQ(out.mlm_logits.shape(), (Shape{2, 6, 11}));
  EXPECT_EQ(out.nsp_logits.shape(), (Shape{2, 2}));
  EXPECT_EQ(m.sentence_embedding(ids, models::Pooling::Cls).shape(), (Shape{2, 8}));
  EXPECT_EQ(m.sentence_embedding(ids, models::Pooling::Mean).shape(), (Shape{2, 8}));
  EXPECT_EQ(m.pooled(out.hidden).shape(), (Shape{2, 8}));
}

TEST(Bert, PaddingChangesNothingForRealTokens) {
  Bert m(tiny(), 2, DType::F64);
  scramble(m, 4, 0.3);
  NoGradGuard ng;
  // Row 0 has 3 padding positions at the end, row 1 none.
  Tensor ids = ids_of({2, 5, 6, 3, 0, 0, 0, 2, 9, 3, 10, 8, 4, 3}, 2);  // [2, 7]
  Tensor mask = mask_of({1, 1, 1, 1, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1}, 2);
  Tensor h = m.encode(ids, Tensor(), mask);
  // The default mask (ids != pad_id) is the same mask.
  EXPECT_EQ(llmkit::testing::max_abs_diff(m.encode(ids), h), 0.0);
  // Other ids in the padded positions (under the same mask): the real tokens see no change.
  Tensor ids2 = ids_of({2, 5, 6, 3, 7, 9, 1, 2, 9, 3, 10, 8, 4, 3}, 2);
  Tensor h2 = m.encode(ids2, Tensor(), mask);
  EXPECT_EQ(llmkit::testing::max_abs_diff(h2.slice(1, 0, 4), h.slice(1, 0, 4)), 0.0);
  EXPECT_EQ(llmkit::testing::max_abs_diff(h2.select(0, 1), h.select(0, 1)), 0.0);
  // Without the mask the padded tokens would leak in.
  EXPECT_GT(llmkit::testing::max_abs_diff(m.encode(ids2).slice(1, 0, 4), h.slice(1, 0, 4)), 1e-3);
  // And the padded row equals the same sequence unpadded.
  Tensor alone = m.encode(ids_of({2, 5, 6, 3}, 1));
  EXPECT_LT(llmkit::testing::max_abs_diff(alone.select(0, 0), h.select(0, 0).slice(0, 0, 4)),
            1e-12);
  // Mean pooling averages the real tokens only.
  Tensor mean = Bert::pool(h, mask, models::Pooling::Mean);
  Tensor want = ops::mean(alone, {1});
  EXPECT_LT(llmkit::testing::max_abs_diff(mean.select(0, 0), want.select(0, 0)), 1e-12);
  EXPECT_EQ(
      llmkit::testing::max_abs_diff(Bert::pool(h, mask, models::Pooling::Cls), h.select(1, 0)),
      0.0);
}

TEST(Bert, MaskedPositionLossEqualsFullLogitsLoss) {
  Bert m(tiny(), 3, DType::F64);
  scramble(m, 6, 0.2);
  Tensor ids = ids_of({2, 4, 6, 3, 7, 3, 2, 9, 4, 10, 4, 3}, 2);
  Tensor types = ids_of({0, 0, 0, 0, 1, 1, 0, 0, 0, 1, 1, 1}, 2);
  Tensor labels = ids_of({-100, 5, -100, -100, 8, -100, -100, -100, 6, -100, 1, -100}, 2);
  Tensor nsp = Tensor::from_vector(std::vector<int32_t>{0, 1}, {2});
  NoGradGuard ng;
  auto full = m.forward(ids, types);
  const double want = ops::cross_entropy(full.mlm_logits, labels).item<double>() +
                      ops::cross_entropy(full.nsp_logits, nsp).item<double>();
  models::BertOutput out;
  const double got = m.pretraining_loss(ids, types, Tensor(), labels, nsp, &out).item<double>();
  EXPECT_NEAR(got, want, 1e-12);
  EXPECT_EQ(out.mlm_logits.shape(), (Shape{4, 11}));  // the 4 labelled positions
  EXPECT_THROW(m.pretraining_loss(ids, types, Tensor(), Tensor::full({2, 6}, -100, DType::I32)),
               Error);
}

TEST(Bert, GradientsMatchFiniteDifferences) {
  OneThread one;
  BertConfig c = tiny();
  c.n_layer = 1;
  c.block_size = 8;
  Bert m(c, 3, DType::F64);
  scramble(m, 5, 0.3);
  // With one [PAD] (the masked attention kernel) and without (the unmasked one).
  for (int32_t last : {0, 5}) {
    Tensor ids = ids_of({2, 4, 6, 3, 7, 3, last, 2, 9, 4, 10, 4, 8, 3}, 2);  // [2, 7]
    Tensor types = ids_of({0, 0, 0, 0, 1, 1, 1, 0, 0, 0, 1, 1, 1, 1}, 2);
    Tensor labels =
        ids_of({-100, 5, -100, -100, 8, -100, -100, -100, 6, 4, -100, 1, -100, -100}, 2);
    Tensor nsp = Tensor::from_vector(std::vector<int32_t>{1, 0}, {2});
    std::vector<Tensor> params = m.parameters();
    llmkit::testing::gradcheck(
        [&](const std::vector<Tensor>&) {
          return m.pretraining_loss(ids, types, Tensor(), labels, nsp);
        },
        params, 1e-6, 1e-7, 1e-5);
  }
}

TEST(Bert, MeanPoolingGradientsMatchFiniteDifferences) {
  OneThread one;
  BertConfig c = tiny();
  c.n_layer = 1;
  Bert m(c, 8, DType::F64);
  scramble(m, 9, 0.3);
  Tensor ids = ids_of({2, 4, 6, 3, 0, 2, 9, 4, 10, 3}, 2);
  std::vector<Tensor> params;
  for (auto& [n, p] : m.named_parameters())
    if (n.rfind("bert.", 0) == 0 && n.find("pooler") == std::string::npos) params.push_back(p);
  llmkit::testing::gradcheck(
      [&](const std::vector<Tensor>&) { return m.sentence_embedding(ids, models::Pooling::Mean); },
      params, 1e-6, 1e-7, 1e-5);
}

TEST(Bert, SameSeedSameWeightsAndLoss) {
  Bert a(tiny(), 7), b(tiny(), 7), d(tiny(), 8);
  auto sa = a.state_dict(), sb = b.state_dict(), sd = d.state_dict();
  for (auto& [n, t] : sa) EXPECT_EQ(llmkit::testing::max_abs_diff(t, sb.at(n)), 0.0) << n;
  EXPECT_GT(llmkit::testing::max_abs_diff(sa.at("bert.pooler.dense.weight"),
                                          sd.at("bert.pooler.dense.weight")),
            0.0);
  BertConfig c = tiny();
  c.dropout = 0.1;
  Bert x(c, 7), y(c, 7);
  Tensor ids = ids_of({2, 4, 6, 3, 7, 3, 2, 9, 4, 10, 4, 3}, 2);
  Tensor labels = ids_of({-100, 5, -100, -100, 8, -100, -100, -100, 6, -100, 1, -100}, 2);
  const float lx = x.pretraining_loss(ids, Tensor(), Tensor(), labels).item<float>();
  const float ly = y.pretraining_loss(ids, Tensor(), Tensor(), labels).item<float>();
  EXPECT_EQ(lx, ly);  // dropout masks come from the seeded generator
  x.eval();
  const float le = x.pretraining_loss(ids, Tensor(), Tensor(), labels).item<float>();
  x.eval();
  EXPECT_EQ(le, x.pretraining_loss(ids, Tensor(), Tensor(), labels).item<float>());
}

TEST(Bert, ConfigJsonRoundTripAndErrors) {
  BertConfig c = tiny();
  c.ffn_hidden = 24;
  BertConfig back = BertConfig::from_json(c.to_json());
  EXPECT_EQ(back.to_json(), c.to_json());
  EXPECT_EQ(BertConfig::from_json(nlohmann::json{{"arch", "bert"}}).norm_eps, 1e-12);
  auto bad = [](nlohmann::json j, const std::string& want) {
    try {
      BertConfig::from_json(j);
      ADD_FAILURE() << "no error for " << j.dump();
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(want), std::string::npos) << e.what();
    }
  };
  auto with = [&](const char* key, nlohmann::json v) {
    nlohmann::json j = c.to_json();
    j[key] = v;
    return j;
  };
  bad(with("n_head", 3), "divisible");
  bad(with("arch", "gpt"), "arch 'gpt'");
  bad(with("n_layers", 2), "unknown field 'n_layers'");
  bad(with("n_embd", "big"), "'n_embd' has the wrong type");
  bad(with("type_vocab_size", 0), "type_vocab_size");
  bad(with("pad_id", 11), "pad_id");
  bad(with("dropout", 1.0), "dropout");
  bad(with("norm_eps", 0.0), "norm_eps");
  Bert m(tiny());
  EXPECT_THROW(m.encode(Tensor::zeros({1, 17}, DType::I32)), Error);    // beyond block_size
  EXPECT_THROW(m.encode(Tensor::full({1, 2}, 11, DType::I32)), Error);  // id >= vocab
  EXPECT_THROW(m.encode(Tensor::zeros({2, 3}, DType::I32), Tensor::zeros({2, 2}, DType::I32)),
               Error);  // token types shape
  EXPECT_THROW(m.encode(Tensor::zeros({1, 2}, DType::I32), Tensor::full({1, 2}, 2, DType::I32)),
               Error);  // type >= 2
}
