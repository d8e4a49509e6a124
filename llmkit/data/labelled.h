// Labelled text for fine-tuning: one example per line, as TSV (text<TAB>label, an optional header
// line "text\tlabel") or JSONL ({"text": ..., "label": ...}, label a string or a number), chosen by
// the file's extension (.tsv / .jsonl / .json). Labels are names for classification and numbers
// for regression. Not here: tokenising and batching (train/finetune.cpp).
#pragma once

#include <string>
#include <vector>

namespace llmkit::data {

struct LabelledExample {
  std::string text;
  std::string label;  // as written (a class name, or the number's text)
  size_t line = 0;    // 1-based line in its file (for error messages)
};

// Reads a TSV or JSONL file. Errors name the file and line: a line without a tab (TSV), a
// malformed JSON line or missing field, text that is not valid UTF-8, an empty file.
std::vector<LabelledExample> read_labelled(const std::string& path);

// The distinct labels, sorted (the id order of a new head: id i is labels[i]).
std::vector<std::string> label_names(const std::vector<LabelledExample>& examples);

// The label as a number (regression); an Error names the file, the line and the value.
double label_value(const LabelledExample& e, const std::string& path, size_t line);

}  // namespace llmkit::data
