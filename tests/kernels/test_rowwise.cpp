// Row-wise kernels (layer_norm, rms_norm, softmax, log_softmax, cross_entropy, token_log_probs,
// softmax_entropy) against naive
// double references written here, every backward against central finite differences in double,
// and the fused cross-entropy against the composite it replaces (log_softmax then gather).
//
// Tolerances: double forward 1e-12 relative (plus 1e-13 absolute); float forward 2e-6 relative
// plus 2e-6 absolute for RMSNorm and 2e-5 for LayerNorm (its test inputs sit at 100 +- 1: the
// float mean is off by up to ulp(100) = 7.6e-6, times rstd * |weight| ~ 3.5), 1e-6 absolute for
// probabilities, 5e-6 (scaled by 1 + |x|) for log-probabilities and losses; finite-difference
// checks 1e-7 (scaled by 1 + |grad|) with a central step of 1e-5.
#include <gtest/gtest.h>

#include "common/compare.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "llmkit/core/error.h"
#include "llmkit/kernels/cpu/loss.h"
#include "llmkit/kernels/cpu/norm.h"
#include "llmkit/kernels/cpu/softmax.h"

namespace llmkit::kernels {
namespace {

using Vec = std::vector<double>;
constexpr double kInf = std::numeric_limits<double>::infinity();

Vec random_vec(int64_t n, uint32_t seed, double lo = -2.0, double hi = 2.0) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> u(lo, hi);
  Vec v(n);
  for (double& x : v) x = u(rng);
  return v;
}
std::vector<float> to_float(const Vec& v) {
  return std::vector<float>(v.begin(), v.end());
}
Vec to_double(const std::vector<float>& v) {
  return Vec(v.begin(), v.end());
}

// Central differences of a scalar loss w.r.t. every entry of *x.
Vec finite_diff(const std::function<double()>& loss, Vec* x, double h = 1e-5) {
  Vec g(x->size());
  for (size_t i = 0; i < x->size(); ++i) {
    const double keep = (*x)[i];
    (*x)[i] = keep + h;
    const double lp = loss();
    (*x)[i] = keep - h;
    const double lm = loss();
    (*x)[i] = keep;
    g[i] = (lp - lm) / (2 * h);
  }
  return g;
}

// got - base (what a backward accumulated) against an FD gradient.
void expect_grad(const Vec& got, double base, const Vec& fd, const char* what) {
  ASSERT_EQ(got.size(), fd.size());
  for (size_t i = 0; i < fd.size(); ++i) {
    ASSERT_NEAR(got[i] - base, fd[i], 1e-7 * (1 + std::fabs(fd[i]))) << what << " [" << i << "]";
  }
}

double dot(const Vec& a, const Vec& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

// ---- naive references ---------------------------------------------------------------------

void ref_layer_norm(Vec* out, Vec* mean, Vec* rstd, const Vec& x, const double* w, const double* b,
                    int64_t R, int64_t C, double eps) {
  for (int64_t r = 0; r < R; ++r) {
    double m = 0, v = 0;
    for (int64_t c = 0; c < C; ++c) m += x[r * C + c];
    m /= C;
    for (int64_t c = 0; c < C; ++c) v += (x[r * C + c] - m) * (x[r * C + c] - m);
    const double rs = 1.0 / std::sqrt(v / C + eps);
    (*mean)[r] = m;
    (*rstd)[r] = rs;
    for (int64_t c = 0; c < C; ++c) {
      (*out)[r * C + c] = (x[r * C + c] - m) * rs * (w ? w[c] : 1.0) + (b ? b[c] : 0.0);
    }
  }
}

void ref_rms_norm(Vec* out, Vec* rstd, const Vec& x, const double* w, int64_t R, int64_t C,
                  double eps) {
  for (int64_t r = 0; r < R; ++r) {
    double ss = 0;
    for (int64_t c = 0; c < C; ++c) ss += x[r * C + c] * x[r * C + c];
    const double rs = 1.0 / std::sqrt(ss / C + eps);
    (*rstd)[r] = rs;
    for (int64_t c = 0; c < C; ++c) (*out)[r * C + c] = x[r * C + c] * rs * (w ? w[c] : 1.0);
  }
}

// log_softmax of one row; the caller exponentiates for softmax.
Vec ref_log_softmax(const Vec& x, int64_t R, int64_t C) {
  Vec y(x.size());
  for (int64_t r = 0; r < R; ++r) {
    double m = -kInf, s = 0;
    for (int64_t c = 0; c < C; ++c) m = std::max(m, x[r * C + c]);
    for (int64_t c = 0; c < C; ++c) s += std::exp(x[r * C + c] - m);
    for (int64_t c = 0; c < C; ++c) y[r * C + c] = x[r * C + c] - m - std::log(s);
  }
  return y;
}

// ---- LayerNorm ----------------------------------------------------------------------------

struct Shape {
  int64_t R, C;
};

TEST(LayerNorm, ForwardMatchesReference) {
  const double eps = 1e-5;
  for (Shape s : {Shape{0, 8}, Shape{1, 1}, Shape{5, 1}, Shape{7, 33}, Shape{300, 200}}) {
    for (int affine = 0; affine < 3; ++affine) {  // 0: none, 1: weight only, 2: weight + bias
      const int64_t R = s.R, C = s.C, n = R * C;
      // A large common offset checks the two-pass variance.
      const Vec x = random_vec(n, 1, 99.0, 101.0), w = random_vec(C, 2), b = random_vec(C, 3);
      const double* wp = affine >= 1 ? w.data() : nullptr;
      const double* bp = affine >= 2 ? b.data() : nullptr;
      Vec ref(n), rm(R), rr(R), out(n), mean(R), rstd(R);
      ref_layer_norm(&ref, &rm, &rr, x, wp, bp, R, C, eps);
      layer_norm_forward(out.data(), mean.data(), rstd.data(), x.data(), wp, bp, R, C, eps);
      for (int64_t i = 0; i < n; ++i) {
        ASSERT_NEAR(out[i], ref[i], 1e-12 * std::fabs(ref[i]) + 1e-11);
      }
      for (int64_t r = 0; r < R; ++r) {
        ASSERT_NEAR(rstd[r], rr[r], 1e-12 * rr[r]);
      }

      const std::vector<float> xf = to_float(x), wf = to_float(w), bf = to_float(b);
      std::vector<float> outf(n), meanf(R), rstdf(R);
      layer_norm_forward(outf.data(), meanf.data(), rstdf.data(), xf.data(),
                         affine >= 1 ? wf.data() : nullptr, affine >= 2 ? bf.data() : nullptr, R, C,
                         eps);
      ref_layer_norm(&ref, &rm, &rr, to_double(xf), affine >= 1 ? to_double(wf).data() : nullptr,
                     affine >= 2 ? to_double(bf).data() : nullptr, R, C, eps);
      for (int64_t i = 0; i < n; ++i) {
        ASSERT_NEAR(outf[i], ref[i], 2e-6 * std::fabs(ref[i]) + 2e-5);
      }
    }
  }
}

TEST(LayerNorm, BackwardMatchesFiniteDifferences) {
  const int64_t R = 3, C = 5;
  const double eps = 1e-5;
  for (int affine = 0; affine < 2; ++affine) {
    Vec x = random_vec(R * C, 4), w = random_vec(C, 5), b = random_vec(C, 6);
    const Vec g = random_vec(R * C, 7);  // loss = sum(out * g), so dout = g
    const double* wp = affine ? w.data() : nullptr;
    const double* bp = affine ? b.data() : nullptr;
    auto loss = [&] {
      Vec out(R * C), m(R), rs(R);
      layer_norm_forward(out.data(), m.data(), rs.data(), x.data(), wp, bp, R, C, eps);
      return dot(out, g);
    };
    Vec out(R * C), mean(R), rstd(R), dx(R * C, 0.25), dw(C, -1.0), db(C, 2.0);
    layer_norm_forward(out.data(), mean.data(), rstd.data(), x.data(), wp, bp, R, C, eps);
    layer_norm_backward(dx.data(), affine ? dw.data() : nullptr, affine ? db.data() : nullptr,
                        g.data(), x.data(), wp, mean.data(), rstd.data(), R, C);
    expect_grad(dx, 0.25, finite_diff(loss, &x), "dx");
    if (affine) {
      expect_grad(dw, -1.0, finite_diff(loss, &w), "dweight");
      expect_grad(db, 2.0, finite_diff(loss, &b), "dbias");
    }
  }
}

TEST(LayerNorm, FloatBackwardMatchesDoubleAndIsDeterministic) {
  const int64_t R = 517, C = 96;  // several row blocks per thread
  const Vec x = random_vec(R * C, 8), w = random_vec(C, 9), g = random_vec(R * C, 10);
  Vec out(R * C), mean(R), rstd(R), dx(R * C, 0.0), dw(C, 0.0), db(C, 0.0);
  layer_norm_forward(out.data(), mean.data(), rstd.data(), x.data(), w.data(), nullptr, R, C, 1e-5);
  layer_norm_backward(dx.data(), dw.data(), db.data(), g.data(), x.data(), w.data(), mean.data(),
                      rstd.data(), R, C);
  const std::vector<float> xf = to_float(x), wf = to_float(w), gf = to_float(g);
  std::vector<float> outf(R * C), meanf(R), rstdf(R);
  layer_norm_forward(outf.data(), meanf.data(), rstdf.data(), xf.data(), wf.data(), nullptr, R, C,
                     1e-5);
  std::vector<float> dw_first;
  for (int run = 0; run < 2; ++run) {
    std::vector<float> dxf(R * C, 0.0f), dwf(C, 0.0f), dbf(C, 0.0f);
    layer_norm_backward(dxf.data(), dwf.data(), dbf.data(), gf.data(), xf.data(), wf.data(),
                        meanf.data(), rstdf.data(), R, C);
    for (int64_t i = 0; i < R * C; ++i) {
      ASSERT_NEAR(dxf[i], dx[i], 2e-5 * (1 + std::fabs(dx[i])));
    }
    for (int64_t c = 0; c < C; ++c) {
      ASSERT_NEAR(dwf[c], dw[c], 2e-5 * (std::sqrt(R) + std::fabs(dw[c])));
      ASSERT_NEAR(dbf[c], db[c], 2e-5 * (std::sqrt(R) + std::fabs(db[c])));
    }
    if (run == 0) dw_first = dwf;
    if (run == 1) {
      EXPECT_EQ(dwf, dw_first) << "dweight must be bit-identical run to run";
    }
  }
}

// ---- RMSNorm ------------------------------------------------------------------------------

TEST(RmsNorm, ForwardMatchesReference) {
  const double eps = 1e-6;
  for (Shape s : {Shape{0, 4}, Shape{1, 1}, Shape{9, 65}, Shape{300, 200}}) {
    for (int affine = 0; affine < 2; ++affine) {
      const int64_t R = s.R, C = s.C, n = R * C;
      const Vec x = random_vec(n, 11), w = random_vec(C, 12);
      Vec ref(n), rr(R), out(n), rstd(R);
      ref_rms_norm(&ref, &rr, x, affine ? w.data() : nullptr, R, C, eps);
      rms_norm_forward(out.data(), rstd.data(), x.data(), affine ? w.data() : nullptr, R, C, eps);
      for (int64_t i = 0; i < n; ++i)
        ASSERT_NEAR(out[i], ref[i], 1e-12 * std::fabs(ref[i]) + 1e-13);
      const std::vector<float> xf = to_float(x), wf = to_float(w);
      std::vector<float> outf(n), rstdf(R);
      rms_norm_forward(outf.data(), rstdf.data(), xf.data(), affine ? wf.data() : nullptr, R, C,
                       eps);
      ref_rms_norm(&ref, &rr, to_double(xf), affine ? to_double(wf).data() : nullptr, R, C, eps);
      for (int64_t i = 0; i < n; ++i) {
        ASSERT_NEAR(outf[i], ref[i], 2e-6 * std::fabs(ref[i]) + 2e-6);
      }
    }
  }
}

TEST(RmsNorm, BackwardMatchesFiniteDifferences) {
  const int64_t R = 4, C = 6;
  const double eps = 1e-6;
  for (int affine = 0; affine < 2; ++affine) {
    Vec x = random_vec(R * C, 13), w = random_vec(C, 14);
    const Vec g = random_vec(R * C, 15);
    const double* wp = affine ? w.data() : nullptr;
    auto loss = [&] {
      Vec out(R * C), rs(R);
      rms_norm_forward(out.data(), rs.data(), x.data(), wp, R, C, eps);
      return dot(out, g);
    };
    Vec out(R * C), rstd(R), dx(R * C, 0.5), dw(C, 1.5);
    rms_norm_forward(out.data(), rstd.data(), x.data(), wp, R, C, eps);
    rms_norm_backward(dx.data(), affine ? dw.data() : nullptr, g.data(), x.data(), wp, rstd.data(),
                      R, C);
    expect_grad(dx, 0.5, finite_diff(loss, &x), "dx");
    if (affine) expect_grad(dw, 1.5, finite_diff(loss, &w), "dweight");
  }
}

// ---- softmax / log_softmax ----------------------------------------------------------------

TEST(Softmax, ForwardMatchesReferenceIncludingLargeAndMasked) {
  for (Shape s : {Shape{0, 3}, Shape{3, 1}, Shape{6, 17}, Shape{200, 256}}) {
    const int64_t R = s.R, C = s.C, n = R * C;
    Vec x = random_vec(n, 16, -5, 5);
    if (R > 2) {
      for (int64_t c = 0; c < C; ++c) x[0 * C + c] *= 2e3;      // magnitudes ~1e4
      for (int64_t c = 1; c < C; c += 2) x[1 * C + c] = -kInf;  // masked entries
    }
    const Vec ref_log = ref_log_softmax(x, R, C);
    Vec y(n), ly(n);
    softmax_forward(y.data(), x.data(), R, C);
    log_softmax_forward(ly.data(), x.data(), R, C);
    for (int64_t i = 0; i < n; ++i) {
      ASSERT_NEAR(y[i], std::exp(ref_log[i]), 1e-12 * std::exp(ref_log[i]) + 1e-15) << i;
      if (std::isinf(ref_log[i])) {
        ASSERT_EQ(ly[i], ref_log[i]);
      } else {
        ASSERT_NEAR(ly[i], ref_log[i], 1e-12 * std::fabs(ref_log[i]) + 1e-13) << i;
      }
    }
    const std::vector<float> xf = to_float(x);
    const Vec ref_logf = ref_log_softmax(to_double(xf), R, C);
    std::vector<float> yf(xf);  // in place
    softmax_forward(yf.data(), yf.data(), R, C);
    std::vector<float> lyf(n);
    log_softmax_forward(lyf.data(), xf.data(), R, C);
    for (int64_t i = 0; i < n; ++i) {
      ASSERT_NEAR(yf[i], std::exp(ref_logf[i]), 1e-6) << i;
      if (std::isinf(ref_logf[i])) {
        ASSERT_EQ(lyf[i], ref_logf[i]);
      } else {
        ASSERT_NEAR(lyf[i], ref_logf[i], 5e-6 * (1 + std::fabs(ref_logf[i]))) << i;
      }
    }
  }
}

TEST(Softmax, AllMinusInfinityRowIsNaN) {
  const float inf = std::numeric_limits<float>::infinity();
  std::vector<float> x = {-inf, -inf, -inf, 1.0f, 2.0f, 3.0f}, y(6), ly(6);
  softmax_forward(y.data(), x.data(), 2, 3);
  log_softmax_forward(ly.data(), x.data(), 2, 3);
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(std::isnan(y[i]) && std::isnan(ly[i]));
  }
  for (int i = 3; i < 6; ++i) {
    EXPECT_FALSE(std::isnan(y[i]) || std::isnan(ly[i]));
  }
}

TEST(Softmax, BackwardMatchesFiniteDifferences) {
  for (Shape s : {Shape{1, 1}, Shape{3, 7}}) {
    const int64_t R = s.R, C = s.C, n = R * C;
    Vec x = random_vec(n, 17, -3, 3);
    const Vec g = random_vec(n, 18);
    for (int log = 0; log < 2; ++log) {
      auto fwd = [&](double* y, const double* in) {
        if (log) {
          log_softmax_forward(y, in, R, C);
        } else {
          softmax_forward(y, in, R, C);
        }
      };
      auto loss = [&] {
        Vec y(n);
        fwd(y.data(), x.data());
        return dot(y, g);
      };
      Vec y(n), dx(n, 0.75);
      fwd(y.data(), x.data());
      if (log) {
        log_softmax_backward(dx.data(), g.data(), y.data(), R, C);
      } else {
        softmax_backward(dx.data(), g.data(), y.data(), R, C);
      }
      expect_grad(dx, 0.75, finite_diff(loss, &x), log ? "log_softmax dx" : "softmax dx");
    }
  }
}

// ---- fused cross-entropy ------------------------------------------------------------------

constexpr int32_t kIgnore = -100;

TEST(CrossEntropy, ForwardMatchesReferenceAndComposite) {
  // V spans several 1024-logit blocks with the max late in the row (running-sum rescale);
  // row 1 holds ~1e4 logits, row 2 an all -inf first block, row 3 is ignored.
  const int64_t R = 6, V = 5000;
  Vec x = random_vec(R * V, 19, -8, 8);
  for (int64_t v = 0; v < V; ++v) x[1 * V + v] *= 1.5e3;
  for (int64_t v = 0; v < 1024; ++v) x[2 * V + v] = -kInf;
  x[0 * V + 4321] = 30.0;
  const std::vector<int32_t> t = {4321, 17, 3000, kIgnore, 0, V - 1};
  const Vec ref_log = ref_log_softmax(x, R, V);

  Vec loss(R, -1.0), lse(R, -1.0);
  const int64_t n_valid =
      cross_entropy_forward(loss.data(), lse.data(), x.data(), t.data(), R, V, kIgnore);
  EXPECT_EQ(n_valid, 5);
  for (int64_t r = 0; r < R; ++r) {
    const double ref = t[r] == kIgnore ? 0.0 : -ref_log[r * V + t[r]];
    EXPECT_NEAR(loss[r], ref, 1e-12 * (1 + std::fabs(x[r * V])) + 1e-12) << "row " << r;
  }
  EXPECT_EQ(loss[3], 0.0);

  // float against the composite it replaces: log_softmax materialised, then gather.
  const std::vector<float> xf = to_float(x);
  std::vector<float> lossf(R), lsef(R), logp(R * V);
  cross_entropy_forward(lossf.data(), lsef.data(), xf.data(), t.data(), R, V, kIgnore);
  log_softmax_forward(logp.data(), xf.data(), R, V);
  const Vec ref_logf = ref_log_softmax(to_double(xf), R, V);
  for (int64_t r = 0; r < R; ++r) {
    if (t[r] == kIgnore) {
      EXPECT_EQ(lossf[r], 0.0f) << "ignored row " << r;
      continue;
    }
    const double ref = -ref_logf[r * V + t[r]];
    const double tol = 5e-6 * (1 + std::fabs(xf[r * V + t[r]]));
    EXPECT_NEAR(lossf[r], ref, tol) << "row " << r;
    EXPECT_NEAR(lossf[r], -logp[r * V + t[r]], tol) << "row " << r << " vs composite";
  }
}

TEST(CrossEntropy, BackwardMatchesFiniteDifferencesAndComposite) {
  const int64_t R = 4, V = 7;
  Vec x = random_vec(R * V, 20, -3, 3);
  const std::vector<int32_t> t = {2, kIgnore, 0, 6};
  const double scale = 0.37;
  auto loss = [&] {
    Vec l(R), lse(R);
    cross_entropy_forward(l.data(), lse.data(), x.data(), t.data(), R, V, kIgnore);
    double s = 0;
    for (double v : l) s += v;
    return scale * s;
  };
  Vec l(R), lse(R), dx(R * V, 0.125);
  cross_entropy_forward(l.data(), lse.data(), x.data(), t.data(), R, V, kIgnore);
  cross_entropy_backward(dx.data(), x.data(), lse.data(), t.data(), scale, R, V, kIgnore);
  expect_grad(dx, 0.125, finite_diff(loss, &x), "dlogits");
  for (int64_t v = 0; v < V; ++v) {
    EXPECT_EQ(dx[1 * V + v], 0.125) << "ignored row untouched";
  }

  // Composite: dy = -scale * onehot, then log_softmax_backward.
  Vec logp(R * V), dy(R * V, 0.0), dx_comp(R * V, 0.125);
  log_softmax_forward(logp.data(), x.data(), R, V);
  for (int64_t r = 0; r < R; ++r) {
    if (t[r] != kIgnore) dy[r * V + t[r]] = -scale;
  }
  log_softmax_backward(dx_comp.data(), dy.data(), logp.data(), R, V);
  for (int64_t i = 0; i < R * V; ++i) {
    EXPECT_NEAR(dx[i], dx_comp[i], 1e-14);
  }
}

TEST(CrossEntropy, FloatBackwardAtGpt2VocabMatchesDouble) {
  const int64_t R = 3, V = 50257;
  const std::vector<float> xf = to_float(random_vec(R * V, 21, -10, 10));
  const Vec xd = to_double(xf);
  const std::vector<int32_t> t = {0, 50256, 12345};
  std::vector<float> lf(R), lsef(R), dxf(R * V, 0.0f);
  Vec ld(R), lsed(R), dxd(R * V, 0.0);
  cross_entropy_forward(lf.data(), lsef.data(), xf.data(), t.data(), R, V, kIgnore);
  cross_entropy_forward(ld.data(), lsed.data(), xd.data(), t.data(), R, V, kIgnore);
  cross_entropy_backward(dxf.data(), xf.data(), lsef.data(), t.data(), 1.0f / 3, R, V, kIgnore);
  cross_entropy_backward(dxd.data(), xd.data(), lsed.data(), t.data(), 1.0 / 3, R, V, kIgnore);
  for (int64_t r = 0; r < R; ++r) {
    EXPECT_NEAR(lf[r], ld[r], 2e-5 * (1 + std::fabs(ld[r])));
  }
  // NaN (a failure) if either holds a NaN or Inf
  const double max_err = llmkit::testing::max_abs_diff(dxf, dxd);
  EXPECT_LT(max_err, 1e-7);  // probabilities * 1/3: absolute error
}

TEST(CrossEntropy, BadTargetThrowsNamingRowAndValue) {
  const int64_t R = 3, V = 10;
  const std::vector<float> x(R * V, 0.0f);
  std::vector<float> l(R, 7.0f), lse(R), dx(R * V, 0.0f);
  for (int32_t bad : {10, -1, 1 << 30}) {
    const std::vector<int32_t> t = {1, kIgnore, bad};
    try {
      cross_entropy_forward(l.data(), lse.data(), x.data(), t.data(), R, V, kIgnore);
      FAIL() << "no throw for target " << bad;
    } catch (const Error& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find("row 2"), std::string::npos) << msg;
      EXPECT_NE(msg.find(std::to_string(bad)), std::string::npos) << msg;
    }
    EXPECT_THROW(
        cross_entropy_backward(dx.data(), x.data(), lse.data(), t.data(), 1.0f, R, V, kIgnore),
        Error);
    EXPECT_EQ(l[0], 7.0f) << "nothing written before the check";
  }
}

TEST(CrossEntropy, EmptyAndAllIgnored) {
  std::vector<float> l(2, 5.0f), lse(2, 5.0f), x(2 * 4, 1.0f), dx(2 * 4, 0.0f);
  const std::vector<int32_t> t = {kIgnore, kIgnore};
  EXPECT_EQ(cross_entropy_forward<float>(nullptr, nullptr, nullptr, nullptr, 0, 4, kIgnore), 0);
  EXPECT_EQ(cross_entropy_forward(l.data(), lse.data(), x.data(), t.data(), 2, 4, kIgnore), 0);
  EXPECT_EQ(l[0], 0.0f);
  EXPECT_EQ(l[1], 0.0f);
  cross_entropy_backward(dx.data(), x.data(), lse.data(), t.data(), 1.0f, 2, 4, kIgnore);
  for (float v : dx) {
    EXPECT_EQ(v, 0.0f);
  }
}

// ---- token log-probabilities and softmax entropy (the preference losses' pieces) ------------

// Rows over several 1024-logit blocks: float (vectorised exp) against double, and double
// against the naive log-softmax reference. Gradients: the op tests check them by finite
// differences; here float against double at the GPT-2 vocabulary.
TEST(TokenLogProbs, FloatAtGpt2VocabMatchesDoubleAndReference) {
  const int64_t R = 3, V = 50257;
  const std::vector<float> xf = to_float(random_vec(R * V, 22, -10, 10));
  const Vec xd = to_double(xf);
  const std::vector<int32_t> t = {0, kIgnore, 12345};
  std::vector<float> lpf(R), lsef(R), dxf(R * V, 0.0f);
  Vec lpd(R), lsed(R), dxd(R * V, 0.0);
  EXPECT_EQ(token_log_probs_forward(lpf.data(), lsef.data(), xf.data(), t.data(), R, V, kIgnore),
            2);
  token_log_probs_forward(lpd.data(), lsed.data(), xd.data(), t.data(), R, V, kIgnore);
  const Vec ref = ref_log_softmax(xd, R, V);
  for (int64_t r = 0; r < R; ++r) {
    const double want = t[r] == kIgnore ? 0.0 : ref[r * V + t[r]];
    EXPECT_NEAR(lpd[r], want, 1e-11) << "row " << r;
    EXPECT_NEAR(lpf[r], want, 2e-5 * (1 + std::fabs(want))) << "row " << r;
  }
  const std::vector<float> gf = {0.5f, 2.0f, -1.5f};
  const Vec gd = {0.5, 2.0, -1.5};
  token_log_probs_backward(dxf.data(), gf.data(), xf.data(), lsef.data(), t.data(), R, V, kIgnore);
  token_log_probs_backward(dxd.data(), gd.data(), xd.data(), lsed.data(), t.data(), R, V, kIgnore);
  EXPECT_LT(llmkit::testing::max_abs_diff(dxf, dxd), 1e-6);
  for (int64_t v = 0; v < V; ++v) {
    ASSERT_EQ(dxf[V + v], 0.0f) << "ignored row untouched";
  }
}

TEST(SoftmaxEntropy, FloatAtGpt2VocabMatchesDoubleAndReference) {
  // Row 1 has an all -inf first block (p = 0 there: no 0 * -inf).
  const int64_t R = 3, V = 50257;
  Vec x = random_vec(R * V, 23, -10, 10);
  for (int64_t v = 0; v < 1024; ++v) x[1 * V + v] = -kInf;
  const std::vector<float> xf = to_float(x);
  const Vec xd = to_double(xf);
  std::vector<float> hf(R), lsef(R), meanf(R), dxf(R * V, 0.0f);
  Vec hd(R), lsed(R), meand(R), dxd(R * V, 0.0);
  softmax_entropy_forward(hf.data(), lsef.data(), meanf.data(), xf.data(), R, V);
  softmax_entropy_forward(hd.data(), lsed.data(), meand.data(), xd.data(), R, V);
  const Vec logp = ref_log_softmax(xd, R, V);
  for (int64_t r = 0; r < R; ++r) {
    double want = 0;
    for (int64_t v = 0; v < V; ++v) {
      const double lp = logp[r * V + v];
      if (std::isfinite(lp)) want -= std::exp(lp) * lp;
    }
    EXPECT_NEAR(hd[r], want, 1e-10) << "row " << r;
    EXPECT_NEAR(hf[r], want, 1e-4) << "row " << r;  // ~10: a float sum over 50k terms
  }
  const std::vector<float> gf = {0.5f, 2.0f, -1.5f};
  const Vec gd = {0.5, 2.0, -1.5};
  softmax_entropy_backward(dxf.data(), gf.data(), xf.data(), lsef.data(), meanf.data(), R, V);
  softmax_entropy_backward(dxd.data(), gd.data(), xd.data(), lsed.data(), meand.data(), R, V);
  EXPECT_LT(llmkit::testing::max_abs_diff(dxf, dxd), 1e-6);
}

}  // namespace
}  // namespace llmkit::kernels
