// Elementwise activations. Each kernel is one `omp simd` loop body over i in a parallel_for chunk;
// the float bodies call the branch-free approximations from activation.h so they vectorise.
#include "llmkit/kernels/cpu/activation.h"

#include "llmkit/core/parallel.h"

namespace llmkit::kernels {
namespace {

// Below ~64 KiB of float work a fork/join costs more than it saves.
constexpr int64_t kGrain = 16384;

template <typename Fn>
void for_each_index(int64_t n, Fn fn) {
  parallel_for(n, kGrain, [&](int64_t begin, int64_t end) {
#pragma omp simd
    for (int64_t i = begin; i < end; ++i) fn(i);
  });
}

template <typename T>
T sigmoid(T x) {
  return T(1) / (T(1) + exp_approx(-x));
}

// GELU tanh form, rewritten with 0.5 (1 + tanh(u)) = sigmoid(2u): gelu = x s, s = sigmoid(2u).
// Same function, but no cancellation in 1 + tanh(u) for negative x, so float keeps relative
// accuracy in the left tail. d/dx = s + x s (1 - s) 2 u'(x), u' = k (1 + 3 * 0.044715 x^2).
constexpr double kSqrt2OverPi = 0.79788456080286535588;
constexpr double kGeluCubic = 0.044715;

// Phi(x) = erfc(-x / sqrt2) / 2, taken from erfc of |x| so neither tail cancels.
template <typename T>
T normal_cdf(T x) {
  const T e = erfc_nonneg_approx(std::fabs(x) * T(0.70710678118654752440));
  return x >= T(0) ? T(1) - T(0.5) * e : T(0.5) * e;
}

}  // namespace

template <typename T>
void gelu_tanh_forward(T* y, const T* x, int64_t n) {
  for_each_index(n, [=](int64_t i) {
    const T v = x[i];
    const T u = T(kSqrt2OverPi) * (v + T(kGeluCubic) * v * v * v);
    y[i] = v * sigmoid(T(2) * u);
  });
}

template <typename T>
void gelu_tanh_backward(T* dx, const T* dy, const T* x, int64_t n) {
  for_each_index(n, [=](int64_t i) {
    const T v = x[i];
    const T u = T(kSqrt2OverPi) * (v + T(kGeluCubic) * v * v * v);
    const T du = T(kSqrt2OverPi) * (T(1) + T(3 * kGeluCubic) * v * v);
    const T s = sigmoid(T(2) * u);
    dx[i] += dy[i] * (s + v * s * (T(1) - s) * T(2) * du);
  });
}

template <typename T>
void gelu_erf_forward(T* y, const T* x, int64_t n) {
  for_each_index(n, [=](int64_t i) { y[i] = x[i] * normal_cdf(x[i]); });
}

// d/dx x Phi(x) = Phi(x) + x phi(x), phi(x) = exp(-x^2/2) / sqrt(2 pi).
template <typename T>
void gelu_erf_backward(T* dx, const T* dy, const T* x, int64_t n) {
  for_each_index(n, [=](int64_t i) {
    const T v = x[i];
    const T pdf = T(0.39894228040143267794) * exp_approx(T(-0.5) * v * v);
    dx[i] += dy[i] * (normal_cdf(v) + v * pdf);
  });
}

template <typename T>
void silu_forward(T* y, const T* x, int64_t n) {
  for_each_index(n, [=](int64_t i) { y[i] = x[i] * sigmoid(x[i]); });
}

// d/dx x s(x) = s + x s (1 - s).
template <typename T>
void silu_backward(T* dx, const T* dy, const T* x, int64_t n) {
  for_each_index(n, [=](int64_t i) {
    const T s = sigmoid(x[i]);
    dx[i] += dy[i] * s * (T(1) + x[i] * (T(1) - s));
  });
}

// NaN passes through (x < 0 is false), as in PyTorch.
template <typename T>
void relu_forward(T* y, const T* x, int64_t n) {
  for_each_index(n, [=](int64_t i) { y[i] = x[i] < T(0) ? T(0) : x[i]; });
}

template <typename T>
void relu_backward(T* dx, const T* dy, const T* x, int64_t n) {
  for_each_index(n, [=](int64_t i) {
    const T g = dy[i];  // loaded unconditionally so the select vectorises
    dx[i] += x[i] > T(0) ? g : T(0);
  });
}

template <typename T>
void tanh_forward(T* y, const T* x, int64_t n) {
  for_each_index(n, [=](int64_t i) { y[i] = tanh_approx(x[i]); });
}

template <typename T>
void tanh_backward(T* dx, const T* dy, const T* x, int64_t n) {
  for_each_index(n, [=](int64_t i) {
    const T t = tanh_approx(x[i]);
    dx[i] += dy[i] * (T(1) - t * t);
  });
}

template <typename T>
void sigmoid_forward(T* y, const T* x, int64_t n) {
  for_each_index(n, [=](int64_t i) { y[i] = sigmoid(x[i]); });
}

template <typename T>
void sigmoid_backward(T* dx, const T* dy, const T* x, int64_t n) {
  for_each_index(n, [=](int64_t i) {
    const T s = sigmoid(x[i]);
    dx[i] += dy[i] * s * (T(1) - s);
  });
}

#define LLMKIT_INSTANTIATE_ACTIVATION(name, T)            \
  template void name##_forward<T>(T*, const T*, int64_t); \
  template void name##_backward<T>(T*, const T*, const T*, int64_t);
#define LLMKIT_INSTANTIATE_ACTIVATIONS(T)     \
  LLMKIT_INSTANTIATE_ACTIVATION(gelu_tanh, T) \
  LLMKIT_INSTANTIATE_ACTIVATION(gelu_erf, T)  \
  LLMKIT_INSTANTIATE_ACTIVATION(silu, T)      \
  LLMKIT_INSTANTIATE_ACTIVATION(relu, T)      \
  LLMKIT_INSTANTIATE_ACTIVATION(tanh, T)      \
  LLMKIT_INSTANTIATE_ACTIVATION(sigmoid, T)
LLMKIT_INSTANTIATE_ACTIVATIONS(float)
LLMKIT_INSTANTIATE_ACTIVATIONS(double)

}  // namespace llmkit::kernels
