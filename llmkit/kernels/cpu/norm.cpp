// LayerNorm / RMSNorm rows. A row (C <= a few thousand) stays in L1 across the statistic pass
// and the output pass, so each kernel reads x (and dout) from memory once.
#include "llmkit/kernels/cpu/norm.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "llmkit/core/parallel.h"

namespace llmkit::kernels {
namespace {

// Rows per parallel chunk: at least ~16k elements of work per thread.
int64_t row_grain(int64_t C) {
  return std::max<int64_t>(1, 16384 / std::max<int64_t>(C, 1));
}

// Calls row_fn(r, gw, gb) for every row r in [0, R), where gw / gb are the [C] accumulators that
// row adds its weight / bias gradients into (null where dweight / dbias are null). Rows are cut
// into at most num_threads() fixed blocks; block 0 adds straight into dweight / dbias, the others
// into zeroed partials that are then added in block order: deterministic for a thread count.
template <typename T, typename RowFn>
void for_rows_with_param_grads(int64_t R, int64_t C, T* dweight, T* dbias, RowFn row_fn) {
  if (R <= 0) return;
  const int64_t grain = row_grain(C);
  const int64_t blocks = std::clamp<int64_t>((R + grain - 1) / grain, 1, num_threads());
  std::vector<T> partial;  // [blocks - 1][2][C]
  if (blocks > 1 && (dweight != nullptr || dbias != nullptr)) {
    partial.assign(static_cast<size_t>((blocks - 1) * 2 * C), T(0));
  }
  parallel_for(blocks, 1, [&](int64_t block_begin, int64_t block_end) {
    for (int64_t blk = block_begin; blk < block_end; ++blk) {
      T* gw = dweight;
      T* gb = dbias;
      if (blk > 0 && !partial.empty()) {
        T* p = partial.data() + (blk - 1) * 2 * C;
        gw = dweight != nullptr ? p : nullptr;
        gb = dbias != nullptr ? p + C : nullptr;
      }
      const int64_t r_end = R * (blk + 1) / blocks;
      for (int64_t r = R * blk / blocks; r < r_end; ++r) row_fn(r, gw, gb);
    }
  });
  for (int64_t blk = 1; blk < blocks && !partial.empty(); ++blk) {
    const T* p = partial.data() + (blk - 1) * 2 * C;
    if (dweight != nullptr) {
      for (int64_t i = 0; i < C; ++i) dweight[i] += p[i];
    }
    if (dbias != nullptr) {
      for (int64_t i = 0; i < C; ++i) dbias[i] += p[C + i];
    }
  }
}

template <typename T>
T row_mean(const T* x, int64_t C) {
  T s = 0;
#pragma omp simd reduction(+ : s)
  for (int64_t i = 0; i < C; ++i) s += x[i];
  return s / T(C);
}

// LayerNorm backward for one row. With xhat = (x - mean) rstd and g = dout * weight:
//   dx = rstd * (g - mean_c(g) - xhat * mean_c(g * xhat))
// (the two means are the gradient through mean and through rstd respectively).
template <bool kHasWeight, typename T>
void layer_norm_backward_row(T* dx, T* gw, T* gb, const T* dout, const T* x, const T* w, T m, T rs,
                             int64_t C) {
  T sum_g = 0, sum_gx = 0;
#pragma omp simd reduction(+ : sum_g, sum_gx)
  for (int64_t i = 0; i < C; ++i) {
    const T g = kHasWeight ? dout[i] * w[i] : dout[i];
    sum_g += g;
    sum_gx += g * ((x[i] - m) * rs);
  }
  const T mean_g = sum_g / T(C), mean_gx = sum_gx / T(C);
#pragma omp simd
  for (int64_t i = 0; i < C; ++i) {
    const T g = kHasWeight ? dout[i] * w[i] : dout[i];
    dx[i] += rs * (g - mean_g - (x[i] - m) * rs * mean_gx);
  }
  if (gw != nullptr) {
#pragma omp simd
    for (int64_t i = 0; i < C; ++i) gw[i] += dout[i] * ((x[i] - m) * rs);
  }
  if (gb != nullptr) {
#pragma omp simd
    for (int64_t i = 0; i < C; ++i) gb[i] += dout[i];
  }
}

// RMSNorm backward for one row. With xhat = x rstd and g = dout * weight:
//   dx = rstd * (g - xhat * mean_c(g * xhat)).
template <bool kHasWeight, typename T>
void rms_norm_backward_row(T* dx, T* gw, const T* dout, const T* x, const T* w, T rs, int64_t C) {
  T sum_gx = 0;
#pragma omp simd reduction(+ : sum_gx)
  for (int64_t i = 0; i < C; ++i) {
    const T g = kHasWeight ? dout[i] * w[i] : dout[i];
    sum_gx += g * (x[i] * rs);
  }
  const T mean_gx = sum_gx / T(C);
#pragma omp simd
  for (int64_t i = 0; i < C; ++i) {
    const T g = kHasWeight ? dout[i] * w[i] : dout[i];
    dx[i] += rs * (g - x[i] * rs * mean_gx);
  }
  if (gw != nullptr) {
#pragma omp simd
    for (int64_t i = 0; i < C; ++i) gw[i] += dout[i] * (x[i] * rs);
  }
}

}  // namespace

template <typename T>
void layer_norm_forward(T* out, std::type_identity_t<T>* mean, std::type_identity_t<T>* rstd,
                        const T* x, const std::type_identity_t<T>* weight,
                        const std::type_identity_t<T>* bias, int64_t R, int64_t C, double eps) {
  parallel_for(R, row_grain(C), [=](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const T* xr = x + r * C;
      T* yr = out + r * C;
      // Two passes: the float mean of values with a large common offset carries the rounding
      // of the running sum (~C ulp(offset) / C); the second pass sums the deviations too and
      // corrects both the mean and the variance with them (var = E[d^2] - E[d]^2).
      const T m0 = row_mean(xr, C);
      T sd = 0, ss = 0;
#pragma omp simd reduction(+ : sd, ss)
      for (int64_t i = 0; i < C; ++i) {
        const T d = xr[i] - m0;
        sd += d;
        ss += d * d;
      }
      const T corr = sd / T(C);
      const T m = m0 + corr;
      const T rs = T(1) / std::sqrt(std::max(ss / T(C) - corr * corr, T(0)) + T(eps));
      if (mean != nullptr) mean[r] = m;
      if (rstd != nullptr) rstd[r] = rs;
      if (weight != nullptr && bias != nullptr) {
#pragma omp simd
        for (int64_t i = 0; i < C; ++i) yr[i] = (xr[i] - m) * rs * weight[i] + bias[i];
        continue;
      }
#pragma omp simd
      for (int64_t i = 0; i < C; ++i) yr[i] = (xr[i] - m) * rs;
      if (weight != nullptr) {
#pragma omp simd
        for (int64_t i = 0; i < C; ++i) yr[i] *= weight[i];
      }
      if (bias != nullptr) {
#pragma omp simd
        for (int64_t i = 0; i < C; ++i) yr[i] += bias[i];
      }
    }
  });
}

template <typename T>
void layer_norm_backward(T* dx, std::type_identity_t<T>* dweight, std::type_identity_t<T>* dbias,
                         const T* dout, const T* x, const std::type_identity_t<T>* weight,
                         const T* mean, const T* rstd, int64_t R, int64_t C) {
  for_rows_with_param_grads(R, C, dweight, dbias, [=](int64_t r, T* gw, T* gb) {
    const int64_t o = r * C;
    if (weight != nullptr) {
      layer_norm_backward_row<true>(dx + o, gw, gb, dout + o, x + o, weight, mean[r], rstd[r], C);
    } else {
      layer_norm_backward_row<false>(dx + o, gw, gb, dout + o, x + o, weight, mean[r], rstd[r], C);
    }
  });
}

template <typename T>
void rms_norm_forward(T* out, std::type_identity_t<T>* rstd, const T* x,
                      const std::type_identity_t<T>* weight, int64_t R, int64_t C, double eps) {
  parallel_for(R, row_grain(C), [=](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const T* xr = x + r * C;
      T* yr = out + r * C;
      T ss = 0;
#pragma omp simd reduction(+ : ss)
      for (int64_t i = 0; i < C; ++i) ss += xr[i] * xr[i];
      const T rs = T(1) / std::sqrt(ss / T(C) + T(eps));
      if (rstd != nullptr) rstd[r] = rs;
      if (weight != nullptr) {
#pragma omp simd
        for (int64_t i = 0; i < C; ++i) yr[i] = xr[i] * rs * weight[i];
      } else {
#pragma omp simd
        for (int64_t i = 0; i < C; ++i) yr[i] = xr[i] * rs;
      }
    }
  });
}

template <typename T>
void rms_norm_backward(T* dx, std::type_identity_t<T>* dweight, const T* dout, const T* x,
                       const std::type_identity_t<T>* weight, const T* rstd, int64_t R, int64_t C) {
  for_rows_with_param_grads(R, C, dweight, static_cast<T*>(nullptr), [=](int64_t r, T* gw, T*) {
    const int64_t o = r * C;
    if (weight != nullptr) {
      rms_norm_backward_row<true>(dx + o, gw, dout + o, x + o, weight, rstd[r], C);
    } else {
      rms_norm_backward_row<false>(dx + o, gw, dout + o, x + o, weight, rstd[r], C);
    }
  });
}

#define LLMKIT_INSTANTIATE_NORM(T)                                                                \
  template void layer_norm_forward<T>(T*, T*, T*, const T*, const T*, const T*, int64_t, int64_t, \
                                      double);                                                    \
  template void layer_norm_backward<T>(T*, T*, T*, const T*, const T*, const T*, const T*,        \
                                       const T*, int64_t, int64_t);                               \
  template void rms_norm_forward<T>(T*, T*, const T*, const T*, int64_t, int64_t, double);        \
  template void rms_norm_backward<T>(T*, T*, const T*, const T*, const T*, const T*, int64_t,     \
                                     int64_t);
LLMKIT_INSTANTIATE_NORM(float)
LLMKIT_INSTANTIATE_NORM(double)

}  // namespace llmkit::kernels
