// Finite-difference gradient checks for tests. gradcheck(f, inputs) runs f on f64 inputs,
// backpropagates a fixed random projection L = sum(f(x) * R), and compares every input's analytic
// gradient with central differences (L(x + h e_i) - L(x - h e_i)) / 2h. It reports the worst
// element so a failure says where; a NaN or Inf on either side is a failure.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "common/compare.h"
#include "llmkit/core/autograd.h"
#include "llmkit/core/random.h"
#include "llmkit/core/tensor.h"

namespace llmkit::testing {

// A random f64 (or f32) tensor from a seeded stream, values in [lo, hi).
inline Tensor rand_tensor(const Shape& shape, uint64_t seed, double lo = -1.0, double hi = 1.0,
                          DType dtype = DType::F64) {
  Tensor t = Tensor::empty(shape, dtype);
  Generator g(seed);
  g.uniform_(t, lo, hi);
  return t;
}

inline double projected_loss(const Tensor& y, const std::vector<double>& r) {
  const std::vector<double> v = y.to_vector<double>();
  double s = 0.0;
  for (size_t i = 0; i < v.size(); ++i) s += v[i] * r[i];
  return s;
}

// Checks d sum(f(inputs) * R) / d inputs[i] for every input that requires grad.
inline void gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& f,
                      std::vector<Tensor> inputs, double h = 1e-6, double atol = 1e-7,
                      double rtol = 1e-6) {
  for (auto& t : inputs)
    if (t.requires_grad()) t.zero_grad();
  Tensor y = f(inputs);
  ASSERT_TRUE(y.requires_grad()) << "output does not require grad";
  std::vector<double> r(y.numel());
  for (size_t i = 0; i < r.size(); ++i) r[i] = uniform_at(777, i) * 2.0 - 1.0;
  Tensor rt = Tensor::from_vector(r, y.shape()).to(y.dtype());
  y.backward(rt);
  for (size_t k = 0; k < inputs.size(); ++k) {
    Tensor x = inputs[k];
    if (!x.requires_grad()) continue;
    ASSERT_TRUE(x.grad().defined()) << "input " << k << " got no gradient";
    const std::vector<double> analytic = x.grad().to_vector<double>();
    ASSERT_TRUE(x.is_contiguous() && x.dtype() == DType::F64);
    double* p = x.data<double>();
    double worst = 0.0;
    int64_t worst_i = -1;
    double worst_a = 0, worst_n = 0;
    for (int64_t i = 0; i < x.numel(); ++i) {
      const double orig = p[i];
      double lp, lm;
      {
        NoGradGuard ng;
        p[i] = orig + h;
        lp = projected_loss(f(inputs), r);
        p[i] = orig - h;
        lm = projected_loss(f(inputs), r);
        p[i] = orig;
      }
      const double numeric = (lp - lm) / (2 * h);
      // A non-finite value on either side is an infinite error: `err > worst` is false for NaN,
      // so a NaN gradient would otherwise pass.
      const double err = std::isfinite(numeric) && std::isfinite(analytic[i])
                             ? std::abs(numeric - analytic[i]) / (atol + rtol * std::abs(numeric))
                             : INFINITY;
      if (err > worst || worst_i < 0) {
        worst = err;
        worst_i = i;
        worst_a = analytic[i];
        worst_n = numeric;
      }
    }
    EXPECT_LE(worst, 1.0) << "input " << k << " " << x.str() << ": element " << worst_i
                          << " analytic " << worst_a << " numeric " << worst_n;
  }
}

// Max |a - b| over all elements (shapes must match); NaN when either holds a NaN or an Inf.
inline double max_abs_diff(const Tensor& a, const Tensor& b) {
  EXPECT_EQ(a.shape(), b.shape());
  return max_abs_diff(a.to_vector<double>(), b.to_vector<double>());
}

}  // namespace llmkit::testing
