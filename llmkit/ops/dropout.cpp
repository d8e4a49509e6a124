#include "llmkit/ops/dropout.h"

#include "llmkit/core/autograd.h"
#include "llmkit/core/parallel.h"

namespace llmkit::ops {
namespace {

// out[i] = in[i] * (keep(i) ? scale : 0); `accumulate` adds instead of writing.
template <typename T>
void apply_mask(T* out, const T* in, int64_t n, uint64_t seed, uint64_t base, float p, T scale,
                bool accumulate) {
  parallel_for(n, 4096, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      const T v = uniform_at(seed, base + i) >= p ? in[i] * scale : T(0);
      out[i] = accumulate ? out[i] + v : v;
    }
  });
}

}  // namespace

Tensor dropout(const Tensor& x, double p, bool training, Generator& gen) {
  LLMKIT_CHECK(p >= 0.0 && p < 1.0, "dropout: probability ", p, " outside [0, 1)");
  if (!training || p == 0.0) return x;
  const Tensor xc = x.contiguous().detach();
  const int64_t n = x.numel();
  const uint64_t seed = gen.seed(), base = gen.reserve(n);
  const float pf = static_cast<float>(p);
  Tensor out = Tensor::empty(x.shape(), x.dtype());
  dispatch_float(x.dtype(), "dropout", [&](auto t) {
    using T = decltype(t);
    apply_mask(out.data<T>(), xc.data<T>(), n, seed, base, pf, static_cast<T>(1.0 / (1.0 - p)),
               false);
  });
  if (needs_graph({&x}))
    record(out, "dropout", {&x}, [n, seed, base, pf, p](Node& nd, const Tensor& dout) {
      Tensor g = nd.grad(0);
      dispatch_float(dout.dtype(), "dropout", [&](auto t) {
        using T = decltype(t);
        apply_mask(g.data<T>(), dout.data<T>(), n, seed, base, pf, static_cast<T>(1.0 / (1.0 - p)),
                   true);
      });
    });
  return out;
}

}  // namespace llmkit::ops
