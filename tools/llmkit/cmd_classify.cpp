// `llmkit classify`: label texts with a fine-tuned classifier (a model directory or a PEFT
// adapter directory written by `llmkit finetune`, or a Hugging Face *ForSequenceClassification
// directory). Per text one JSON line {"label": ..., "probs": {...}} (regression: {"score": x});
// with --data, a labelled file, the confusion matrix and per-class table on stdout and a last
// JSON line with accuracy and macro-F1 (regression: mse, pearson).
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "llmkit/core/parallel.h"
#include "llmkit/data/labelled.h"
#include "llmkit/infer/classify.h"
#include "llmkit/models/load.h"
#include "tools/llmkit/command.h"

namespace {

struct Args {
  std::string model, text, file, data;
  int64_t max_len = 0, batch = 32;
  int threads = 0;
};

nlohmann::json answer(const llmkit::models::Classifier& c, const std::vector<float>& logits) {
  const auto& h = c.head_config();
  if (h.regression()) return {{"score", logits.at(0)}};
  const std::vector<float> p = llmkit::infer::softmax(logits);
  nlohmann::json probs = nlohmann::json::object();
  for (size_t i = 0; i < p.size(); ++i) probs[h.labels[i]] = p[i];
  return {{"label", h.labels[llmkit::infer::argmax(logits)]}, {"probs", probs}};
}

void report_data(llmkit::models::Classifier& c,
                 const std::vector<llmkit::data::LabelledExample>& ex,
                 const std::vector<std::vector<float>>& logits, const std::string& path) {
  const auto& h = c.head_config();
  if (h.regression()) {
    double se = 0, ma = 0, mb = 0, sab = 0, saa = 0, sbb = 0;
    const double n = static_cast<double>(ex.size());
    std::vector<double> y;
    for (const auto& e : ex) y.push_back(llmkit::data::label_value(e, path, e.line));
    for (size_t i = 0; i < ex.size(); ++i) {
      se += (logits[i][0] - y[i]) * (logits[i][0] - y[i]);
      ma += logits[i][0] / n;
      mb += y[i] / n;
    }
    for (size_t i = 0; i < ex.size(); ++i) {
      sab += (logits[i][0] - ma) * (y[i] - mb);
      saa += (logits[i][0] - ma) * (logits[i][0] - ma);
      sbb += (y[i] - mb) * (y[i] - mb);
    }
    const double r = saa > 0 && sbb > 0 ? sab / std::sqrt(saa * sbb) : 0;
    std::printf("%s\n",
                nlohmann::json({{"mse", se / n}, {"pearson", r}, {"n", ex.size()}}).dump().c_str());
    return;
  }
  std::vector<int64_t> truth, pred;
  for (size_t i = 0; i < ex.size(); ++i) {
    int64_t t = -1;
    for (size_t k = 0; k < h.labels.size(); ++k)
      if (h.labels[k] == ex[i].label) t = static_cast<int64_t>(k);
    LLMKIT_CHECK(t >= 0, path, ":", ex[i].line, ": label '", ex[i].label,
                 "' is not one of the model's labels");
    truth.push_back(t);
    pred.push_back(llmkit::infer::argmax(logits[i]));
  }
  const auto rep = llmkit::infer::classification_report(truth, pred, h.labels);
  std::printf("%s\n%s\n", rep.to_text().c_str(), rep.to_json().c_str());
}

}  // namespace

LLMKIT_COMMAND(
    {"classify", "Label texts with a fine-tuned classifier (from llmkit finetune)",
     [](CLI::App& sub) {
       auto a = std::make_shared<Args>();
       sub.add_option("--model", a->model, "classifier directory (model or adapter)")->required();
       auto* text = sub.add_option("--text", a->text, "one text");
       auto* file = sub.add_option("--file", a->file, "a file of texts, one per line")
                        ->check(CLI::ExistingFile);
       auto* data = sub.add_option("--data", a->data, "labelled .tsv / .jsonl: print the report")
                        ->check(CLI::ExistingFile);
       text->excludes(file)->excludes(data);
       file->excludes(data);
       sub.add_option("--max-len", a->max_len, "tokens per text (default: the model's window)")
           ->check(CLI::PositiveNumber);
       sub.add_option("--batch-size", a->batch, "texts per batch")->check(CLI::PositiveNumber);
       sub.add_option("--threads", a->threads, "threads")->check(CLI::PositiveNumber);
       return [a, text, file, data] {
         if (a->threads > 0) llmkit::set_num_threads(a->threads);
         LLMKIT_CHECK(text->count() + file->count() + data->count() > 0,
                      "classify: give --text, --file or --data");
         llmkit::models::LoadedModel m = llmkit::models::load(a->model);
         LLMKIT_CHECK(m.classifier != nullptr, "classify: '", a->model,
                      "' has no task head (fine-tune it with llmkit finetune)");
         LLMKIT_CHECK(m.tokenizer.has_value(), "classify: '", a->model, "' has no tokenizer");
         const bool add_bos =
             m.gpt != nullptr && (m.add_bos || m.tokenizer_config.value("add_bos_token", false));
         std::vector<std::string> texts;
         std::vector<llmkit::data::LabelledExample> ex;
         if (text->count() > 0) {
           texts.push_back(a->text);
         } else if (file->count() > 0) {
           std::ifstream in(a->file);
           for (std::string line; std::getline(in, line);) texts.push_back(line);
         } else {
           ex = llmkit::data::read_labelled(a->data);
           for (const auto& e : ex) texts.push_back(e.text);
         }
         std::vector<std::vector<int32_t>> ids;
         for (const auto& t : texts)
           ids.push_back(llmkit::infer::classifier_input_ids(*m.classifier, *m.tokenizer, t,
                                                             a->max_len, add_bos, m.bos_id));
         const auto logits = llmkit::infer::classify_ids(*m.classifier, ids, a->batch);
         if (!ex.empty())
           report_data(*m.classifier, ex, logits, a->data);
         else
           for (const auto& l : logits)
             std::printf("%s\n", answer(*m.classifier, l).dump().c_str());
       };
     }});
