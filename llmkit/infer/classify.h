// Using a fine-tuned classifier (models/classifier.h): texts in, label probabilities out, and the
// figures that say how good it is on labelled data: accuracy, per-class precision / recall / F1,
// macro-F1 and the confusion matrix (rows: true label, columns: predicted); for regression MSE
// and Pearson correlation. Inference only (no autograd); what `llmkit classify` prints and what
// finetune reports at each evaluation.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "llmkit/infer/batching.h"
#include "llmkit/infer/sampler.h"  // argmax
#include "llmkit/models/classifier.h"
#include "llmkit/tokenizer/tokenizer.h"

namespace llmkit::infer {

// A text's input ids for a classifier: BERT "[CLS] text [SEP]"; decoders the text's tokens
// (with bos when add_bos), cut to max_len (the model's block_size when 0).
std::vector<int32_t> classifier_input_ids(const models::Classifier& model,
                                          const tokenizer::Tokenizer& tok, const std::string& text,
                                          int64_t max_len, bool add_bos, int32_t bos_id);

// Logits [N][L] (sequence task) of N id sequences, in batches of similar length (right-padded,
// masked), in eval mode (restored afterwards), without autograd.
std::vector<std::vector<float>> classify_ids(models::Classifier& model,
                                             std::span<const std::vector<int32_t>> ids,
                                             int64_t batch = 32);

std::vector<float> softmax(std::span<const float> logits);

struct ClassificationReport {
  std::vector<std::string> labels;
  std::vector<std::vector<int64_t>> confusion;  // [true][predicted]
  double accuracy = 0, macro_f1 = 0;
  std::vector<double> precision, recall, f1;  // per label
  int64_t n = 0;
  std::string to_text() const;  // aligned table: the confusion matrix and per-class figures
  std::string to_json() const;  // one line
};
// Predictions and truths as label ids in [0, labels.size()).
ClassificationReport classification_report(std::span<const int64_t> truth,
                                           std::span<const int64_t> predicted,
                                           const std::vector<std::string>& labels);

}  // namespace llmkit::infer
