// Whole-file reading for the tokenizer's small inputs (vocabularies, tokenizer.json). Big corpora
// are streamed by the trainer instead. Errors name the file.
#pragma once

#include <fstream>
#include <sstream>
#include <string>

#include "llmkit/core/error.h"

namespace llmkit::tokenizer {

inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, ": cannot open the file");
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) fail(path, ": read failed");
  return ss.str();
}

}  // namespace llmkit::tokenizer
