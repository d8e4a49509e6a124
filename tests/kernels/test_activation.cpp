// Activation kernels against naive double references (std:: math), backward against central
// finite differences in double, float against double at stated tolerances, plus the exp / tanh
// approximations the row-wise kernels share.
//
// Float tolerances: forward |y - ref| <= 2e-6 |ref| + 1e-7 (the absolute term covers results
// near 0, e.g. GELU around x = 0 and in its left tail); backward <= 1e-5 |ref| + 1e-6.
#include <gtest/gtest.h>

#include "common/compare.h"

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "llmkit/kernels/cpu/activation.h"

namespace llmkit::kernels {
namespace {

using FwdF = void (*)(float*, const float*, int64_t);
using BwdF = void (*)(float*, const float*, const float*, int64_t);
using FwdD = void (*)(double*, const double*, int64_t);
using BwdD = void (*)(double*, const double*, const double*, int64_t);

// Naive references, written the textbook way.
double ref_gelu_tanh(double x) {
  const double u = std::sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x);
  return 0.5 * x * (1.0 + std::tanh(u));
}
double ref_gelu_erf(double x) {
  return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0)));
}
double ref_sigmoid(double x) {
  return 1.0 / (1.0 + std::exp(-x));
}
double ref_silu(double x) {
  return x * ref_sigmoid(x);
}
double ref_relu(double x) {
  return x > 0 ? x : 0.0;
}
double ref_tanh(double x) {
  return std::tanh(x);
}

struct Activation {
  std::string name;
  FwdF fwd_f;
  BwdF bwd_f;
  FwdD fwd_d;
  BwdD bwd_d;
  double (*ref)(double);
};

#define LLMKIT_ACT(n)                                                          \
  Activation {                                                                 \
#n, &n##_forward < float>, &n##_backward < float>, &n##_forward < double>, \
        &n##_backward < double>, &ref_##n                                      \
  }
std::vector<Activation> all_activations() {
  return {LLMKIT_ACT(gelu_tanh), LLMKIT_ACT(gelu_erf), LLMKIT_ACT(silu),
          LLMKIT_ACT(relu),      LLMKIT_ACT(tanh),     LLMKIT_ACT(sigmoid)};
}
#undef LLMKIT_ACT

// A sweep over [-lim, lim] plus random points; exactly 0 is left out (ReLU's kink).
std::vector<double> test_inputs(int64_t n, double lim, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> u(-lim, lim);
  std::vector<double> x(n);
  for (int64_t i = 0; i < n; ++i) x[i] = i % 2 ? u(rng) : -lim + 2 * lim * (i + 0.5) / n;
  return x;
}

TEST(Activation, ForwardMatchesReference) {
  const std::vector<double> xd = test_inputs(4001, 12.0, 1);
  const int64_t n = static_cast<int64_t>(xd.size());
  const std::vector<float> xf(xd.begin(), xd.end());
  for (const Activation& a : all_activations()) {
    std::vector<double> yd(n);
    std::vector<float> yf(n);
    a.fwd_d(yd.data(), xd.data(), n);
    a.fwd_f(yf.data(), xf.data(), n);
    double max_d = 0, max_f = 0;
    for (int64_t i = 0; i < n; ++i) {
      const double ref = a.ref(xd[i]);
      const double ref_f = a.ref(double(xf[i]));  // reference at the float-rounded input
      // tanh-form GELU reference cancels in 1 + tanh(u) for x << 0: allow 1e-15 absolute.
      ASSERT_NEAR(yd[i], ref, 1e-12 * std::fabs(ref) + 1e-15) << a.name << " x=" << xd[i];
      ASSERT_NEAR(yf[i], ref_f, 2e-6 * std::fabs(ref_f) + 1e-7) << a.name << " x=" << xf[i];
      max_d = std::max(max_d, std::fabs(yd[i] - ref));
      max_f = std::max(max_f, std::fabs(yf[i] - ref_f));
    }
    std::printf("  %-10s max |err| double %.2e float %.2e\n", a.name.c_str(), max_d, max_f);
  }
}

TEST(Activation, BackwardMatchesFiniteDifferences) {
  const std::vector<double> x = test_inputs(200, 4.0, 2);
  const int64_t n = static_cast<int64_t>(x.size());
  std::vector<double> dy = test_inputs(n, 1.0, 3);
  const double h = 1e-6;
  for (const Activation& a : all_activations()) {
    std::vector<double> dx(n, 0.5), xp(x), xm(x), yp(n), ym(n);
    a.bwd_d(dx.data(), dy.data(), x.data(), n);
    for (int64_t i = 0; i < n; ++i) xp[i] += h, xm[i] -= h;
    a.fwd_d(yp.data(), xp.data(), n);
    a.fwd_d(ym.data(), xm.data(), n);
    for (int64_t i = 0; i < n; ++i) {
      const double fd = dy[i] * (yp[i] - ym[i]) / (2 * h);
      ASSERT_NEAR(dx[i] - 0.5, fd, 1e-8 * (1 + std::fabs(fd))) << a.name << " x=" << x[i];
    }
  }
}

TEST(Activation, FloatBackwardMatchesDouble) {
  const std::vector<double> xd = test_inputs(3001, 10.0, 4);
  const std::vector<double> dyd = test_inputs(xd.size(), 2.0, 5);
  const int64_t n = static_cast<int64_t>(xd.size());
  const std::vector<float> xf(xd.begin(), xd.end()), dyf(dyd.begin(), dyd.end());
  for (const Activation& a : all_activations()) {
    // Double at the float-rounded inputs, so only the kernel's error is measured.
    const std::vector<double> xr(xf.begin(), xf.end()), dyr(dyf.begin(), dyf.end());
    std::vector<double> dxd(n, 0.0);
    std::vector<float> dxf(n, 0.0f);
    a.bwd_d(dxd.data(), dyr.data(), xr.data(), n);
    a.bwd_f(dxf.data(), dyf.data(), xf.data(), n);
    for (int64_t i = 0; i < n; ++i) {
      ASSERT_NEAR(dxf[i], dxd[i], 1e-5 * std::fabs(dxd[i]) + 1e-6) << a.name << " x=" << xf[i];
    }
  }
}

TEST(Activation, LargeInputRunsInParallelAndInPlace) {
  const int64_t n = 200003;  // several parallel chunks, odd tail
  const std::vector<double> xd = test_inputs(n, 8.0, 6);
  const std::vector<float> xf(xd.begin(), xd.end());
  for (const Activation& a : all_activations()) {
    std::vector<float> y(xf);
    a.fwd_f(y.data(), y.data(), n);  // in place
    for (int64_t i = 0; i < n; i += 97) {
      const double ref = a.ref(double(xf[i]));
      ASSERT_NEAR(y[i], ref, 2e-6 * std::fabs(ref) + 1e-7) << a.name;
    }
  }
}

TEST(Activation, EmptyAndExtremeInputs) {
  const float inf = std::numeric_limits<float>::infinity();
  const std::vector<float> x = {0.0f,    -0.0f, 1e-30f, -1e-30f, 100.0f,
                                -100.0f, 1e30f, -1e30f, inf,     -inf};
  const int64_t n = static_cast<int64_t>(x.size());
  for (const Activation& a : all_activations()) {
    a.fwd_f(nullptr, nullptr, 0);  // n = 0 touches nothing
    a.bwd_f(nullptr, nullptr, nullptr, 0);
    std::vector<float> y(n);
    a.fwd_f(y.data(), x.data(), n);
    for (int64_t i = 0; i < n; ++i) {
      const double ref = a.ref(double(x[i]));
      if (std::isnan(ref)) {
        // -inf * sigmoid(-inf) = -inf * 0: NaN in the formula, as in PyTorch. The kernel may
        // give that NaN or the function's limit (the formula at the largest finite input of
        // that sign), nothing else.
        ASSERT_TRUE(std::isinf(x[i])) << a.name << " x=" << x[i] << ": NaN reference";
        const double limit = a.ref(std::copysign(std::numeric_limits<double>::max(), x[i]));
        EXPECT_TRUE(std::isnan(y[i]) || y[i] == limit)
            << a.name << " x=" << x[i] << ": got " << y[i] << ", want NaN or " << limit;
        continue;
      }
      if (std::isinf(ref)) {
        EXPECT_EQ(y[i], ref) << a.name << " x=" << x[i];
      } else {
        EXPECT_NEAR(y[i], ref, 2e-6 * std::fabs(ref) + 1e-7) << a.name << " x=" << x[i];
      }
    }
  }
}

TEST(Activation, ExpApproxAccuracyAndSpecials) {
  double max_rel = 0;
  for (int i = 0; i <= 200000; ++i) {
    const float x = -87.0f + 175.0f * float(i) / 200000.0f;
    const double ref = std::exp(double(x));
    max_rel = llmkit::testing::nan_max(max_rel, std::fabs(exp_approx(x) - ref) / ref);
  }
  std::printf("  exp_approx max rel err %.2e\n", max_rel);
  EXPECT_LT(max_rel, 3e-7);
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(exp_approx(-inf), 0.0f);
  EXPECT_EQ(exp_approx(-1e4f), 0.0f);
  EXPECT_EQ(exp_approx(inf), inf);
  EXPECT_EQ(exp_approx(100.0f), inf);
  EXPECT_EQ(exp_approx(0.0f), 1.0f);
  EXPECT_TRUE(std::isnan(exp_approx(std::numeric_limits<float>::quiet_NaN())));
  double max_tanh = 0;
  for (int i = 0; i <= 20000; ++i) {
    const float x = -10.0f + 20.0f * float(i) / 20000.0f;
    const double ref = std::tanh(double(x));
    if (ref != 0)
      max_tanh =
          llmkit::testing::nan_max(max_tanh, std::fabs(tanh_approx(x) - ref) / std::fabs(ref));
  }
  std::printf("  tanh_approx max rel err %.2e\n", max_tanh);
  EXPECT_LT(max_tanh, 1e-6);
}

}  // namespace
}  // namespace llmkit::kernels
