// PyTorch parity for BERT pretraining: the same weights (exchanged through safetensors), the
// same inputs (two segments, token types, padding); MLM logits, NSP logits, the loss and every
// parameter gradient within 1e-4 relative (max |ours - torch| over max |torch| per tensor,
// printed for each). Our logits come from forward() (all positions), our gradients from
// pretraining_loss() (the decoder at the masked positions only), so both paths are checked.
// Torch runs in float64 (tests/models/bert_parity.py). Skips, with a message, where Debian's
// python3-torch is not installed.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "llmkit/io/safetensors.h"
#include "llmkit/models/bert.h"
#include "tests/common/parity.h"
#include "tests/common/temp_dir.h"

using namespace llmkit;
namespace fs = std::filesystem;

namespace {

using llmkit::testing::rel_err;
using llmkit::testing::torch_available;

models::BertConfig preset() {
  const char* src = std::getenv("LLMKIT_SOURCE_DIR");
  const std::string path = std::string(src ? src : ".") + "/configs/bert-tiny.json";
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << path;
  models::BertConfig c = models::BertConfig::from_json(nlohmann::json::parse(in).at("model"));
  c.n_layer = 2;  // the preset's layout at test size
  c.n_embd = 32;
  c.vocab_size = 61;
  c.block_size = 16;
  return c;
}

}  // namespace

TEST(BertParity, PretrainingLogitsLossAndGradients) {
  if (!torch_available())
    GTEST_SKIP() << "PyTorch not installed (Debian python3-torch): BERT parity test skipped; "
                    "`make test` installs it";
  const char* src = std::getenv("LLMKIT_SOURCE_DIR");
  ASSERT_NE(src, nullptr) << "LLMKIT_SOURCE_DIR not set (run through ctest)";
  const models::BertConfig cfg = preset();
  const llmkit::testing::TempDir tmp;  // unique, removed even when an ASSERT returns early
  const fs::path dir = tmp.path;
  models::Bert model(cfg, 42);
  {  // a larger init than BERT's so gradients everywhere are well above float noise
    NoGradGuard ng;
    Generator g(9);
    for (auto& [n, p] : model.named_parameters())
      g.normal_(p, n.find("LayerNorm.weight") != std::string::npos ? 1.0 : 0.0, 0.1);
  }
  std::ofstream(dir / "config.json") << cfg.to_json().dump();
  io::save_safetensors((dir / "model.safetensors").string(), model.named_parameters());

  // Two rows of [CLS] A [SEP] B [SEP]; row 1 ends with 3 [PAD]s. ids 0..4 are the specials.
  const int64_t B = 2, T = 12;
  std::vector<int32_t> ids, types, labels, mask;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t) {
      const int64_t len = b == 0 ? T : T - 3, sep_a = b == 0 ? 5 : 4;
      const bool pad = t >= len;
      int32_t id = static_cast<int32_t>(5 + (b * 31 + t * 7) % (cfg.vocab_size - 5));
      if (t == 0) id = 2;
      if (t == sep_a || t == len - 1) id = 3;
      if (pad) id = 0;
      const bool masked = !pad && t != 0 && t != sep_a && t != len - 1 && (t + b) % 3 == 1;
      labels.push_back(masked ? id : -100);
      ids.push_back(masked && t % 2 == 0 ? 4 : id);  // some become [MASK], some stay themselves
      types.push_back(t > sep_a && !pad ? 1 : 0);
      mask.push_back(pad ? 0 : 1);
    }
  Tensor tid = Tensor::from_vector(ids, {B, T}), ttt = Tensor::from_vector(types, {B, T});
  Tensor tlb = Tensor::from_vector(labels, {B, T}), tmk = Tensor::from_vector(mask, {B, T});
  Tensor nsp = Tensor::from_vector(std::vector<int32_t>{0, 1}, {B});
  io::save_safetensors((dir / "inputs.safetensors").string(), {{"ids", tid},
                                                               {"token_type_ids", ttt},
                                                               {"attention_mask", tmk},
                                                               {"labels", tlb},
                                                               {"nsp_labels", nsp}});
  const std::string cmd =
      std::string("/usr/bin/python3 ") + src + "/tests/models/bert_parity.py " + dir.string();
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;

  Tensor mask_u8 = Tensor::empty({B, T}, DType::U8);
  for (int64_t i = 0; i < B * T; ++i) mask_u8.data<uint8_t>()[i] = static_cast<uint8_t>(mask[i]);
  models::BertOutput full;
  {
    NoGradGuard ng;
    full = model.forward(tid, ttt, mask_u8);
  }
  Tensor loss = model.pretraining_loss(tid, ttt, mask_u8, tlb, nsp);
  loss.backward();
  io::SafetensorsFile ref = io::load_safetensors((dir / "reference.safetensors").string());
  std::map<std::string, Tensor> r(ref.tensors.begin(), ref.tensors.end());
  for (const char* n : {"mlm_logits", "nsp_logits"}) {
    const double e = rel_err(n[0] == 'm' ? full.mlm_logits : full.nsp_logits, r.at(n));
    std::printf("  %-58s rel err %.2e\n", n, e);
    EXPECT_LT(e, 1e-4) << n;
  }
  const double want_loss = r.at("loss").to_vector<double>()[0];
  EXPECT_NEAR(loss.item<float>(), want_loss, 1e-4 * std::abs(want_loss));
  double g_max = 0;  // the largest reference gradient element
  for (auto& [n, p] : model.named_parameters())
    g_max = llmkit::testing::nan_max(
        g_max, llmkit::testing::max_abs(r.at("grad." + n).to_vector<double>()));
  for (auto& [n, p] : model.named_parameters()) {
    ASSERT_TRUE(r.count("grad." + n)) << n;
    ASSERT_TRUE(p.grad().defined()) << n;
    const Tensor& want = r.at("grad." + n);
    // NaN when either holds a NaN or Inf: then both branches below fail.
    const double w_max = llmkit::testing::max_abs(want.to_vector<double>());
    const double ours_max = llmkit::testing::max_abs(p.grad().to_vector<double>());
    if (w_max < 1e-12 * g_max) {
      // The key bias adds q.b to every score of a query: softmax ignores it, so its gradient is
      // zero in exact arithmetic and ours is float rounding. Compare to the largest gradient.
      std::printf("  %-58s |grad| %.2e (zero in exact arithmetic)\n", ("grad " + n).c_str(),
                  ours_max / g_max);
      EXPECT_LT(ours_max, 1e-4 * g_max) << n;
      continue;
    }
    const double e = rel_err(p.grad(), want);
    std::printf("  %-58s rel err %.2e\n", ("grad " + n).c_str(), e);
    EXPECT_LT(e, 1e-4) << n;
  }
}
