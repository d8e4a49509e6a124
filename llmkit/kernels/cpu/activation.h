// Elementwise activation kernels (GELU tanh / erf, SiLU, ReLU, tanh, sigmoid) on n contiguous
// elements, plus the vectorisable float exp / tanh / erfc approximations the row-wise kernels
// (softmax, cross-entropy) share. Not differentiable ops: no shapes, no autograd; see llmkit/ops.
//
// Contract for every pair: X_forward(y, x, n) writes y[i] = f(x[i]); X_backward(dx, dy, x, n)
// ACCUMULATES dx[i] += dy[i] * f'(x[i]) (llm.c style). y may alias x; dx must not alias dy or x.
// Parallel over n with parallel_for; float loops vectorise (AVX-512 under -march=native) because
// they use the polynomial approximations below instead of libm; double uses std:: (exact to libm),
// which is what finite-difference tests upstream need. float accuracy: <= ~2e-7 relative for
// exp, sigmoid, silu and tanh, <= ~1e-6 relative for both GELUs (3e-7 absolute near the zeros).
#pragma once

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>

namespace llmkit::kernels {

// ---- vectorisable math (float); double overloads forward to libm ----------------------------

// exp(x) for float, Cephes-style: x = n ln2 + r with |r| <= ln2/2, exp(r) by a degree-6 minimax
// polynomial (max rel. error ~1.5e-7 = ~2 ulp), 2^n built from the exponent bits. Branch-free so
// GCC vectorises loops that call it: rounding with the 1.5*2^23 trick (no float->int cast, so no
// UB on NaN), 2^n split in two factors so n in [-126, 128] never overflows the exponent field.
// exp(-inf) = 0 and results below FLT_MIN flush to 0; exp(+inf) = inf; NaN propagates.
inline float exp_approx(float x) {
  constexpr float kLo = -87.3365447f;    // ln(FLT_MIN)
  constexpr float kHi = 88.7228390f;     // ln(FLT_MAX)
  constexpr float kMagic = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
  const float xc = x < kLo ? kLo : (x > kHi ? kHi : x);
  const float t = xc * 1.44269504088896341f + kMagic;
  const float n = t - kMagic;
  const int32_t ni = std::bit_cast<int32_t>(t) - std::bit_cast<int32_t>(kMagic);
  float r = xc - n * 0.693359375f;  // ln2 split in two so n * ln2_hi is exact
  r = r - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const int32_t n1 = ni >> 1, n2 = ni - n1;
  p = p * std::bit_cast<float>((n1 + 127) << 23) * std::bit_cast<float>((n2 + 127) << 23);
  p = x < kLo ? 0.0f : p;
  return x > kHi ? std::numeric_limits<float>::infinity() : p;
}
inline double exp_approx(double x) {
  return std::exp(x);
}

// tanh(x) for float: for |x| < 0.625 Cephes' odd polynomial x + x^3 P(x^2) (keeps relative
// accuracy near 0, where 1 - 2/(e^2x + 1) would cancel); otherwise 1 - 2/(e^{2|x|} + 1) with the
// sign restored. Both branches computed and blended so the loop vectorises.
inline float tanh_approx(float x) {
  const float ax = std::fabs(x);
  const float z = x * x;
  float p = -5.70498872745e-3f;
  p = p * z + 2.06390887954e-2f;
  p = p * z - 5.37397155531e-2f;
  p = p * z + 1.33314422036e-1f;
  p = p * z - 3.33332819422e-1f;
  const float small = x + x * z * p;
  const float big = 1.0f - 2.0f / (exp_approx(2.0f * ax) + 1.0f);
  return ax < 0.625f ? small : std::copysign(big, x);
}
inline double tanh_approx(double x) {
  return std::tanh(x);
}

// erfc(z) for float and z >= 0: the Chebyshev fit of Numerical Recipes (erfcc), fractional error
// < 1.2e-7 for all z >= 0, so Phi(x) = erfc(-x/sqrt2)/2 keeps relative accuracy in the left tail.
inline float erfc_nonneg_approx(float z) {
  const float t = 1.0f / (1.0f + 0.5f * z);
  float p = 0.17087277f;
  p = p * t - 0.82215223f;
  p = p * t + 1.48851587f;
  p = p * t - 1.13520398f;
  p = p * t + 0.27886807f;
  p = p * t - 0.18628806f;
  p = p * t + 0.09678418f;
  p = p * t + 0.37409196f;
  p = p * t + 1.00002368f;
  p = p * t - 1.26551223f;
  return t * exp_approx(p - z * z);
}
inline double erfc_nonneg_approx(double z) {
  return std::erfc(z);
}

// ---- activations: y = f(x) [n]; dx [n] += dy [n] * f'(x) --------------------------------

// GELU, tanh form (GPT-2): 0.5 x (1 + tanh(u)), u = sqrt(2/pi) (x + 0.044715 x^3).
template <typename T>
void gelu_tanh_forward(T* y, const T* x, int64_t n);
template <typename T>
void gelu_tanh_backward(T* dx, const T* dy, const T* x, int64_t n);

// GELU, exact form (BERT): x Phi(x) = 0.5 x (1 + erf(x / sqrt2)).
template <typename T>
void gelu_erf_forward(T* y, const T* x, int64_t n);
template <typename T>
void gelu_erf_backward(T* dx, const T* dy, const T* x, int64_t n);

// SiLU / swish (llama): x sigmoid(x).
template <typename T>
void silu_forward(T* y, const T* x, int64_t n);
template <typename T>
void silu_backward(T* dx, const T* dy, const T* x, int64_t n);

// ReLU: max(x, 0); the derivative at 0 is taken as 0 (PyTorch's choice).
template <typename T>
void relu_forward(T* y, const T* x, int64_t n);
template <typename T>
void relu_backward(T* dx, const T* dy, const T* x, int64_t n);

template <typename T>
void tanh_forward(T* y, const T* x, int64_t n);
template <typename T>
void tanh_backward(T* dx, const T* dy, const T* x, int64_t n);

template <typename T>
void sigmoid_forward(T* y, const T* x, int64_t n);
template <typename T>
void sigmoid_backward(T* dx, const T* dy, const T* x, int64_t n);

}  // namespace llmkit::kernels
