// PyTorch parity for RNNLM: the same weights (exchanged through safetensors) in torch.nn.LSTM /
// torch.nn.GRU (batch_first) with an embedding and a linear head; logits, loss and every parameter
// gradient within 1e-4 relative (max |ours - torch| over max |torch| per tensor, printed for each).
// Torch runs in float64 (tests/models/rnn_parity.py), so the figure is llmkit's float32 error.
// Skips, with a message, where Debian's python3-torch is not installed.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "llmkit/io/safetensors.h"
#include "llmkit/models/rnn_lm.h"
#include "tests/common/parity.h"
#include "tests/common/temp_dir.h"

using namespace llmkit;
namespace fs = std::filesystem;

namespace {

using llmkit::testing::rel_err;
using llmkit::testing::torch_available;

void check_parity(const std::string& cell, bool tie) {
  const std::string name = cell + (tie ? "_tied" : "");
  if (!torch_available())
    GTEST_SKIP() << "PyTorch not installed (Debian python3-torch): RNNLM " << name
                 << " parity test skipped; `make test` installs it";
  const char* src = std::getenv("LLMKIT_SOURCE_DIR");
  ASSERT_NE(src, nullptr) << "LLMKIT_SOURCE_DIR not set (run through ctest)";
  models::RNNLMConfig cfg;
  cfg.cell = cell;
  cfg.n_layer = 2;
  cfg.n_embd = 24;
  cfg.hidden = tie ? 24 : 32;
  cfg.vocab_size = 53;
  cfg.block_size = 16;
  cfg.tie_embeddings = tie;
  const llmkit::testing::TempDir tmp;  // unique, removed even when an ASSERT returns early
  const fs::path dir = tmp.path;
  models::RNNLM model(cfg, 42);
  {  // a larger init so that gates saturate somewhat and gradients are well above float noise
    NoGradGuard ng;
    Generator g(9);
    for (auto& [n, p] : model.named_parameters()) g.normal_(p, 0.0, 0.3);
  }
  std::ofstream(dir / "config.json") << cfg.to_json().dump();
  io::save_safetensors((dir / "model.safetensors").string(), model.named_parameters());
  const int64_t B = 3, T = 16;
  std::vector<int32_t> ids, tgt;
  for (int i = 0; i < B * T; ++i) {
    ids.push_back((i * 7 + 3) % static_cast<int>(cfg.vocab_size));
    tgt.push_back(i % 9 == 4 ? -100 : (i * 5 + 1) % static_cast<int>(cfg.vocab_size));
  }
  Tensor tid = Tensor::from_vector(ids, {B, T}), ttg = Tensor::from_vector(tgt, {B, T});
  io::save_safetensors((dir / "inputs.safetensors").string(), {{"ids", tid}, {"targets", ttg}});
  const std::map<std::string, Tensor> r =
      llmkit::testing::run_reference("rnn_parity.py", dir.string());
  ASSERT_FALSE(r.empty());

  Tensor logits = model.forward(tid);
  Tensor loss = ops::cross_entropy(logits, ttg);
  loss.backward();
  llmkit::testing::expect_matches_reference(logits, loss, model, r);
}

}  // namespace

// Each cell once, one with its own head and one tied (each torch start-up costs seconds).
TEST(RNNParity, Lstm) {
  check_parity("lstm", false);
}
TEST(RNNParity, GruTied) {
  check_parity("gru", true);
}
