// Softmax / log-softmax rows: max pass, exp-and-sum pass, scale pass; rows are short enough
// (attention rows, classifier heads) to stay in L1 between passes. Reductions use `omp simd`
// so they vectorise without -ffast-math.
#include "llmkit/kernels/cpu/softmax.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "llmkit/core/parallel.h"
#include "llmkit/kernels/cpu/activation.h"

namespace llmkit::kernels {
namespace {

// Rows per parallel chunk: at least ~16k elements of work per thread.
int64_t row_grain(int64_t C) {
  return std::max<int64_t>(1, 16384 / std::max<int64_t>(C, 1));
}

template <typename T>
T row_max(const T* x, int64_t C) {
  T m = -std::numeric_limits<T>::infinity();
#pragma omp simd reduction(max : m)
  for (int64_t i = 0; i < C; ++i) m = std::max(m, x[i]);
  return m;
}

// Writes e[i] = exp(x[i] - m) and returns their sum.
template <typename T>
T exp_shifted(T* e, const T* x, T m, int64_t C) {
  T s = 0;
#pragma omp simd reduction(+ : s)
  for (int64_t i = 0; i < C; ++i) {
    const T v = exp_approx(x[i] - m);
    e[i] = v;
    s += v;
  }
  return s;
}

template <typename T>
T sum_exp_shifted(const T* x, T m, int64_t C) {
  T s = 0;
#pragma omp simd reduction(+ : s)
  for (int64_t i = 0; i < C; ++i) s += exp_approx(x[i] - m);
  return s;
}

}  // namespace

template <typename T>
void softmax_forward(T* y, const T* x, int64_t R, int64_t C) {
  parallel_for(R, row_grain(C), [=](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const T* xr = x + r * C;
      T* yr = y + r * C;
      const T m = row_max(xr, C);
      const T inv = T(1) / exp_shifted(yr, xr, m, C);
#pragma omp simd
      for (int64_t i = 0; i < C; ++i) yr[i] *= inv;
    }
  });
}

template <typename T>
void softmax_backward(T* dx, const T* dy, const T* y, int64_t R, int64_t C) {
  parallel_for(R, row_grain(C), [=](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const T* dyr = dy + r * C;
      const T* yr = y + r * C;
      T* dxr = dx + r * C;
      T dot = 0;
#pragma omp simd reduction(+ : dot)
      for (int64_t i = 0; i < C; ++i) dot += dyr[i] * yr[i];
#pragma omp simd
      for (int64_t i = 0; i < C; ++i) dxr[i] += yr[i] * (dyr[i] - dot);
    }
  });
}

template <typename T>
void log_softmax_forward(T* y, const T* x, int64_t R, int64_t C) {
  parallel_for(R, row_grain(C), [=](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const T* xr = x + r * C;
      T* yr = y + r * C;
      const T m = row_max(xr, C);
      const T log_sum = std::log(sum_exp_shifted(xr, m, C));
      // (x - m) - log_sum rather than x - (m + log_sum): exact for the max entry.
#pragma omp simd
      for (int64_t i = 0; i < C; ++i) yr[i] = (xr[i] - m) - log_sum;
    }
  });
}

template <typename T>
void log_softmax_backward(T* dx, const T* dy, const T* y, int64_t R, int64_t C) {
  parallel_for(R, row_grain(C), [=](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const T* dyr = dy + r * C;
      const T* yr = y + r * C;
      T* dxr = dx + r * C;
      T sum = 0;
#pragma omp simd reduction(+ : sum)
      for (int64_t i = 0; i < C; ++i) sum += dyr[i];
#pragma omp simd
      for (int64_t i = 0; i < C; ++i) dxr[i] += dyr[i] - exp_approx(yr[i]) * sum;
    }
  });
}

#define LLMKIT_INSTANTIATE_SOFTMAX(T)                                          \
  template void softmax_forward<T>(T*, const T*, int64_t, int64_t);            \
  template void softmax_backward<T>(T*, const T*, const T*, int64_t, int64_t); \
  template void log_softmax_forward<T>(T*, const T*, int64_t, int64_t);        \
  template void log_softmax_backward<T>(T*, const T*, const T*, int64_t, int64_t);
LLMKIT_INSTANTIATE_SOFTMAX(float)
LLMKIT_INSTANTIATE_SOFTMAX(double)

}  // namespace llmkit::kernels
