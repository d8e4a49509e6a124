#include "llmkit/train/clip.h"

#include <cmath>

#include "llmkit/core/parallel.h"

namespace llmkit::train {

double clip_grad_norm(const std::vector<Tensor>& params, double max_norm) {
  double sq = 0;
  for (const Tensor& p : params) {
    const Tensor g = p.grad();
    if (!g.defined()) continue;
    dispatch_float(g.dtype(), "clip_grad_norm", [&](auto tag) {
      using T = decltype(tag);
      const T* d = g.data<T>();
      double s = 0;
      for (int64_t i = 0; i < g.numel(); ++i) s += static_cast<double>(d[i]) * d[i];
      sq += s;
    });
  }
  const double norm = std::sqrt(sq);
  if (max_norm <= 0 || !std::isfinite(norm) || norm <= max_norm) return norm;
  const double scale = max_norm / (norm + 1e-6);
  for (const Tensor& p : params) {
    const Tensor g = p.grad();
    if (!g.defined()) continue;
    dispatch_float(g.dtype(), "clip_grad_norm", [&](auto tag) {
      using T = decltype(tag);
      T* d = g.data<T>();
      const T s = static_cast<T>(scale);
      parallel_for(g.numel(), 1 << 15, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) d[i] *= s;
      });
    });
  }
  return norm;
}

}  // namespace llmkit::train
