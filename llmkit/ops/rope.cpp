#include "llmkit/ops/rope.h"

#include <cmath>
#include <vector>

#include "llmkit/core/autograd.h"
#include "llmkit/core/parallel.h"

namespace llmkit::ops {
namespace {

// The angles of one call: cos and sin tables [rows, T, HS/2], rows = 1 (one set of positions
// shared by the batch: pos0 + t) or B (positions per batch row).
struct RopeTables {
  std::vector<double> cs, sn;
  int64_t rows = 1;
};

// out = rotate(in, sign * angle) for every [T, HS] slice of x [B, NH, T, HS].
template <typename T>
void rotate(T* out, const T* in, int64_t BH, int64_t NH, int64_t Tn, int64_t HS,
            const RopeTables& tab, double sign, bool accumulate) {
  const int64_t half = HS / 2;
  parallel_for(BH * Tn, 64, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t t = r % Tn, b = tab.rows == 1 ? 0 : r / (NH * Tn);
      const double* cs = tab.cs.data() + (b * Tn + t) * half;
      const double* sn = tab.sn.data() + (b * Tn + t) * half;
      const T* a = in + r * HS;
      T* o = out + r * HS;
      for (int64_t i = 0; i < half; ++i) {
        const double c = cs[i], s = sign * sn[i];
        const T x1 = a[i], x2 = a[i + half];
        const T y1 = static_cast<T>(x1 * c - x2 * s), y2 = static_cast<T>(x2 * c + x1 * s);
        o[i] = accumulate ? o[i] + y1 : y1;
        o[i + half] = accumulate ? o[i + half] + y2 : y2;
      }
    }
  });
}

// Rotates x [B, NH, T, HS] by the tables; the backward rotates by the opposite angle.
Tensor rope_apply(const Tensor& x, RopeTables tab) {
  const int64_t NH = x.size(1), BH = x.size(0) * NH, Tn = x.size(2), HS = x.size(3);
  const Tensor xc = x.contiguous().detach();
  Tensor out = Tensor::empty(x.shape(), x.dtype());
  dispatch_float(x.dtype(), "rope", [&](auto t) {
    using T = decltype(t);
    rotate(out.data<T>(), xc.data<T>(), BH, NH, Tn, HS, tab, 1.0, false);
  });
  if (needs_graph({&x}))
    record(out, "rope", {&x}, [tab = std::move(tab), BH, NH, Tn, HS](Node& n, const Tensor& dout) {
      Tensor g = n.grad(0);
      dispatch_float(dout.dtype(), "rope", [&](auto t) {
        using T = decltype(t);
        rotate(g.data<T>(), dout.data<T>(), BH, NH, Tn, HS, tab, -1.0, true);
      });
    });
  return out;
}

// cos / sin of position(row, t) * inv_freq[i] for every row, t and pair i.
template <typename Pos>
RopeTables rope_tables(int64_t rows, int64_t Tn, const std::vector<double>& inv_freq,
                       Pos position) {
  const int64_t half = static_cast<int64_t>(inv_freq.size());
  RopeTables tab{std::vector<double>(rows * Tn * half), std::vector<double>(rows * Tn * half),
                 rows};
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t t = 0; t < Tn; ++t)
      for (int64_t i = 0; i < half; ++i) {
        const double angle = static_cast<double>(position(r, t)) * inv_freq[i];
        tab.cs[(r * Tn + t) * half + i] = std::cos(angle);
        tab.sn[(r * Tn + t) * half + i] = std::sin(angle);
      }
  return tab;
}

void check_rope_input(const Tensor& x, const std::vector<double>& inv_freq) {
  LLMKIT_CHECK(x.dim() == 4 && x.size(3) % 2 == 0, "rope: want x [B, NH, T, HS] with even HS, got ",
               x.str());
  LLMKIT_CHECK(static_cast<int64_t>(inv_freq.size()) == x.size(3) / 2, "rope: ", inv_freq.size(),
               " inverse frequencies for head size ", x.size(3));
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
  check_rope_input(x, inv_freq);
  return rope_apply(
      x, rope_tables(1, x.size(2), inv_freq, [pos0](int64_t, int64_t t) { return pos0 + t; }));
}

Tensor rope(const Tensor& x, const Tensor& positions, double theta) {
  LLMKIT_CHECK(x.dim() == 4 && x.size(3) % 2 == 0, "rope: want x [B, NH, T, HS] with even HS, got ",
               x.str());
  return rope(x, positions, rope_inv_freq(x.size(3), theta));
}

Tensor rope(const Tensor& x, const Tensor& positions, const std::vector<double>& inv_freq) {
  check_rope_input(x, inv_freq);
  LLMKIT_CHECK(
      positions.dtype() == DType::I32 && positions.shape() == Shape({x.size(0), x.size(2)}),
      "rope: positions ", positions.str(), " must be i32 [", x.size(0), ", ", x.size(2), "] for x ",
      x.str());
  const Tensor pc = positions.contiguous();
  const int32_t* p = pc.data<int32_t>();
  const int64_t Tn = x.size(2);
  return rope_apply(x, rope_tables(x.size(0), Tn, inv_freq,
                                   [p, Tn](int64_t b, int64_t t) { return p[b * Tn + t]; }));
}

}  // namespace llmkit::ops
