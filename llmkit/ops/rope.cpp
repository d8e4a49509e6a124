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

std::vector<double> rope_inv_freq(int64_t HS, double theta, const RopeScaling& s) {
  LLMKIT_CHECK(HS > 0 && HS % 2 == 0, "rope: head size ", HS, " must be even");
  std::vector<double> inv(HS / 2);
  for (int64_t i = 0; i < HS / 2; ++i) inv[i] = std::pow(theta, -2.0 * i / HS);
  if (s.type.empty() || s.type == "default") return inv;
  LLMKIT_CHECK(s.factor > 0, "rope_scaling: factor must be positive, got ", s.factor);
  if (s.type == "linear") {
    for (double& f : inv) f /= s.factor;
    return inv;
  }
  if (s.type == "llama3") {
    // transformers' _compute_llama3_parameters: wavelengths longer than old_ctx / low_freq_factor
    // are divided by factor, shorter than old_ctx / high_freq_factor kept, smooth in between.
    LLMKIT_CHECK(s.high_freq_factor > s.low_freq_factor && s.low_freq_factor > 0,
                 "rope_scaling: llama3 needs high_freq_factor > low_freq_factor > 0");
    const double old_ctx = s.original_max_position_embeddings;
    const double low_wavelen = old_ctx / s.low_freq_factor;
    const double high_wavelen = old_ctx / s.high_freq_factor;
    const double pi = std::acos(-1.0);
    for (double& f : inv) {
      const double wavelen = 2 * pi / f;
      if (wavelen > low_wavelen) {
        f /= s.factor;
      } else if (wavelen >= high_wavelen) {
        const double smooth =
            (old_ctx / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
        f = (1 - smooth) * f / s.factor + smooth * f;
      }
    }
    return inv;
  }
  fail("rope_scaling: type '", s.type,
       "' is not supported (supported: default, linear, llama3; not dynamic, yarn, longrope)");
}

Tensor rope(const Tensor& x, int64_t pos0, double theta) {
  LLMKIT_CHECK(x.dim() == 4 && x.size(3) % 2 == 0, "rope: want x [B, NH, T, HS] with even HS, got ",
               x.str());
  return rope(x, pos0, rope_inv_freq(x.size(3), theta));
}

Tensor rope(const Tensor& x, int64_t pos0, const std::vector<double>& inv_freq) {
  LLMKIT_CHECK(x.dim() == 4 && x.size(3) % 2 == 0, "rope: want x [B, NH, T, HS] with even HS, got ",
               x.str());
  const int64_t BH = x.size(0) * x.size(1), Tn = x.size(2), HS = x.size(3), half = HS / 2;
  LLMKIT_CHECK(static_cast<int64_t>(inv_freq.size()) == half, "rope: ", inv_freq.size(),
               " inverse frequencies for head size ", HS);
  std::vector<double> cs(Tn * half), sn(Tn * half);
  for (int64_t t = 0; t < Tn; ++t)
    for (int64_t i = 0; i < half; ++i) {
      const double angle = static_cast<double>(pos0 + t) * inv_freq[i];
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
