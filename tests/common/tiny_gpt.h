// A small random decoder for tests that need a real models::GPT behind an engine: two layers of
// 32, vocabulary 61 (or the given one), GPT-2 or llama layout, weights N(0, 0.2^2) (norm
// weights around 1) from a seed.
#pragma once

#include <memory>
#include <string>

#include "llmkit/core/autograd.h"
#include "llmkit/core/random.h"
#include "llmkit/models/gpt.h"
#include "llmkit/models/hf_llama.h"
#include "llmkit/models/load.h"

namespace llmkit::testing {

inline models::GPTConfig tiny_gpt_config(const std::string& arch, int64_t vocab = 61) {
  models::GPTConfig c;
  if (arch == "llama") {
    c = models::llama_base_config();  // rope, rmsnorm, swiglu, no biases
    c.n_kv_head = 2;
    c.tie_embeddings = false;
  }
  c.arch = arch;
  c.n_layer = 2;
  c.n_head = 4;
  c.n_embd = 32;
  c.block_size = 48;
  c.vocab_size = vocab;
  return c;
}

// The model wrapped as models::load returns it (module and config, no tokenizer).
inline models::LoadedModel tiny_gpt(const models::GPTConfig& c, uint64_t seed = 7) {
  auto g = std::make_unique<models::GPT>(c, seed);
  {
    NoGradGuard ng;
    Generator r(seed + 1);
    for (auto& [n, p] : g->named_parameters()) {
      const bool norm = n.find("norm") != std::string::npos || n.find("ln_") != std::string::npos;
      r.normal_(p, norm && n.find(".bias") == std::string::npos ? 1.0 : 0.0, 0.2);
    }
  }
  g->eval();
  models::LoadedModel m;
  m.arch = c.arch;
  m.path = "test";
  m.gpt = g.get();
  m.gpt_config = g->config();
  m.module = std::move(g);
  return m;
}

}  // namespace llmkit::testing
