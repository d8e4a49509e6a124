// The comparison helpers every other test relies on (common/compare.h, gradcheck.h, parity.h)
// must fail on NaN or Inf in either operand, both NaN included: each case here feeds one and
// counts the test failures the helper reports. A passing case with finite values shows that the
// helpers are not simply failing everything.
#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "common/compare.h"
#include "common/gradcheck.h"
#include "common/parity.h"
#include "llmkit/models/gpt.h"
#include "llmkit/ops/ops.h"

using namespace llmkit;
namespace lt = llmkit::testing;

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kNan = std::numeric_limits<double>::quiet_NaN();

// How many non-fatal or fatal failures `body` reports (intercepted, so they do not fail this
// test themselves).
int failures_in(const std::function<void()>& body) {
  ::testing::TestPartResultArray results;
  {
    ::testing::ScopedFakeTestPartResultReporter reporter(
        ::testing::ScopedFakeTestPartResultReporter::INTERCEPT_ONLY_CURRENT_THREAD, &results);
    body();
  }
  int n = 0;
  for (int i = 0; i < results.size(); ++i) n += results.GetTestPartResult(i).failed();
  return n;
}

struct Pair {
  const char* name;
  std::vector<double> a, b;
};

// Every way a NaN or an Inf can hide: in one operand, in the other, in both, equal infinities.
std::vector<Pair> non_finite_pairs() {
  return {{"NaN in a", {1, kNan, 3}, {1, 2, 3}},
          {"NaN in b", {1, 2, 3}, {1, 2, kNan}},
          {"NaN in both", {kNan, 2, 3}, {kNan, 2, 3}},
          {"Inf in a", {1, 2, kInf}, {1, 2, 3}},
          {"-Inf in b", {-kInf, 2, 3}, {1, 2, 3}},
          {"same Inf in both", {kInf, 2, 3}, {kInf, 2, 3}}};
}

TEST(CompareHelpers, FiniteValuesAreMeasured) {
  EXPECT_EQ(lt::max_abs_diff(std::vector<double>{1, 2, 3}, std::vector<float>{1, 2.5f, 3}), 0.5);
  EXPECT_EQ(lt::max_abs(std::vector<double>{-4, 2}), 4.0);
  EXPECT_DOUBLE_EQ(lt::rel_err(std::vector<double>{1, 2}, std::vector<double>{1, 4}), 0.5);
  EXPECT_EQ(lt::nan_max(1.0, 2.0), 2.0);
}

TEST(CompareHelpers, NanMaxKeepsTheNaN) {
  // std::max(1.0, NaN) is 1.0: the reason these helpers exist.
  EXPECT_TRUE(std::isnan(lt::nan_max(1.0, kNan)));
  EXPECT_TRUE(std::isnan(lt::nan_max(kNan, 1.0)));
}

TEST(CompareHelpers, EveryNonFiniteOperandFailsTheComparison) {
  for (const Pair& p : non_finite_pairs()) {
    EXPECT_TRUE(std::isnan(lt::max_abs_diff(p.a, p.b))) << p.name;
    EXPECT_TRUE(std::isnan(lt::rel_err(p.a, p.b))) << p.name;
    EXPECT_EQ(failures_in([&] { EXPECT_LT(lt::max_abs_diff(p.a, p.b), 1e-3); }), 1) << p.name;
    EXPECT_EQ(failures_in([&] { EXPECT_LT(lt::rel_err(p.a, p.b), 1e-3); }), 1) << p.name;
  }
  EXPECT_TRUE(std::isnan(lt::max_abs(std::vector<double>{1, kInf})));
  EXPECT_TRUE(std::isnan(lt::max_abs_diff(std::vector<double>{1}, std::vector<double>{1, 2})));
}

TEST(ParityHelpers, RelErrOfTensorsFailsOnNaNOrInf) {
  for (const Pair& p : non_finite_pairs()) {
    const Tensor a = Tensor::from_vector(p.a, {3}), b = Tensor::from_vector(p.b, {3});
    EXPECT_EQ(failures_in([&] { EXPECT_LT(lt::rel_err(a, b), 1e-4); }), 1) << p.name;
  }
  EXPECT_EQ(lt::rel_err(Tensor::from_vector(std::vector<double>{1, 2}, {2}),
                        Tensor::from_vector(std::vector<double>{1, 2}, {2})),
            0.0);
}

TEST(GradcheckHelpers, MaxAbsDiffOfTensorsFailsOnNaNOrInf) {
  for (const Pair& p : non_finite_pairs()) {
    const Tensor a = Tensor::from_vector(p.a, {3}), b = Tensor::from_vector(p.b, {3});
    EXPECT_EQ(failures_in([&] { EXPECT_LT(lt::max_abs_diff(a, b), 1e-9); }), 1) << p.name;
  }
}

// A tiny GPT's logits, loss and gradients, and a "reference" copied from them: it matches until
// one value is replaced by NaN or Inf.
struct TinyRun {
  models::GPT model;
  Tensor logits, loss;
  std::map<std::string, Tensor> ref;
  TinyRun() : model(config(), 1) {
    const Tensor ids = Tensor::from_vector(std::vector<int32_t>{1, 2, 3, 4}, {1, 4});
    const Tensor tgt = Tensor::from_vector(std::vector<int32_t>{2, 3, 4, 5}, {1, 4});
    logits = model.forward(ids);
    loss = model.loss(ids, tgt);
    loss.backward();
    ref["logits"] = logits.detach().clone();
    ref["loss"] = loss.detach().clone();
    for (auto& [n, p] : model.named_parameters()) ref["grad." + n] = p.grad().clone();
  }
  static models::GPTConfig config() {
    models::GPTConfig c;
    c.n_layer = 1;
    c.n_head = 2;
    c.n_embd = 8;
    c.block_size = 8;
    c.vocab_size = 7;
    return c;
  }
  int failures() {
    return failures_in([&] { lt::expect_matches_reference(logits, loss, model, ref); });
  }
};

Tensor param_grad(const nn::Module& m, const std::string& name) {
  for (auto& [n, p] : m.named_parameters())
    if (n == name) return p.grad();
  ADD_FAILURE() << "no parameter " << name;
  return Tensor();
}

void set_first(const Tensor& t, double v) {
  t.data<float>()[0] = static_cast<float>(v);
}

TEST(ParityHelpers, ExpectMatchesReferenceCatchesNaNAndInf) {
  {
    TinyRun run;
    EXPECT_EQ(run.failures(), 0) << "an exact copy must match";
  }
  const std::string grad = "grad.h.0.attn.c_attn.weight";
  for (double bad : {kNan, kInf}) {
    {  // NaN / Inf gradient, ours
      TinyRun run;
      set_first(param_grad(run.model, "h.0.attn.c_attn.weight"), bad);
      EXPECT_GE(run.failures(), 1) << "our gradient " << bad;
    }
    {  // in the reference's gradient
      TinyRun run;
      set_first(run.ref.at(grad), bad);
      EXPECT_GE(run.failures(), 1) << "reference gradient " << bad;
    }
    {  // in both gradients
      TinyRun run;
      set_first(param_grad(run.model, "h.0.attn.c_attn.weight"), bad);
      set_first(run.ref.at(grad), bad);
      EXPECT_GE(run.failures(), 1) << "both gradients " << bad;
    }
    {  // in both logits
      TinyRun run;
      set_first(run.logits, bad);
      set_first(run.ref.at("logits"), bad);
      EXPECT_GE(run.failures(), 1) << "both logits " << bad;
    }
    {  // in both losses
      TinyRun run;
      set_first(run.loss, bad);
      set_first(run.ref.at("loss"), bad);
      EXPECT_GE(run.failures(), 1) << "both losses " << bad;
    }
  }
}

Tensor zeros_f64(int64_t n) {
  return Tensor::zeros({n}, DType::F64).requires_grad_();
}

TEST(GradcheckHelpers, CorrectGradientPasses) {
  EXPECT_EQ(failures_in([] {
              lt::gradcheck([](const std::vector<Tensor>& x) { return ops::mul(x[0], x[0]); },
                            {lt::rand_tensor({5}, 3).requires_grad_()});
            }),
            0);
}

TEST(GradcheckHelpers, NaNAnalyticGradientFails) {
  // sqrt(x * x) at 0: backward is (1 / 2 sqrt(0)) * 2x = inf * 0 = NaN; the central difference
  // is (h - h) / 2h = 0.
  EXPECT_EQ(failures_in([] {
              lt::gradcheck(
                  [](const std::vector<Tensor>& x) { return ops::sqrt(ops::mul(x[0], x[0])); },
                  {zeros_f64(3)});
            }),
            1);
}

TEST(GradcheckHelpers, NaNOnBothSidesFails) {
  // x * NaN: the loss, so the central difference, is NaN, and so is the analytic gradient.
  EXPECT_EQ(failures_in([] {
              lt::gradcheck(
                  [](const std::vector<Tensor>& x) { return ops::mul_scalar(x[0], kNan); },
                  {lt::rand_tensor({3}, 4).requires_grad_()});
            }),
            1);
}

TEST(GradcheckHelpers, InfiniteGradientFails) {
  // sqrt at 0: analytic 1 / (2 sqrt(0)) = inf, numeric (sqrt(h) - NaN) / 2h = NaN.
  EXPECT_EQ(failures_in([] {
              lt::gradcheck([](const std::vector<Tensor>& x) { return ops::sqrt(x[0]); },
                            {zeros_f64(2)});
            }),
            1);
}

}  // namespace
