// Where the tests against real models and Python references find them: the reference Python
// (the project venv that scripts/install-deps.sh --test makes, with transformers,
// sentence-transformers, tokenizers, gguf, jinja2) and the model cache that
// scripts/get-models.sh fills. Tests that need one skip visibly (GTEST_SKIP with the reason)
// when it is absent; `make test` installs both, so they run there.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <map>
#include <mutex>
#include <string>

namespace llmkit::testing {

inline std::string source_dir() {
  const char* src = std::getenv("LLMKIT_SOURCE_DIR");
  return src ? src : ".";
}

// $LLMKIT_REF_PYTHON, or the project venv's python.
inline std::string ref_python() {
  if (const char* p = std::getenv("LLMKIT_REF_PYTHON")) return p;
  return source_dir() + "/.venv/bin/python";
}

// Whether `module` imports in ref_python() (cached per module).
inline bool ref_python_has(const std::string& module) {
  static std::mutex mu;
  static std::map<std::string, bool> known;
  std::lock_guard<std::mutex> lock(mu);
  auto it = known.find(module);
  if (it != known.end()) return it->second;
  const std::string cmd = ref_python() + " -c 'import " + module + "' >/dev/null 2>&1";
  return known[module] = std::system(cmd.c_str()) == 0;
}

// $LLMKIT_MODELS or ~/.cache/llmkit/models.
inline std::string models_dir() {
  if (const char* m = std::getenv("LLMKIT_MODELS")) return m;
  const char* home = std::getenv("HOME");
  return std::string(home ? home : ".") + "/.cache/llmkit/models";
}

// The file or directory of a cached model ("smollm2": the SmolLM2-135M-Instruct Q4_1 GGUF file,
// "minilm": the all-MiniLM-L6-v2 Hugging Face directory); empty when it is not there.
inline std::string model_path(const std::string& name) {
  std::string p;
  if (name == "smollm2")
    p = models_dir() + "/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf";
  else if (name == "minilm")
    p = models_dir() + "/all-minilm-l6-v2";
  return !p.empty() && std::filesystem::exists(p) ? p : std::string();
}

}  // namespace llmkit::testing
