// Classifier inference and its report (classify.h): input ids, batched logits without autograd,
// softmax, and accuracy / per-class P, R, F1 / macro-F1 / the confusion matrix.
#include "llmkit/infer/classify.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <numeric>

#include "llmkit/infer/embed.h"

namespace llmkit::infer {

std::vector<int32_t> classifier_input_ids(const models::Classifier& model,
                                          const tokenizer::Tokenizer& tok, const std::string& text,
                                          int64_t max_len, bool add_bos, int32_t bos_id) {
  const int64_t block =
      model.bert ? model.bert->config().block_size : model.gpt->config().block_size;
  const int64_t limit = max_len > 0 ? std::min(max_len, block) : block;
  if (model.bert) return bert_input_ids(tok, text, limit);
  std::vector<int32_t> ids;
  if (add_bos && bos_id >= 0) ids.push_back(bos_id);
  for (int32_t id : tok.encode(text)) ids.push_back(id);
  if (ids.empty()) ids.push_back(bos_id >= 0 ? bos_id : 0);  // an empty text still has a token
  if (static_cast<int64_t>(ids.size()) > limit) ids.resize(static_cast<size_t>(limit));
  return ids;
}

std::vector<std::vector<float>> classify_ids(models::Classifier& model,
                                             std::span<const std::vector<int32_t>> ids,
                                             int64_t batch) {
  LLMKIT_CHECK(batch >= 1, "classify: batch size must be positive, got ", batch);
  LLMKIT_CHECK(model.head_config().task == "sequence",
               "classify: the model is a token classifier (one label per token)");
  const std::vector<size_t> order = longest_first(ids);
  const bool was_training = model.is_training();
  model.eval();
  NoGradGuard ng;
  std::vector<std::vector<float>> out(ids.size());
  try {
    for (size_t start = 0; start < order.size(); start += static_cast<size_t>(batch)) {
      const size_t end = std::min(order.size(), start + static_cast<size_t>(batch));
      std::vector<std::vector<int32_t>> rows;
      for (size_t i = start; i < end; ++i) rows.push_back(ids[order[i]]);
      const PaddedBatch p = pad_batch(rows, 0);
      const std::vector<float> v =
          model.forward(p.ids, p.mask).contiguous().to_vector<float>();  // [B, L]
      const size_t L = v.size() / rows.size();
      for (size_t b = 0; b < rows.size(); ++b)
        out[order[start + b]].assign(v.begin() + b * L, v.begin() + (b + 1) * L);
    }
  } catch (...) {
    model.train(was_training);
    throw;
  }
  model.train(was_training);
  return out;
}

std::vector<float> softmax(std::span<const float> logits) {
  std::vector<float> p(logits.size());
  if (logits.empty()) return p;
  const float m = *std::max_element(logits.begin(), logits.end());
  double sum = 0;
  for (size_t i = 0; i < p.size(); ++i) sum += std::exp(double(logits[i]) - m);
  for (size_t i = 0; i < p.size(); ++i)
    p[i] = static_cast<float>(std::exp(double(logits[i]) - m) / sum);
  return p;
}

ClassificationReport classification_report(std::span<const int64_t> truth,
                                           std::span<const int64_t> predicted,
                                           const std::vector<std::string>& labels) {
  LLMKIT_CHECK(truth.size() == predicted.size(), "report: ", truth.size(), " truths but ",
               predicted.size(), " predictions");
  const auto L = static_cast<int64_t>(labels.size());
  ClassificationReport r;
  r.labels = labels;
  r.n = static_cast<int64_t>(truth.size());
  r.confusion.assign(L, std::vector<int64_t>(L, 0));
  int64_t correct = 0;
  for (size_t i = 0; i < truth.size(); ++i) {
    LLMKIT_CHECK(truth[i] >= 0 && truth[i] < L && predicted[i] >= 0 && predicted[i] < L,
                 "report: label id out of range at example ", i);
    ++r.confusion[truth[i]][predicted[i]];
    correct += truth[i] == predicted[i];
  }
  r.accuracy = r.n > 0 ? double(correct) / r.n : 0;
  // scikit-learn's convention: a ratio whose denominator is 0 is 0 (zero_division=0).
  for (int64_t c = 0; c < L; ++c) {
    int64_t tp = r.confusion[c][c], col = 0, row = 0;
    for (int64_t k = 0; k < L; ++k) {
      col += r.confusion[k][c];
      row += r.confusion[c][k];
    }
    const double p = col > 0 ? double(tp) / col : 0, rc = row > 0 ? double(tp) / row : 0;
    r.precision.push_back(p);
    r.recall.push_back(rc);
    r.f1.push_back(p + rc > 0 ? 2 * p * rc / (p + rc) : 0);
  }
  r.macro_f1 = L > 0 ? std::accumulate(r.f1.begin(), r.f1.end(), 0.0) / L : 0;
  return r;
}

std::string ClassificationReport::to_text() const {
  size_t w = 9;  // "true\pred"
  for (const auto& l : labels) w = std::max(w, l.size());
  // Right-aligned in `width` (built with append: GCC 12 warns falsely about operator+ here).
  auto pad = [](const std::string& s, size_t width) {
    std::string out(width > s.size() ? width - s.size() : 0, ' ');
    out.append(s);
    return out;
  };
  std::string out = "confusion matrix (rows: true label, columns: predicted)\n";
  out += pad("true\\pred", w);
  for (const auto& l : labels) out.append("  ").append(pad(l, std::max<size_t>(l.size(), 6)));
  out += "\n";
  for (size_t i = 0; i < labels.size(); ++i) {
    out += pad(labels[i], w);
    for (size_t j = 0; j < labels.size(); ++j)
      out.append("  ").append(
          pad(std::to_string(confusion[i][j]), std::max<size_t>(labels[j].size(), 6)));
    out += "\n";
  }
  char line[256];
  out.append("\n").append(pad("label", w)).append("  precision     recall         f1    support\n");
  for (size_t i = 0; i < labels.size(); ++i) {
    int64_t support = 0;
    for (int64_t v : confusion[i]) support += v;
    std::snprintf(line, sizeof line, "  %9.4f  %9.4f  %9.4f  %9lld\n", precision[i], recall[i],
                  f1[i], static_cast<long long>(support));
    out.append(pad(labels[i], w)).append(line);
  }
  std::snprintf(line, sizeof line, "\naccuracy %.4f   macro-F1 %.4f   (%lld examples)\n", accuracy,
                macro_f1, static_cast<long long>(n));
  return out + line;
}

std::string ClassificationReport::to_json() const {
  nlohmann::json per = nlohmann::json::object();
  for (size_t i = 0; i < labels.size(); ++i)
    per[labels[i]] = {{"precision", precision[i]}, {"recall", recall[i]}, {"f1", f1[i]}};
  const nlohmann::json j = {{"accuracy", accuracy}, {"macro_f1", macro_f1},   {"n", n},
                            {"labels", labels},     {"confusion", confusion}, {"per_class", per}};
  return j.dump();
}

}  // namespace llmkit::infer
