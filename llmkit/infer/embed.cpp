// Sentence embeddings (see embed.h). B batch, T time (longest sequence of the batch), C channels.
#include "llmkit/infer/embed.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <numeric>

#include "llmkit/infer/batching.h"
#include "llmkit/io/json_file.h"
#include "llmkit/models/hf_bert.h"

namespace llmkit::infer {

using io::read_json_file;
using nlohmann::json;

namespace {

// The pooling a sentence-transformers Pooling config asks for.
Pooling read_pooling(const std::string& path) {
  const json j = read_json_file(path);
  LLMKIT_CHECK(j.is_object(), path, ": not a JSON object");
  auto flag = [&](const char* key) {
    const auto it = j.find(key);
    return it != j.end() && it->is_boolean() && it->get<bool>();
  };
  // Newer files may say it in one string instead of the flags.
  if (const auto it = j.find("pooling_mode"); it != j.end() && it->is_string()) {
    const std::string m = it->get<std::string>();
    if (m == "mean") return Pooling::Mean;
    if (m == "cls") return Pooling::Cls;
    fail(path, ": pooling_mode '", m, "' is not supported (mean, cls)");
  }
  const bool mean = flag("pooling_mode_mean_tokens"), cls = flag("pooling_mode_cls_token");
  for (const char* other : {"pooling_mode_max_tokens", "pooling_mode_mean_sqrt_len_tokens",
                            "pooling_mode_weightedmean_tokens", "pooling_mode_lasttoken"})
    LLMKIT_CHECK(!flag(other), path, ": ", other, " is not supported (mean or cls pooling only)");
  LLMKIT_CHECK(mean != cls, path,
               ": exactly one of pooling_mode_mean_tokens and "
               "pooling_mode_cls_token must be true (concatenated poolings are not supported)");
  return mean ? Pooling::Mean : Pooling::Cls;
}

}  // namespace

EmbedDefaults read_sentence_transformers_config(const std::string& dir) {
  EmbedDefaults d;
  const std::string modules_path = dir + "/modules.json";
  if (!std::filesystem::exists(modules_path)) return d;
  d.found = true;
  const json modules = read_json_file(modules_path);
  LLMKIT_CHECK(modules.is_array(), modules_path, ": not a JSON array of modules");
  for (const auto& m : modules) {
    const std::string type = m.is_object() ? m.value("type", "") : "";
    const std::string path = m.is_object() ? m.value("path", "") : "";
    if (type == "sentence_transformers.models.Transformer") continue;
    if (type == "sentence_transformers.models.Normalize") {
      d.normalize = true;
    } else if (type == "sentence_transformers.models.Pooling") {
      d.pooling = read_pooling(dir + "/" + path + "/config.json");
    } else {
      fail(modules_path, ": module type '", type,
           "' is not supported (Transformer, Pooling, Normalize only)");
    }
  }
  const std::string sbert_path = dir + "/sentence_bert_config.json";
  if (std::filesystem::exists(sbert_path)) {
    const json s = read_json_file(sbert_path);
    if (const auto it = s.find("max_seq_length"); it != s.end() && !it->is_null()) {
      LLMKIT_CHECK(it->is_number_integer() && it->get<int64_t>() >= 2, sbert_path,
                   ": max_seq_length must be an integer >= 2, got ", it->dump());
      d.max_len = it->get<int64_t>();
    }
  }
  return d;
}

Embedder load_embedder(const std::string& dir) {
  LLMKIT_CHECK(std::filesystem::is_directory(dir), "embed: model '", dir,
               "' is not a directory (an encoder model directory holds config.json, "
               "model.safetensors and tokenizer.json)");
  Embedder e;
  e.defaults = read_sentence_transformers_config(dir);
  e.model = models::load_hf_bert_dir(dir);
  const std::string tok_path = dir + "/tokenizer.json";
  LLMKIT_CHECK(std::filesystem::exists(tok_path), "embed: model directory '", dir,
               "' has no tokenizer.json (the encoder's WordPiece tokenizer is needed)");
  e.tokenizer = std::make_unique<tokenizer::Tokenizer>(tokenizer::Tokenizer::load(tok_path));
  return e;
}

namespace {

// [CLS] body [SEP], the body cut to max_len - 2 tokens.
std::vector<int32_t> wrap_bert(const tokenizer::Tokenizer& tok, const std::vector<int32_t>& body,
                               int64_t max_len) {
  LLMKIT_CHECK(max_len >= 2, "embed: max length ", max_len, " leaves no room for [CLS] [SEP]");
  const auto cls = tok.find_token("[CLS]"), sep = tok.find_token("[SEP]");
  LLMKIT_CHECK(cls && sep,
               "embed: the tokenizer has no [CLS] / [SEP] token (not a BERT "
               "WordPiece tokenizer)");
  const size_t keep = std::min(body.size(), static_cast<size_t>(max_len - 2));
  std::vector<int32_t> ids;
  ids.reserve(keep + 2);
  ids.push_back(*cls);
  ids.insert(ids.end(), body.begin(), body.begin() + static_cast<std::ptrdiff_t>(keep));
  ids.push_back(*sep);
  return ids;
}

}  // namespace

std::vector<int32_t> bert_input_ids(const tokenizer::Tokenizer& tok, std::string_view text,
                                    int64_t max_len) {
  return wrap_bert(tok, tok.encode(text), max_len);
}

std::vector<std::vector<float>> embed_ids(models::Bert& model,
                                          std::span<const std::vector<int32_t>> ids,
                                          Pooling pooling, bool normalize, int64_t batch) {
  LLMKIT_CHECK(batch >= 1, "embed: batch size must be positive, got ", batch);
  const auto& cfg = model.config();
  for (size_t i = 0; i < ids.size(); ++i)
    LLMKIT_CHECK(!ids[i].empty() && static_cast<int64_t>(ids[i].size()) <= cfg.block_size,
                 "embed: sequence ", i, " has ", ids[i].size(),
                 " tokens, outside [1, max_position_embeddings ", cfg.block_size, "]");
  const std::vector<size_t> order = longest_first(ids);
  const bool was_training = model.is_training();
  model.eval();
  NoGradGuard ng;
  const int32_t pad = cfg.pad_id >= 0 ? static_cast<int32_t>(cfg.pad_id) : 0;
  std::vector<std::vector<float>> out(ids.size());
  try {
    for (size_t start = 0; start < order.size(); start += static_cast<size_t>(batch)) {
      const size_t end = std::min(order.size(), start + static_cast<size_t>(batch));
      const int64_t B = static_cast<int64_t>(end - start);
      std::vector<std::vector<int32_t>> rows;
      for (size_t i = start; i < end; ++i) rows.push_back(ids[order[i]]);
      const PaddedBatch p = pad_batch(rows, pad);
      const Tensor hidden = model.encode(p.ids, Tensor(), p.mask);  // [B, T, C]
      const std::vector<float> v = models::Bert::pool(hidden, p.mask, pooling).to_vector<float>();
      const int64_t C = hidden.size(2);
      for (int64_t b = 0; b < B; ++b) {
        std::vector<float> e(v.begin() + b * C, v.begin() + (b + 1) * C);
        if (normalize) {
          // sentence-transformers' Normalize: x / max(|x|, 1e-12), the norm summed in double.
          double ss = 0;
          for (float x : e) ss += double(x) * x;
          const double inv = 1.0 / std::max(std::sqrt(ss), 1e-12);
          for (float& x : e) x = static_cast<float>(x * inv);
        }
        out[order[start + b]] = std::move(e);
      }
    }
  } catch (...) {
    model.train(was_training);
    throw;
  }
  model.train(was_training);
  return out;
}

std::vector<std::vector<float>> embed_texts(models::Bert& model, const tokenizer::Tokenizer& tok,
                                            std::span<const std::string> texts, Pooling pooling,
                                            bool normalize, int64_t max_len, int64_t batch) {
  const int64_t limit =
      max_len > 0 ? std::min(max_len, model.config().block_size) : model.config().block_size;
  std::vector<std::vector<int32_t>> ids = tok.encode_batch(texts);  // in parallel
  for (auto& row : ids) row = wrap_bert(tok, row, limit);
  return embed_ids(model, ids, pooling, normalize, batch);
}

double cosine_similarity(std::span<const float> a, std::span<const float> b) {
  LLMKIT_CHECK(a.size() == b.size(), "cosine_similarity: sizes ", a.size(), " and ", b.size(),
               " differ");
  double ab = 0, aa = 0, bb = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    ab += double(a[i]) * b[i];
    aa += double(a[i]) * a[i];
    bb += double(b[i]) * b[i];
  }
  return aa > 0 && bb > 0 ? ab / std::sqrt(aa * bb) : 0.0;
}

}  // namespace llmkit::infer
