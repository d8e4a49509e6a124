// PyTorch parity for the T5 and BART presets: the same weights (exchanged through safetensors),
// the same source (with padding) and labels (with ignored positions); logits, loss and every
// parameter gradient within 1e-4 relative (max |ours - torch| over max |torch| per tensor,
// printed for each). The reference (tests/models/t5_parity.py) is plain torch in float64, written
// from Hugging Face's modeling_t5.py (transformers is not installed). Skips, with a message, where
// Debian's python3-torch is not installed.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "llmkit/io/safetensors.h"
#include "llmkit/models/t5.h"
#include "tests/common/parity.h"
#include "tests/common/temp_dir.h"

using namespace llmkit;
namespace fs = std::filesystem;

namespace {

using llmkit::testing::rel_err;
using llmkit::testing::torch_available;

double max_abs(const Tensor& t) {  // NaN when t holds a NaN or Inf
  return llmkit::testing::max_abs(t.to_vector<double>());
}

void check_parity(const models::T5Config& cfg, const std::string& name) {
  if (!torch_available())
    GTEST_SKIP() << "PyTorch not installed (Debian python3-torch): " << name
                 << " parity test skipped; `make test` installs it";
  const char* src_dir = std::getenv("LLMKIT_SOURCE_DIR");
  const std::string root = src_dir ? src_dir : ".";
  const fs::path script = fs::path(root) / "tests/models/t5_parity.py";
  ASSERT_TRUE(fs::exists(script)) << script << " not found (set LLMKIT_SOURCE_DIR)";
  const llmkit::testing::TempDir tmp;  // unique, removed even when an ASSERT returns early
  const fs::path dir = tmp.path;
  models::T5 model(cfg, 42);
  {  // weights of order 0.1-0.3 so gradients everywhere are well above float noise
    NoGradGuard ng;
    Generator g(9);
    for (auto& [n, p] : model.named_parameters())
      if (n.find("layer_norm") == std::string::npos) g.normal_(p, 0.0, 0.15);
  }
  std::ofstream(dir / "config.json") << cfg.to_json().dump();
  io::save_safetensors((dir / "model.safetensors").string(), model.named_parameters());
  const int V = static_cast<int>(cfg.vocab_size);
  std::vector<int32_t> src, labels;
  for (int i = 0; i < 2 * 14; ++i)  // row 1 ends in 4 pads
    src.push_back(i >= 24 ? static_cast<int32_t>(cfg.pad_id) : 2 + (i * 7 + 3) % (V - 2));
  for (int i = 0; i < 2 * 10; ++i) labels.push_back(i % 7 == 5 ? -100 : (i * 5 + 1) % V);
  Tensor tsrc = Tensor::from_vector(src, {2, 14}), tlab = Tensor::from_vector(labels, {2, 10});
  io::save_safetensors((dir / "inputs.safetensors").string(), {{"src", tsrc}, {"labels", tlab}});
  const std::string cmd = "/usr/bin/python3 " + script.string() + " " + dir.string();
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;

  Tensor logits = model.forward(tsrc, model.shift_right(tlab));
  Tensor loss = ops::cross_entropy(logits, tlab);
  loss.backward();
  io::SafetensorsFile ref = io::load_safetensors((dir / "reference.safetensors").string());
  std::map<std::string, Tensor> r(ref.tensors.begin(), ref.tensors.end());
  const double el = rel_err(logits, r.at("logits"));
  std::printf("  %-64s rel err %.2e\n", "logits", el);
  EXPECT_LT(el, 1e-4);
  EXPECT_NEAR(loss.item<double>(), r.at("loss").to_vector<double>()[0], 1e-4);
  for (auto& [n, p] : model.named_parameters()) {
    ASSERT_TRUE(r.count("grad." + n)) << n;
    ASSERT_TRUE(p.grad().defined()) << n;
    const Tensor& want = r.at("grad." + n);
    if (max_abs(want) < 1e-12) {
      // The key bias cancels in the softmax (it adds q.b to every score of a query), so its
      // exact gradient is zero: check ours is float noise instead of a relative error.
      const double a = max_abs(p.grad());
      std::printf("  %-64s abs %.2e (exact gradient 0)\n", ("grad " + n).c_str(), a);
      EXPECT_LT(a, 1e-6) << n;
      continue;
    }
    const double e = rel_err(p.grad(), want);
    std::printf("  %-64s rel err %.2e\n", ("grad " + n).c_str(), e);
    EXPECT_LT(e, 1e-4) << n;
  }
}

models::T5Config preset(const std::string& file) {
  const char* src = std::getenv("LLMKIT_SOURCE_DIR");
  models::T5Config c = models::T5Config::load(std::string(src ? src : ".") + "/configs/" + file);
  c.vocab_size = 61;  // the preset's layout at test size
  c.block_size = 16;
  c.num_buckets = 8;  // positions up to 14 reach the logarithmic buckets
  c.max_distance = 16;
  return c;
}

}  // namespace

TEST(T5Parity, T5Preset) {
  check_parity(preset("t5-tiny.json"), "t5");
}
TEST(T5Parity, T5GatedGeluUntied) {
  models::T5Config c = preset("t5-tiny.json");
  c.activation = "gated-gelu";
  c.tie_embeddings = false;
  c.n_decoder_layer = 1;
  check_parity(c, "t5_gated");
}
TEST(T5Parity, BartPreset) {
  check_parity(preset("bart-tiny.json"), "bart");
}
