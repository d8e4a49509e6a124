#include "llmkit/ops/rope.h"

#include <cmath>
#include <vector>

#include "llmkit/core/autograd.h"
#include "llmkit/core/parallel.h"

namespace llmkit::ops {
namespace {

// out = rotate(in, sign * angle) for every [T, HS] slice; cos/sin tables are [T, HS/2].
template <typename T>
void rotate(T* out, const T* in, int64_t BH, int64_t Tn, int64_t HS, const std::vector<double>& cs,
            const std::vector<double>& sn, double sign, bool accumulate) {
  const int64_t half = HS / 2;
  parallel_for(BH * Tn, 64, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t t = r % Tn;
      const T* a = in + r * HS;
      T* o = out + r * HS;
      for (int64_t i = 0; i < half; ++i) {
        const double c = cs[t * half + i], s = sign * sn[t * half + i];
        const T x1 = a[i], x2 = a[i + half];
        const T y1 = static_cast<T>(x1 * c - x2 * s), y2 = static_cast<T>(x2 * c + x1 * s);
        o[i] = accumulate ? o[i] + y1 : y1;
        o[i + half] = accumulate ? o[i + half] + y2 : y2;
      }
    }
  });
}

}  // namespace

Tensor rope(const Tensor& x, int64_t pos0, double theta) {
  LLMKIT_CHECK(x.dim() == 4 && x.size(3) % 2 == 0, "rope: want x [B, NH, T, HS] with even HS, got ",
               x.str());
  const int64_t BH = x.size(0) * x.size(1), Tn = x.size(2), HS = x.size(3), half = HS / 2;
  std::vector<double> cs(Tn * half), sn(Tn * half);
  for (int64_t t = 0; t < Tn; ++t)
    for (int64_t i = 0; i < half; ++i) {
      const double angle = static_cast<double>(pos0 + t) * std::pow(theta, -2.0 * i / HS);
      cs[t * half + i] = std::cos(angle);
      sn[t * half + i] = std::sin(angle);
    }
  const Tensor xc = x.contiguous().detach();
  Tensor out = Tensor::empty(x.shape(), x.dtype());
  dispatch_float(x.dtype(), "rope", [&](auto t) {
    using T = decltype(t);
    rotate(out.data<T>(), xc.data<T>(), BH, Tn, HS, cs, sn, 1.0, false);
  });
  if (needs_graph({&x}))
    record(out, "rope", {&x}, [cs, sn, BH, Tn, HS](Node& n, const Tensor& dout) {
      Tensor g = n.grad(0);
      dispatch_float(dout.dtype(), "rope", [&](auto t) {
        using T = decltype(t);
        rotate(g.data<T>(), dout.data<T>(), BH, Tn, HS, cs, sn, -1.0, true);
      });
    });
  return out;
}

}  // namespace llmkit::ops
