// Shared pieces of the PyTorch parity tests (tests/models/test_*_parity.cpp): whether Debian's
// python3-torch is importable (tests skip visibly when it is not), and the relative error the
// tests compare against 1e-4. Every comparison here fails on NaN or Inf (common/compare.h).
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "common/compare.h"
#include "llmkit/core/tensor.h"
#include "llmkit/io/safetensors.h"
#include "llmkit/nn/module.h"

namespace llmkit::testing {

inline bool torch_available() {
  static const bool ok = std::system("/usr/bin/python3 -c 'import torch' >/dev/null 2>&1") == 0;
  return ok;
}

// max |ours - ref| / max |ref|: the worst element against the reference's scale. NaN (which
// fails every EXPECT_LT) when the sizes differ or either side holds a NaN or an Inf.
inline double rel_err(const Tensor& ours, const Tensor& ref) {
  return rel_err(ours.to_vector<double>(), ref.to_vector<double>());
}

// Runs the PyTorch reference tests/models/<script> on `dir` (which holds config.json,
// model.safetensors and inputs.safetensors) and returns what it wrote to
// dir/reference.safetensors; empty, with a test failure, when the script fails.
inline std::map<std::string, Tensor> run_reference(const std::string& script,
                                                   const std::string& dir) {
  const char* src = std::getenv("LLMKIT_SOURCE_DIR");
  const std::string cmd =
      std::string("/usr/bin/python3 ") + (src ? src : ".") + "/tests/models/" + script + " " + dir;
  if (std::system(cmd.c_str()) != 0) {
    ADD_FAILURE() << "reference failed: " << cmd;
    return {};
  }
  io::SafetensorsFile ref = io::load_safetensors(dir + "/reference.safetensors");
  return {ref.tensors.begin(), ref.tensors.end()};
}

// Expects logits, the loss and every parameter's gradient ("grad.<name>" in the reference)
// within 1e-4 relative of the reference, printing each error.
inline void expect_matches_reference(const Tensor& logits, const Tensor& loss,
                                     const nn::Module& model,
                                     const std::map<std::string, Tensor>& r) {
  const double el = rel_err(logits, r.at("logits"));
  std::printf("  %-32s rel err %.2e\n", "logits", el);
  EXPECT_LT(el, 1e-4);
  // Two infinite losses are no match: the loss must be finite on both sides.
  const double ours_loss = loss.item<double>(), ref_loss = r.at("loss").to_vector<double>()[0];
  EXPECT_TRUE(std::isfinite(ours_loss) && std::isfinite(ref_loss))
      << "loss " << ours_loss << " reference " << ref_loss;
  EXPECT_NEAR(ours_loss, ref_loss, 1e-4);
  for (auto& [n, p] : model.named_parameters()) {
    ASSERT_TRUE(r.count("grad." + n)) << n;
    ASSERT_TRUE(p.grad().defined()) << n;
    const double e = rel_err(p.grad(), r.at("grad." + n));
    std::printf("  %-32s rel err %.2e\n", ("grad " + n).c_str(), e);
    EXPECT_LT(e, 1e-4) << n;
  }
}

}  // namespace llmkit::testing
