// Shared by the conversation and preference tests: a small byte-level BPE trained here (so the
// tests need no downloaded vocabulary) with the chat special tokens, the ChatFormats built on it,
// reading a template fixture, writing a temp file, and the labelled tokens of an example.
#pragma once

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "common/temp_dir.h"
#include "llmkit/data/conversations.h"
#include "llmkit/tokenizer/read_file.h"

namespace llmkit::data::testing {

// Ids 0, 1, 2 are <|endoftext|>, <|im_start|>, <|im_end|>; then 256 bytes and merges.
inline const tokenizer::Tokenizer& chat_tokenizer() {
  static const tokenizer::Tokenizer tok = [] {
    std::string text;
    for (int i = 0; i < 20; ++i)
      text +=
          "User: What is the capital of France? Assistant: The capital of France is Paris.\n"
          "You are a helpful assistant. Say hello to the user and answer the question.\n"
          "system user assistant hello world the answer is yes no maybe\n";
    tokenizer::TrainOptions o;
    o.vocab_size = 400;
    o.special_tokens = {"<|endoftext|>", "<|im_start|>", "<|im_end|>"};
    return tokenizer::Tokenizer::train_from_text(text, o);
  }();
  return tok;
}
constexpr int32_t kEndOfText = 0, kImStart = 1, kImEnd = 2;

inline std::filesystem::path source_dir() {
  if (const char* d = std::getenv("LLMKIT_SOURCE_DIR")) return d;
  return std::filesystem::path(__FILE__).parent_path().parent_path().parent_path();
}

inline std::string template_fixture(const std::string& name) {
  return tokenizer::read_file(
      (source_dir() / "tests" / "fixtures" / "chat_templates" / name).string());
}

// ChatML ending each turn with <|im_end|>.
inline ChatFormat chatml_format() {
  ChatFormat f;
  f.tok = &chat_tokenizer();
  f.eos_id = kImEnd;
  return f;
}

// A base model's format: the plain template ending answers with <|endoftext|>.
inline ChatFormat plain_format() {
  ChatFormat f;
  f.tok = &chat_tokenizer();
  f.tpl = plain_template("<|endoftext|>");
  f.eos_id = kEndOfText;
  return f;
}

inline std::string write(const llmkit::testing::TempDir& d, const std::string& name,
                         const std::string& text) {
  std::ofstream(d.file(name), std::ios::binary) << text;
  return d.file(name);
}

// The tokens whose label is not -100, in order (their labels must equal them).
inline std::vector<int32_t> labelled(const SftExample& ex) {
  std::vector<int32_t> out;
  for (size_t i = 0; i < ex.ids.size(); ++i)
    if (ex.labels[i] != -100) out.push_back(ex.ids[i]);
  return out;
}

}  // namespace llmkit::data::testing
