// AdamW against a scalar reference of torch.optim.AdamW, its state round trip, the decay rule,
// learning-rate schedules and gradient clipping.
#include <gtest/gtest.h>

#include <cmath>

#include "llmkit/core/autograd.h"
#include "llmkit/ops/ops.h"
#include "llmkit/train/adamw.h"
#include "llmkit/train/clip.h"
#include "llmkit/train/schedule.h"

using namespace llmkit;
using namespace llmkit::train;

static Tensor param(std::vector<double> v, Shape s) {
  return Tensor::from_vector(v, s).requires_grad_();
}
static void set_grad(const Tensor& p, std::vector<double> g) {
  p.zero_grad();
  Tensor x = p * Tensor::from_vector(g, p.shape());
  ops::sum(x).backward();
}

TEST(AdamW, MatchesScalarReference) {
  Tensor w = param({0.5, -1.0, 2.0, 0.1}, {2, 2}), b = param({0.3, -0.2}, {2});
  AdamW opt({{"h.0.mlp.c_fc.weight", w}, {"h.0.mlp.c_fc.bias", b}},
            {.lr = 0.01, .beta1 = 0.9, .beta2 = 0.95, .eps = 1e-8, .weight_decay = 0.1});
  std::vector<double> rw = {0.5, -1.0, 2.0, 0.1}, rb = {0.3, -0.2}, mw(4), vw(4), mb(2), vb(2);
  for (int t = 1; t <= 5; ++t) {
    std::vector<double> gw = {0.1 * t, -0.2, 0.3, 0.05 * t}, gb = {-0.1, 0.2 * t};
    set_grad(w, gw);
    set_grad(b, gb);
    opt.step();
    auto ref = [&](std::vector<double>& p, std::vector<double>& m, std::vector<double>& v,
                   const std::vector<double>& g, double wd) {
      for (size_t i = 0; i < p.size(); ++i) {
        p[i] -= 0.01 * wd * p[i];
        m[i] = 0.9 * m[i] + 0.1 * g[i];
        v[i] = 0.95 * v[i] + 0.05 * g[i] * g[i];
        const double mh = m[i] / (1 - std::pow(0.9, t)), vh = v[i] / (1 - std::pow(0.95, t));
        p[i] -= 0.01 * mh / (std::sqrt(vh) + 1e-8);
      }
    };
    ref(rw, mw, vw, gw, 0.1);
    ref(rb, mb, vb, gb, 0.0);
    const auto aw = w.to_vector<double>(), ab = b.to_vector<double>();
    for (int i = 0; i < 4; ++i) EXPECT_NEAR(aw[i], rw[i], 1e-12) << t;
    for (int i = 0; i < 2; ++i) EXPECT_NEAR(ab[i], rb[i], 1e-12) << t;
  }
}

TEST(AdamW, DecayRule) {
  Tensor m = Tensor::zeros({2, 2}), v = Tensor::zeros({2});
  EXPECT_TRUE(AdamW::decays("h.0.attn.c_attn.weight", m));
  EXPECT_TRUE(AdamW::decays("lm_head.weight", m));
  EXPECT_FALSE(AdamW::decays("wte.weight", m));
  EXPECT_FALSE(AdamW::decays("wpe.weight", m));
  EXPECT_FALSE(AdamW::decays("model.embed_tokens.weight", m));
  EXPECT_FALSE(AdamW::decays("h.0.ln_1.weight", v));
  EXPECT_FALSE(AdamW::decays("h.0.attn.c_attn.bias", v));
}

TEST(AdamW, StateRoundTripContinuesIdentically) {
  auto run = [](bool reload) {
    Tensor w = param({0.5, -1.0, 2.0, 0.1}, {2, 2});
    auto opt = std::make_unique<AdamW>(std::vector<std::pair<std::string, Tensor>>{{"w", w}},
                                       AdamWOptions{});
    for (int t = 0; t < 6; ++t) {
      if (reload && t == 3) {
        std::map<std::string, Tensor> s;
        for (auto& [n, x] : opt->state()) s[n] = x.clone();
        const int64_t step = opt->step_count();
        opt = std::make_unique<AdamW>(std::vector<std::pair<std::string, Tensor>>{{"w", w}},
                                      AdamWOptions{});
        opt->load_state(s, step);
      }
      set_grad(w, {0.1 * t, -0.3, 0.2, 0.01});
      opt->step();
    }
    return w.to_vector<double>();
  };
  EXPECT_EQ(run(false), run(true));
  Tensor w = param({1, 2}, {2});
  AdamW opt({{"w", w}}, {});
  EXPECT_THROW(opt.load_state({}, 1), Error);
  EXPECT_THROW(opt.load_state({{"w.exp_avg", Tensor::zeros({3}, DType::F64)},
                               {"w.exp_avg_sq", Tensor::zeros({2}, DType::F64)}},
                              1),
               Error);
}

TEST(AdamW, MinimisesAQuadraticInFloat) {
  Tensor x = Tensor::full({10}, 3.0).requires_grad_();
  AdamW opt({{"x", x}},
            {.lr = 0.1, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .weight_decay = 0.0});
  double loss = 0;
  for (int i = 0; i < 300; ++i) {
    opt.zero_grad();
    Tensor l = ops::sum((x - 1.0) * (x - 1.0));
    loss = l.item<float>();
    l.backward();
    opt.step();
  }
  EXPECT_LT(loss, 1e-3);
}

TEST(Schedule, CosineWarmupLinearConstant) {
  LrSchedule s{LrSchedule::Kind::Cosine, 10, 110, 1.0, 0.1};
  EXPECT_NEAR(s.at(0), 0.1, 1e-12);
  EXPECT_NEAR(s.at(9), 1.0, 1e-12);
  EXPECT_NEAR(s.at(10), 1.0, 1e-12);
  EXPECT_NEAR(s.at(60), 0.55, 1e-12);  // halfway: min + (max - min) / 2
  EXPECT_NEAR(s.at(110), 0.1, 1e-12);
  EXPECT_NEAR(s.at(500), 0.1, 1e-12);
  s.kind = LrSchedule::Kind::Linear;
  EXPECT_NEAR(s.at(35), 1.0 - 0.9 * 0.25, 1e-12);
  s.kind = LrSchedule::Kind::Constant;
  EXPECT_NEAR(s.at(100), 1.0, 1e-12);
  s.min_lr = 2.0;
  EXPECT_THROW(s.at(3), Error);
}

TEST(Clip, GlobalNorm) {
  Tensor a = param({3, 0}, {2}), b = param({0, 4}, {2}), c = param({1}, {1});
  set_grad(a, {3, 0});
  set_grad(b, {0, 4});
  EXPECT_NEAR(clip_grad_norm({a, b, c}, 10.0), 5.0, 1e-12);  // c has no grad: skipped
  EXPECT_EQ(a.grad().to_vector<double>()[0], 3.0);
  EXPECT_NEAR(clip_grad_norm({a, b}, 1.0), 5.0, 1e-12);
  EXPECT_NEAR(a.grad().to_vector<double>()[0], 3.0 / (5.0 + 1e-6), 1e-9);
  EXPECT_NEAR(clip_grad_norm({a, b}, 0.0), 1.0, 1e-6);
}
