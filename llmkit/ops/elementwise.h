// Elementwise arithmetic with NumPy/PyTorch broadcasting: shapes are aligned from the right and
// size-1 dimensions stretch. Gradients of a broadcast input are summed back to its shape.
#pragma once

#include "llmkit/core/tensor.h"

namespace llmkit::ops {

Shape broadcast_shape(const Shape& a, const Shape& b, const char* op);
// Sums g over the dimensions that broadcasting added or stretched, giving `shape`.
Tensor sum_to(const Tensor& g, const Shape& shape);

Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);

Tensor add_scalar(const Tensor& x, double s);
Tensor mul_scalar(const Tensor& x, double s);
Tensor pow_scalar(const Tensor& x, double p);  // x^p
Tensor neg(const Tensor& x);
Tensor exp(const Tensor& x);
Tensor log(const Tensor& x);
Tensor sqrt(const Tensor& x);

// The pieces of the preference losses (train/align.h, train/ppo.h):
// log(sigmoid(x)) computed without overflow (-softplus(-x)); DPO's loss is -log_sigmoid(beta * d).
Tensor log_sigmoid(const Tensor& x);
// min(max(x, lo), hi); the gradient is 1 inside [lo, hi] and 0 outside (PPO's ratio clipping).
Tensor clamp(const Tensor& x, double lo, double hi);
// Elementwise max / min with broadcasting; the gradient goes to the larger (smaller) input, to a
// on ties (torch.maximum splits it; PPO's max(loss1, loss2) only needs one consistent choice).
Tensor maximum(const Tensor& a, const Tensor& b);
Tensor minimum(const Tensor& a, const Tensor& b);

}  // namespace llmkit::ops

namespace llmkit {
inline Tensor operator+(const Tensor& a, const Tensor& b) {
  return ops::add(a, b);
}
inline Tensor operator-(const Tensor& a, const Tensor& b) {
  return ops::sub(a, b);
}
inline Tensor operator*(const Tensor& a, const Tensor& b) {
  return ops::mul(a, b);
}
inline Tensor operator/(const Tensor& a, const Tensor& b) {
  return ops::div(a, b);
}
inline Tensor operator+(const Tensor& a, double s) {
  return ops::add_scalar(a, s);
}
inline Tensor operator-(const Tensor& a, double s) {
  return ops::add_scalar(a, -s);
}
inline Tensor operator*(const Tensor& a, double s) {
  return ops::mul_scalar(a, s);
}
inline Tensor operator/(const Tensor& a, double s) {
  return ops::mul_scalar(a, 1.0 / s);
}
inline Tensor operator*(double s, const Tensor& a) {
  return ops::mul_scalar(a, s);
}
inline Tensor operator-(const Tensor& a) {
  return ops::neg(a);
}
}  // namespace llmkit
