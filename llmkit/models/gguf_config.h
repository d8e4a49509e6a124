// What the GGUF readers of every decoder architecture (gguf_llama.cpp, gguf_gpt2.cpp) share when
// they turn metadata into a GPTConfig: optional keys with defaults, the F32-stored epsilon read
// back as the decimal it was written from, and the special tokens and validation at the end.
// Internal to models/.
#pragma once

#include <cstdio>
#include <string>

#include "llmkit/io/gguf.h"
#include "llmkit/models/gpt.h"

namespace llmkit::models::gguf_config {

inline int64_t int_or(const io::GgufFile& f, const char* key, int64_t def) {
  const io::GgufValue* v = f.find(key);
  return v ? v->as_int() : def;
}

inline double float_or(const io::GgufFile& f, const char* key, double def) {
  const io::GgufValue* v = f.find(key);
  return v ? v->as_float() : def;
}

// GGUF stores epsilons as F32: 1e-5 comes back as 9.99999974738e-06. Rounded to float precision's
// shortest decimal, config.json says 1e-05 like the original.
inline double f32_decimal(double x) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.7g", x);
  return std::stod(buf);
}

// bos / eos from tokenizer.ggml.*, then c.validate() with the file named in its error.
inline void finish(const io::GgufFile& f, GPTConfig& c) {
  c.bos_token_id = int_or(f, "tokenizer.ggml.bos_token_id", -1);
  if (const io::GgufValue* e = f.find("tokenizer.ggml.eos_token_id"))
    c.eos_token_ids = {e->as_int()};
  try {
    c.validate();
  } catch (const Error& e) {
    fail(f.path, ": ", e.what());
  }
}

}  // namespace llmkit::models::gguf_config
