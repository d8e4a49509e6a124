// Sentence embeddings (infer/embed.h). Without Python: on a tiny random BERT, batching with
// padding gives the same vectors as one text at a time, mean/CLS pooling and normalisation are
// what they say, sentence-transformers' config files give the defaults (and refuse what we do
// not do). With the reference Python and all-MiniLM-L6-v2 (scripts/get-models.sh): the last
// hidden states equal transformers' BertModel (1e-4 relative) and the sentence embeddings
// sentence-transformers' encode (cosine >= 0.9999, the minimum printed) for 21 English and
// Korean texts, two of them cut at 256 tokens, in batches of mixed lengths: first on the
// reference tokenizer's ids, then end to end with our tokenizer (tests/models/hf_bert_ref.py).
// One test, so the slow Python reference runs once.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>

#include "common/error_of.h"
#include "llmkit/infer/embed.h"
#include "llmkit/models/hf_bert.h"
#include "tests/common/parity.h"
#include "tests/common/reference.h"
#include "tests/common/temp_dir.h"

using namespace llmkit;
using llmkit::testing::error_of;
using llmkit::testing::rel_err;

namespace {

models::BertConfig tiny_config() {
  models::BertConfig c;
  c.vocab_size = 40;
  c.n_layer = 2;
  c.n_head = 2;
  c.n_embd = 16;
  c.block_size = 12;
  c.pretraining_heads = false;
  return c;
}

std::vector<std::vector<int32_t>> tiny_ids() {
  return {{2, 7, 9, 3}, {2, 11, 12, 13, 14, 15, 16, 3}, {2, 3}, {2, 30, 31, 3}, {2, 5, 6, 7, 8, 3}};
}

double norm(const std::vector<float>& v) {
  double s = 0;
  for (float x : v) s += double(x) * x;
  return std::sqrt(s);
}

void write(const std::string& path, const std::string& text) {
  std::ofstream(path) << text;
}

}  // namespace

TEST(Embed, PaddedBatchesEqualOneTextAtATime) {
  models::Bert model(tiny_config(), 3);
  const auto ids = tiny_ids();
  const auto alone = infer::embed_ids(model, ids, infer::Pooling::Mean, false, 1);
  for (int64_t batch : {2, 5}) {
    const auto batched = infer::embed_ids(model, ids, infer::Pooling::Mean, false, batch);
    ASSERT_EQ(batched.size(), ids.size());
    for (size_t i = 0; i < ids.size(); ++i)
      EXPECT_LT(llmkit::testing::max_abs_diff(batched[i], alone[i]), 1e-5)
          << "text " << i << " batch " << batch;
  }
  EXPECT_TRUE(model.is_training()) << "embed_ids must restore the model's mode";
}

TEST(Embed, PoolingAndNormalisation) {
  models::Bert model(tiny_config(), 4);
  model.eval();
  const auto ids = tiny_ids();
  const auto mean = infer::embed_ids(model, ids, infer::Pooling::Mean, false);
  const auto cls = infer::embed_ids(model, ids, infer::Pooling::Cls, false);
  const auto unit = infer::embed_ids(model, ids, infer::Pooling::Mean, true);
  NoGradGuard ng;
  for (size_t i = 0; i < ids.size(); ++i) {
    const int64_t T = static_cast<int64_t>(ids[i].size());
    const Tensor h = model.encode(Tensor::from_vector(ids[i], {1, T}));  // [1, T, C]
    const std::vector<float> hv = h.to_vector<float>();
    std::vector<double> want_mean(16, 0.0), want_cls(hv.begin(), hv.begin() + 16);
    for (int64_t t = 0; t < T; ++t)
      for (int c = 0; c < 16; ++c) want_mean[c] += hv[t * 16 + c] / double(T);
    EXPECT_LT(rel_err(mean[i], want_mean), 1e-5) << i;
    EXPECT_LT(rel_err(cls[i], want_cls), 1e-6) << i;
    EXPECT_NEAR(norm(unit[i]), 1.0, 1e-6) << i;
    EXPECT_NEAR(infer::cosine_similarity(unit[i], mean[i]), 1.0, 1e-6) << i;
  }
}

TEST(Embed, RefusesBadSequences) {
  models::Bert model(tiny_config(), 5);
  std::vector<std::vector<int32_t>> too_long = {std::vector<int32_t>(13, 4)};
  EXPECT_NE(error_of([&] {
              infer::embed_ids(model, too_long, infer::Pooling::Mean, true);
            }).find("13 tokens"),
            std::string::npos);
  std::vector<std::vector<int32_t>> empty = {{}};
  EXPECT_NE(error_of([&] {
              infer::embed_ids(model, empty, infer::Pooling::Mean, true);
            }).find("0 tokens"),
            std::string::npos);
}

TEST(Embed, SentenceTransformersConfig) {
  const llmkit::testing::TempDir tmp;
  EXPECT_FALSE(infer::read_sentence_transformers_config(tmp.path.string()).found);
  write(tmp.file("modules.json"),
        R"([{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
            {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}])");
  std::filesystem::create_directories(tmp.file("1_Pooling"));
  write(tmp.file("1_Pooling/config.json"),
        R"({"pooling_mode_cls_token": true, "pooling_mode_mean_tokens": false})");
  write(tmp.file("sentence_bert_config.json"), R"({"max_seq_length": 128})");
  const auto d = infer::read_sentence_transformers_config(tmp.path.string());
  EXPECT_TRUE(d.found);
  EXPECT_EQ(d.pooling, infer::Pooling::Cls);
  EXPECT_TRUE(d.normalize);
  EXPECT_EQ(d.max_len, 128);

  write(tmp.file("1_Pooling/config.json"),
        R"({"pooling_mode_max_tokens": true, "pooling_mode_mean_tokens": false})");
  EXPECT_NE(error_of([&] {
              infer::read_sentence_transformers_config(tmp.path.string());
            }).find("pooling_mode_max_tokens"),
            std::string::npos);
  write(tmp.file("modules.json"),
        R"([{"path": "2_Dense", "type": "sentence_transformers.models.Dense"}])");
  EXPECT_NE(error_of([&] {
              infer::read_sentence_transformers_config(tmp.path.string());
            }).find("sentence_transformers.models.Dense"),
            std::string::npos);
}

namespace {

// The all-MiniLM-L6-v2 reference (texts, ids, hidden states, sentence-transformers' vectors)
// in `tmp`; false with the reason in *why when it cannot be made here.
bool minilm_reference(const llmkit::testing::TempDir& tmp, std::string* why) {
  const std::string dir = llmkit::testing::model_path("minilm");
  if (dir.empty()) {
    *why =
        "all-MiniLM-L6-v2 is not in " + llmkit::testing::models_dir() + " (scripts/get-models.sh)";
    return false;
  }
  if (!llmkit::testing::ref_python_has("sentence_transformers")) {
    *why = "sentence_transformers does not import in " + llmkit::testing::ref_python();
    return false;
  }
  const std::string cmd = llmkit::testing::ref_python() + " " + llmkit::testing::source_dir() +
                          "/tests/models/hf_bert_ref.py minilm " + dir + " " + tmp.path.string();
  EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
  return true;
}

// Row i of the padded reference ids, without its padding.
std::vector<std::vector<int32_t>> unpadded_rows(const io::SafetensorsFile& ref) {
  const Tensor ids = ref.get("ids");
  const int64_t N = ids.size(0), T = ids.size(1);
  const std::vector<int32_t> v = ids.to_vector<int32_t>(),
                             m = ref.get("attention_mask").to_vector<int32_t>();
  std::vector<std::vector<int32_t>> rows(N);
  for (int64_t i = 0; i < N; ++i)
    for (int64_t t = 0; t < T; ++t)
      if (m[i * T + t]) rows[i].push_back(v[i * T + t]);
  return rows;
}

// The smallest cosine between ours and sentence-transformers', printed.
double min_cosine(const std::vector<std::vector<float>>& ours, const Tensor& st, const char* what) {
  const int64_t C = st.size(1);
  const std::vector<float> s = st.to_vector<float>();
  double lo = 2;
  for (size_t i = 0; i < ours.size(); ++i) {
    const double c = infer::cosine_similarity(
        ours[i], std::span<const float>(s.data() + i * C, static_cast<size_t>(C)));
    lo = std::isfinite(c) ? std::min(lo, c) : -2;
  }
  std::printf("  %-40s min cosine %.8f (1 - min %.1e) over %zu texts\n", what, lo, 1 - lo,
              ours.size());
  return lo;
}

}  // namespace

TEST(EmbedMiniLM, MatchesTransformersAndSentenceTransformers) {
  const llmkit::testing::TempDir tmp;
  std::string why;
  if (!minilm_reference(tmp, &why)) GTEST_SKIP() << "MiniLM parity skipped: " << why;
  const io::SafetensorsFile ref = io::load_safetensors(tmp.file("minilm_ref.safetensors"));
  const std::string dir = llmkit::testing::model_path("minilm");
  auto model = models::load_hf_bert_dir(dir);
  EXPECT_EQ(model->config().n_embd, 384);

  // Last hidden states of the whole padded batch [21, 256], compared at the real tokens.
  const Tensor ids = ref.get("ids"), mask = ref.get("attention_mask").to(DType::U8);
  Tensor hidden;
  {
    NoGradGuard ng;
    hidden = model->encode(ids, Tensor(), mask);
  }
  const std::vector<int32_t> m = ref.get("attention_mask").to_vector<int32_t>();
  const std::vector<float> ours = hidden.to_vector<float>(),
                           want = ref.get("hidden").to_vector<float>();
  std::vector<double> a, b;
  for (size_t i = 0; i < m.size(); ++i)
    if (m[i])
      for (size_t c = 0; c < 384; ++c) {
        a.push_back(ours[i * 384 + c]);
        b.push_back(want[i * 384 + c]);
      }
  const double e = rel_err(a, b);
  std::printf("  last hidden states vs transformers BertModel: rel err %.2e (%zu tokens)\n", e,
              a.size() / 384);
  EXPECT_LT(e, 1e-4);

  // Sentence embeddings from the reference's ids, in batches of mixed lengths.
  const auto defaults = infer::read_sentence_transformers_config(dir);
  EXPECT_EQ(defaults.pooling, infer::Pooling::Mean);
  EXPECT_TRUE(defaults.normalize);
  EXPECT_EQ(defaults.max_len, 256);
  const auto rows = unpadded_rows(ref);
  for (int64_t batch : {1, 5, 32}) {
    const auto emb = infer::embed_ids(*model, rows, defaults.pooling, defaults.normalize, batch);
    const std::string what = "reference ids, batch " + std::to_string(batch);
    EXPECT_GE(min_cosine(emb, ref.get("st"), what.c_str()), 0.9999);
    for (const auto& v : emb) EXPECT_NEAR(norm(v), 1.0, 1e-5);
  }

  // End to end: our tokenizer gives the reference's ids, and embed_texts its vectors.
  const infer::Embedder em = infer::load_embedder(dir);
  std::ifstream in(tmp.file("texts.json"));
  const std::vector<std::string> texts = nlohmann::json::parse(in).get<std::vector<std::string>>();
  ASSERT_EQ(rows.size(), texts.size());
  for (size_t i = 0; i < texts.size(); ++i)
    EXPECT_EQ(infer::bert_input_ids(*em.tokenizer, texts[i], em.defaults.max_len), rows[i])
        << "text " << i << ": " << texts[i].substr(0, 60);
  const auto emb = infer::embed_texts(*em.model, *em.tokenizer, texts, em.defaults.pooling,
                                      em.defaults.normalize, em.defaults.max_len, 8);
  EXPECT_GE(min_cosine(emb, ref.get("st"), "llmkit end to end (our tokenizer)"), 0.9999);
}
