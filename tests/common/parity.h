// Shared pieces of the PyTorch parity tests (tests/models/test_*_parity.cpp): whether Debian's
// python3-torch is importable (tests skip visibly when it is not), and the relative error the
// tests compare against 1e-4.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <vector>

#include "llmkit/core/tensor.h"

namespace llmkit::testing {

inline bool torch_available() {
  static const bool ok = std::system("/usr/bin/python3 -c 'import torch' >/dev/null 2>&1") == 0;
  return ok;
}

// max |ours - ref| / max |ref|: the worst element against the reference's scale.
inline double rel_err(const Tensor& ours, const Tensor& ref) {
  const std::vector<double> a = ours.to_vector<double>(), b = ref.to_vector<double>();
  double diff = 0, scale = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
    diff = std::max(diff, std::abs(a[i] - b[i]));
    scale = std::max(scale, std::abs(b[i]));
  }
  return a.size() == b.size() ? diff / std::max(scale, 1e-30) : INFINITY;
}

}  // namespace llmkit::testing
