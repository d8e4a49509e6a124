// PyTorch parity for the two GPT presets: the same weights (exchanged through safetensors), the
// same inputs; logits, loss and every parameter gradient within 1e-4 relative (max |ours - torch|
// over max |torch| per tensor, printed for each). Torch runs in float64 (tests/models/
// gpt_parity.py), so the figure is llmkit's own float32 error. Skips, with a message, where
// Debian's python3-torch is not installed.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "llmkit/io/safetensors.h"
#include "llmkit/models/gpt.h"
#include "tests/common/parity.h"
#include "tests/common/temp_dir.h"

using namespace llmkit;
namespace fs = std::filesystem;

namespace {

using llmkit::testing::rel_err;
using llmkit::testing::torch_available;

void check_parity(const models::GPTConfig& cfg, const std::string& name) {
  if (!torch_available())
    GTEST_SKIP() << "PyTorch not installed (Debian python3-torch): " << name
                 << " parity test skipped; `make test` installs it";
  const char* src = std::getenv("LLMKIT_SOURCE_DIR");
  ASSERT_NE(src, nullptr) << "LLMKIT_SOURCE_DIR not set (run through ctest)";
  const llmkit::testing::TempDir tmp;  // unique, removed even when an ASSERT returns early
  const fs::path dir = tmp.path;
  models::GPT model(cfg, 42);
  {  // a larger init than GPT-2's so gradients everywhere are well above float noise
    NoGradGuard ng;
    Generator g(9);
    for (auto& [n, p] : model.named_parameters())
      if (n.find("ln_") == std::string::npos && n.find("norm") == std::string::npos)
        g.normal_(p, 0.0, 0.1);
  }
  std::ofstream(dir / "config.json") << cfg.to_json().dump();
  io::save_safetensors((dir / "model.safetensors").string(), model.named_parameters());
  std::vector<int32_t> ids, tgt;
  for (int i = 0; i < 2 * 12; ++i) {
    ids.push_back((i * 7 + 3) % static_cast<int>(cfg.vocab_size));
    tgt.push_back(i % 9 == 4 ? -100 : (i * 5 + 1) % static_cast<int>(cfg.vocab_size));
  }
  Tensor tid = Tensor::from_vector(ids, {2, 12}), ttg = Tensor::from_vector(tgt, {2, 12});
  io::save_safetensors((dir / "inputs.safetensors").string(), {{"ids", tid}, {"targets", ttg}});
  const std::map<std::string, Tensor> r =
      llmkit::testing::run_reference("gpt_parity.py", dir.string());
  ASSERT_FALSE(r.empty());

  Tensor logits = model.forward(tid);
  Tensor loss = ops::cross_entropy(logits, ttg);
  loss.backward();
  llmkit::testing::expect_matches_reference(logits, loss, model, r);
}

models::GPTConfig preset(const std::string& file) {
  const char* src = std::getenv("LLMKIT_SOURCE_DIR");
  models::GPTConfig c = models::GPTConfig::load(std::string(src ? src : ".") + "/configs/" + file);
  c.n_layer = 2;  // the preset's layout at test size
  c.vocab_size = 61;
  c.block_size = 16;
  return c;
}

}  // namespace

TEST(GPTParity, Gpt2Preset) {
  check_parity(preset("gpt2-tiny.json"), "gpt2");
}
TEST(GPTParity, LlamaPreset) {
  check_parity(preset("llama-tiny.json"), "llama");
}
