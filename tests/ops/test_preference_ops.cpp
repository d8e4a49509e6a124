// The ops the preference losses are built from (ops/elementwise.h: log_sigmoid, clamp, maximum,
// minimum; ops/loss.h: token_log_probs, softmax_entropy): forward against closed forms or the
// composite of primitive ops they replace, backward against finite differences in f64.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "common/gradcheck.h"
#include "llmkit/ops/ops.h"

using namespace llmkit;
using llmkit::testing::gradcheck;
using llmkit::testing::max_abs_diff;
using llmkit::testing::rand_tensor;
using V = std::vector<Tensor>;

TEST(LogSigmoid, MatchesFormulaAndDoesNotOverflow) {
  Tensor x = rand_tensor({3, 7}, 1, -8, 8);
  auto xv = x.to_vector<double>();
  std::vector<double> ref(xv.size());
  for (size_t i = 0; i < xv.size(); ++i) ref[i] = std::log(1.0 / (1.0 + std::exp(-xv[i])));
  EXPECT_LT(max_abs_diff(ops::log_sigmoid(x), Tensor::from_vector(ref, x.shape())), 1e-12);
  // Far tails: log sigmoid(-1000) = -1000 (not -inf from log(0)); log sigmoid(1000) = 0.
  for (DType dt : {DType::F64, DType::F32}) {
    Tensor big = Tensor::from_vector(std::vector<double>{-1000, 1000, -50, 50}, {4}).to(dt);
    Tensor y = ops::log_sigmoid(big);
    const auto yv = y.to_vector<double>();
    EXPECT_EQ(yv[0], -1000.0);
    EXPECT_EQ(yv[1], 0.0);
    EXPECT_NEAR(yv[2], -50.0, 1e-12);
    EXPECT_NEAR(yv[3], -std::exp(-50.0), 1e-25);  // log1p keeps the small term
    // Gradient sigmoid(-x): 1 at -1000, 0 at 1000, finite everywhere.
    Tensor b = big.detach().requires_grad_();
    ops::sum(ops::log_sigmoid(b)).backward();
    const auto g = b.grad().to_vector<double>();
    EXPECT_EQ(g[0], 1.0);
    EXPECT_EQ(g[1], 0.0);
  }
  Tensor xr = rand_tensor({2, 5}, 2, -6, 6).requires_grad_();
  gradcheck([](const V& v) { return ops::log_sigmoid(v[0]); }, {xr});
  gradcheck([](const V& v) { return ops::log_sigmoid(v[0].transpose(0, 1)); }, {xr});
}

TEST(Clamp, ClipsAndPassesGradientInsideOnly) {
  Tensor x = Tensor::from_vector(std::vector<double>{-2, -0.5, 0.1, 0.7, 3}, {5}).requires_grad_();
  Tensor y = ops::clamp(x, -0.5, 0.7);
  EXPECT_EQ(y.to_vector<double>(), (std::vector<double>{-0.5, -0.5, 0.1, 0.7, 0.7}));
  ops::sum(y).backward();
  // The bounds themselves are inside (torch.clamp does the same).
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{0, 1, 1, 1, 0}));
  Tensor xr = rand_tensor({3, 4}, 3, -2, 2).requires_grad_();
  gradcheck([](const V& v) { return ops::clamp(v[0], -0.8, 0.9); }, {xr});
  EXPECT_THROW(ops::clamp(xr, 1.0, 0.0), Error);
}

TEST(MaximumMinimum, BroadcastAndRouteGradient) {
  Tensor a = rand_tensor({2, 3}, 4).requires_grad_(), b = rand_tensor({3}, 5).requires_grad_();
  const auto av = a.to_vector<double>(), bv = b.to_vector<double>();
  std::vector<double> mx(6), mn(6);
  for (int i = 0; i < 6; ++i) {
    mx[i] = std::max(av[i], bv[i % 3]);
    mn[i] = std::min(av[i], bv[i % 3]);
  }
  EXPECT_EQ(ops::maximum(a, b).to_vector<double>(), mx);
  EXPECT_EQ(ops::minimum(a, b).to_vector<double>(), mn);
  EXPECT_EQ(ops::maximum(b, a).to_vector<double>(), mx);
  gradcheck([](const V& v) { return ops::maximum(v[0], v[1]); }, {a, b});
  gradcheck([](const V& v) { return ops::minimum(v[0], v[1]); }, {a, b});
  gradcheck([](const V& v) { return ops::minimum(v[1], v[0].transpose(0, 1).transpose(0, 1)); },
            {a, b});
  // Ties: the whole gradient goes to a.
  for (auto f : {+[](const Tensor&p, const Tensor&q) { return ops::maximum(p, q); },
                 +[](const Tensor&p, const Tensor&q) { return ops::minimum(p, q); }}) {
    Tensor p = Tensor::full({4}, 1.5, DType::F64).requires_grad_();
    Tensor q = Tensor::full({4}, 1.5, DType::F64).requires_grad_();
    ops::sum(f(p, q)).backward();
    EXPECT_EQ(p.grad().to_vector<double>(), (std::vector<double>{1, 1, 1, 1}));
    EXPECT_EQ(q.grad().to_vector<double>(), (std::vector<double>{0, 0, 0, 0}));
  }
  // A NaN in either input gives NaN.
  const double nan = std::numeric_limits<double>::quiet_NaN();
  Tensor n = Tensor::from_vector(std::vector<double>{nan, 0.0}, {2});
  Tensor z = Tensor::from_vector(std::vector<double>{0.0, nan}, {2});
  for (double v : ops::maximum(n, z).to_vector<double>()) EXPECT_TRUE(std::isnan(v));
  for (double v : ops::minimum(n, z).to_vector<double>()) EXPECT_TRUE(std::isnan(v));
  EXPECT_THROW(ops::maximum(a, rand_tensor({2}, 1)), Error);
  EXPECT_THROW(ops::maximum(a, b.to(DType::F32)), Error);
}

TEST(TokenLogProbs, EqualsLogSoftmaxGatheredAndIgnores) {
  Tensor logits = rand_tensor({2, 3, 11}, 6, -3, 3).requires_grad_();
  Tensor targets = Tensor::from_vector(std::vector<int32_t>{1, 10, -100, 0, 5, 5}, {2, 3});
  Tensor lp = ops::token_log_probs(logits, targets);
  EXPECT_EQ(lp.shape(), (Shape{2, 3}));
  const auto ls = ops::log_softmax(logits).to_vector<double>();
  const auto t = targets.to_vector<int32_t>();
  std::vector<double> ref(6, 0.0);
  for (int r = 0; r < 6; ++r)
    if (t[r] != -100) ref[r] = ls[r * 11 + t[r]];
  EXPECT_LT(max_abs_diff(lp, Tensor::from_vector(ref, {2, 3})), 1e-12);
  EXPECT_EQ(lp.to_vector<double>()[2], 0.0);
  // The f32 path (vectorised exp) within float rounding.
  EXPECT_LT(max_abs_diff(ops::token_log_probs(logits.to(DType::F32).detach(), targets),
                         Tensor::from_vector(ref, {2, 3})),
            1e-5);
  // Backward: dlogits = g (onehot - softmax) per row, exactly 0 on the ignored row.
  Tensor w = rand_tensor({2, 3}, 7);
  ops::sum(lp * w).backward();
  const auto g = logits.grad().to_vector<double>();
  const auto sm = ops::softmax(logits.detach()).to_vector<double>();
  const auto wv = w.to_vector<double>();
  double worst = 0;
  for (int r = 0; r < 6; ++r)
    for (int i = 0; i < 11; ++i) {
      const double want = t[r] == -100 ? 0.0 : wv[r] * ((i == t[r]) - sm[r * 11 + i]);
      if (t[r] == -100) {
        EXPECT_EQ(g[r * 11 + i], 0.0);
      }
      worst = std::max(worst, std::abs(g[r * 11 + i] - want));
    }
  EXPECT_LT(worst, 1e-12);
  gradcheck([targets](const V& v) { return ops::token_log_probs(v[0], targets); }, {logits});
  gradcheck(
      [](const V& v) {
        return ops::token_log_probs(
            v[0].transpose(0, 1),
            Tensor::from_vector(std::vector<int32_t>{3, 7, 0, 2, 9, 1}, {3, 2}),
            /*ignore_index=*/7);
      },
      {logits});
  // Errors: a target outside [0, V), targets of the wrong shape or dtype.
  EXPECT_THROW(ops::token_log_probs(
                   logits, Tensor::from_vector(std::vector<int32_t>{0, 11, 0, 0, 0, 0}, {2, 3})),
               Error);
  EXPECT_THROW(ops::token_log_probs(logits, Tensor::zeros({6}, DType::I32)), Error);
  EXPECT_THROW(ops::token_log_probs(logits, Tensor::zeros({2, 3}, DType::F64)), Error);
}

TEST(SoftmaxEntropy, MatchesCompositeAndClosedForms) {
  Tensor logits = rand_tensor({2, 3, 9}, 8, -4, 4).requires_grad_();
  Tensor ref = -ops::sum(ops::softmax(logits) * ops::log_softmax(logits), {-1});
  Tensor h = ops::softmax_entropy(logits);
  EXPECT_EQ(h.shape(), (Shape{2, 3}));
  EXPECT_LT(max_abs_diff(h, ref), 1e-12);
  EXPECT_LT(max_abs_diff(ops::softmax_entropy(logits.to(DType::F32).detach()), ref), 1e-5);
  // Uniform logits: log V; one-hot-like logits: ~0; a -inf logit has p = 0 and adds nothing.
  const double inf = std::numeric_limits<double>::infinity();
  Tensor special =
      Tensor::from_vector(std::vector<double>{2, 2, 2, 2, 0, -1e4, -1e4, -1e4, 0, 0, -inf, -inf},
                          {3, 4})
          .requires_grad_();
  const auto hv = ops::softmax_entropy(special).to_vector<double>();
  EXPECT_NEAR(hv[0], std::log(4.0), 1e-14);
  EXPECT_NEAR(hv[1], 0.0, 1e-14);
  EXPECT_NEAR(hv[2], std::log(2.0), 1e-14);
  ops::sum(ops::softmax_entropy(special)).backward();
  for (double g : special.grad().to_vector<double>()) EXPECT_TRUE(std::isfinite(g));
  gradcheck([](const V& v) { return ops::softmax_entropy(v[0]); }, {logits});
  gradcheck([](const V& v) { return ops::softmax_entropy(v[0].transpose(0, 2)); }, {logits});
  EXPECT_THROW(ops::softmax_entropy(Tensor::zeros({2, 0}, DType::F64)), Error);
}
