// The neural-network ops: each fused op against the composite of primitive ops (or a direct loop)
// it replaces, and its backward against finite differences in f64.
#include <gtest/gtest.h>

#include <cmath>

#include "common/gradcheck.h"
#include "llmkit/ops/ops.h"

using namespace llmkit;
using llmkit::testing::gradcheck;
using llmkit::testing::max_abs_diff;
using llmkit::testing::rand_tensor;
using V = std::vector<Tensor>;

static Tensor map(const Tensor& x, double (*f)(double)) {
  auto v = x.to_vector<double>();
  for (auto& e : v) e = f(e);
  return Tensor::from_vector(v, x.shape()).to(x.dtype());
}

TEST(Activation, ForwardAgainstFormulas) {
  Tensor x = rand_tensor({3, 50}, 1, -6, 6);
  EXPECT_LT(max_abs_diff(ops::relu(x), map(x, [](double v) { return v > 0 ? v : 0.0; })), 1e-12);
  EXPECT_LT(max_abs_diff(ops::tanh(x), map(x, [](double v) { return std::tanh(v); })), 1e-12);
  EXPECT_LT(max_abs_diff(ops::sigmoid(x), map(x, [](double v) { return 1 / (1 + std::exp(-v)); })),
            1e-12);
  EXPECT_LT(max_abs_diff(ops::silu(x), map(x, [](double v) { return v / (1 + std::exp(-v)); })),
            1e-12);
  EXPECT_LT(
      max_abs_diff(ops::gelu(x, ops::GeluApprox::Erf),
                   map(x, [](double v) { return 0.5 * v * (1 + std::erf(v / std::sqrt(2.0))); })),
      1e-12);
  EXPECT_LT(max_abs_diff(ops::gelu(x), map(x,
                                           [](double v) {
                                             return 0.5 * v *
                                                    (1 + std::tanh(0.7978845608028654 *
                                                                   (v + 0.044715 * v * v * v)));
                                           })),
            1e-12);
  // The float path (vectorised approximations) within 1e-6 relative + 1e-6 absolute.
  Tensor xf = x.to(DType::F32);
  for (auto f : {+[](const Tensor& t) { return ops::gelu(t); },
                 +[](const Tensor& t) { return ops::silu(t); },
                 +[](const Tensor& t) { return ops::tanh(t); },
                 +[](const Tensor& t) { return ops::sigmoid(t); }})
    EXPECT_LT(max_abs_diff(f(xf), f(x)), 2e-6);
}

TEST(Activation, Gradients) {
  Tensor x = rand_tensor({2, 7}, 2, -3, 3).requires_grad_();
  gradcheck([](const V& v) { return ops::relu(v[0]); }, {x});
  gradcheck([](const V& v) { return ops::gelu(v[0]); }, {x});
  gradcheck([](const V& v) { return ops::gelu(v[0], ops::GeluApprox::Erf); }, {x});
  gradcheck([](const V& v) { return ops::silu(v[0]); }, {x});
  gradcheck([](const V& v) { return ops::tanh(v[0].transpose(0, 1)); }, {x});
  gradcheck([](const V& v) { return ops::sigmoid(v[0]); }, {x});
}

TEST(Softmax, MatchesCompositeAndGradients) {
  Tensor x = rand_tensor({2, 3, 5}, 3, -4, 4).requires_grad_();
  Tensor e = ops::exp(x - ops::max(x, -1, true));
  Tensor ref = e / ops::sum(e, {-1}, true);
  EXPECT_LT(max_abs_diff(ops::softmax(x), ref), 1e-12);
  EXPECT_LT(max_abs_diff(ops::log_softmax(x), ops::log(ref)), 1e-12);
  EXPECT_LT(max_abs_diff(ops::softmax(x, 1), ops::softmax(x.transpose(1, 2)).transpose(1, 2)),
            1e-12);
  // Large logits stay finite.
  Tensor big = Tensor::from_vector(std::vector<float>{1e4f, 0.f, -1e4f}, {1, 3});
  EXPECT_NEAR(ops::softmax(big).to_vector<float>()[0], 1.0f, 1e-6);
  EXPECT_NEAR(ops::log_softmax(big).to_vector<float>()[2], -2e4f, 1.0f);
  gradcheck([](const V& v) { return ops::softmax(v[0]); }, {x});
  gradcheck([](const V& v) { return ops::log_softmax(v[0], 0); }, {x});
  EXPECT_THROW(ops::softmax(x, 3), Error);
}

TEST(Norm, LayerNormAndRmsNorm) {
  Tensor x = rand_tensor({4, 3, 8}, 4, -2, 2).requires_grad_();
  Tensor w = rand_tensor({8}, 5, 0.5, 1.5).requires_grad_(),
         b = rand_tensor({8}, 6).requires_grad_();
  Tensor mu = ops::mean(x, {-1}, true);
  Tensor var = ops::mean((x - mu) * (x - mu), {-1}, true);
  Tensor ref = (x - mu) / ops::sqrt(var + 1e-5) * w + b;
  EXPECT_LT(max_abs_diff(ops::layer_norm(x, w, b), ref), 1e-10);
  Tensor rref = x / ops::sqrt(ops::mean(x * x, {-1}, true) + 1e-6) * w;
  EXPECT_LT(max_abs_diff(ops::rms_norm(x, w), rref), 1e-10);
  gradcheck([](const V& v) { return ops::layer_norm(v[0], v[1], v[2]); }, {x, w, b});
  gradcheck([](const V& v) { return ops::layer_norm(v[0], Tensor(), Tensor()); }, {x});
  gradcheck([](const V& v) { return ops::rms_norm(v[0], v[1]); }, {x, w});
  gradcheck([](const V& v) { return ops::rms_norm(v[0].transpose(0, 1), v[1]); }, {x, w});
  EXPECT_THROW(ops::layer_norm(x, rand_tensor({7}, 1), Tensor()), Error);
  Tensor xf = x.to(DType::F32).detach(), wf = w.to(DType::F32).detach(),
         bf = b.to(DType::F32).detach();
  EXPECT_LT(max_abs_diff(ops::layer_norm(xf, wf, bf), ref), 1e-5);
}

TEST(CrossEntropy, MatchesLogSoftmaxGatherAndIgnoresIndex) {
  Tensor logits = rand_tensor({2, 3, 11}, 7, -3, 3).requires_grad_();
  Tensor targets = Tensor::from_vector(std::vector<int32_t>{1, 10, -100, 0, 5, 5}, {2, 3});
  auto lp = ops::log_softmax(logits).to_vector<double>();
  const auto t = targets.to_vector<int32_t>();
  double s = 0;
  int valid = 0;
  for (int r = 0; r < 6; ++r)
    if (t[r] != -100) s -= lp[r * 11 + t[r]], ++valid;
  EXPECT_NEAR(ops::cross_entropy(logits, targets).item<double>(), s / valid, 1e-12);
  gradcheck([targets](const V& v) { return ops::cross_entropy(v[0], targets); }, {logits});
  EXPECT_THROW(ops::cross_entropy(
                   logits, Tensor::from_vector(std::vector<int32_t>{0, 1, 11, 0, 0, 0}, {2, 3})),
               Error);
  EXPECT_THROW(ops::cross_entropy(logits, Tensor::zeros({6}, DType::F64)), Error);
  EXPECT_TRUE(std::isnan(
      ops::cross_entropy(logits.detach(), Tensor::full({2, 3}, -100, DType::I32)).item<double>()));
  Tensor lf = logits.to(DType::F32).detach();
  EXPECT_NEAR(ops::cross_entropy(lf, targets).item<float>(), s / valid, 1e-5);
}

// softmax(q k^T * scale + bias + mask) v from primitive ops; GQA by repeating kv heads.
static Tensor attention_ref(const Tensor& q, const Tensor& k, const Tensor& v, bool causal,
                            const Tensor& mask, const Tensor& bias) {
  const int64_t B = q.size(0), NH = q.size(1), Tq = q.size(2), NKV = k.size(1), Tk = k.size(2);
  auto rep = [&](const Tensor& t) {
    return t.unsqueeze(2).expand({B, NKV, NH / NKV, Tk, t.size(3)}).reshape({B, NH, Tk, t.size(3)});
  };
  Tensor s = ops::matmul(q, rep(k).transpose(-1, -2)) * (1.0 / std::sqrt(double(q.size(3))));
  if (bias.defined()) s = s + bias;
  std::vector<double> m(B * Tq * Tk, 0.0);
  auto mk = mask.defined() ? mask.to_vector<uint8_t>() : std::vector<uint8_t>();
  for (int64_t b = 0; b < B; ++b)
    for (int64_t i = 0; i < Tq; ++i)
      for (int64_t j = 0; j < Tk; ++j)
        if ((causal && j > i + Tk - Tq) || (mask.defined() && !mk[b * Tk + j]))
          m[(b * Tq + i) * Tk + j] = -1e300;
  s = s + Tensor::from_vector(m, {B, 1, Tq, Tk});
  return ops::matmul(ops::softmax(s), rep(v));
}

static ops::AttentionOptions opts(bool causal, Tensor mask = Tensor(), Tensor bias = Tensor()) {
  ops::AttentionOptions o;
  o.causal = causal;
  o.key_mask = mask;
  o.bias = bias;
  return o;
}

TEST(Attention, MatchesCompositeWithMasksBiasAndGqa) {
  Tensor q = rand_tensor({2, 4, 5, 6}, 8), k = rand_tensor({2, 2, 7, 6}, 9),
         v = rand_tensor({2, 2, 7, 6}, 10);
  Tensor mask =
      Tensor::from_vector(std::vector<uint8_t>{1, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1, 1, 1, 1}, {2, 7});
  Tensor bias = rand_tensor({4, 5, 7}, 11);
  for (bool causal : {false, true}) {
    const ops::AttentionOptions o = opts(causal, mask, bias);
    EXPECT_LT(max_abs_diff(ops::scaled_dot_product_attention(q, k, v, o),
                           attention_ref(q, k, v, causal, mask, bias)),
              1e-12);
  }
  Tensor qs = rand_tensor({1, 2, 4, 4}, 12).requires_grad_(),
         ks = rand_tensor({1, 1, 4, 4}, 13).requires_grad_(),
         vs = rand_tensor({1, 1, 4, 4}, 14).requires_grad_(),
         bs = rand_tensor({2, 4, 4}, 15).requires_grad_();
  gradcheck(
      [](const V& x) { return ops::scaled_dot_product_attention(x[0], x[1], x[2], opts(true)); },
      {qs, ks, vs});
  gradcheck(
      [](const V& x) {
        ops::AttentionOptions o;
        o.bias = x[3];
        return ops::scaled_dot_product_attention(x[0], x[1], x[2], o);
      },
      {qs, ks, vs, bs});
  EXPECT_THROW(ops::scaled_dot_product_attention(q, rand_tensor({2, 3, 7, 6}, 1),
                                                 rand_tensor({2, 3, 7, 6}, 1)),
               Error);
  EXPECT_THROW(
      ops::scaled_dot_product_attention(q, k, v, opts(false, Tensor::ones({2, 6}, DType::U8))),
      Error);
}

// Packed rows: with segments, each segment's outputs and the gradients of a loss over the
// packed row equal those of attention on every segment alone (summed).
TEST(Attention, SegmentsEqualSeparateRuns) {
  const std::vector<int64_t> lens = {5, 4, 3};
  std::vector<int32_t> seg;
  for (int32_t id = 0; id < 3; ++id) seg.insert(seg.end(), lens[id], id);
  const Tensor segments = Tensor::from_vector(seg, {1, 12});
  Tensor q = rand_tensor({1, 4, 12, 6}, 30).requires_grad_(),
         k = rand_tensor({1, 2, 12, 6}, 31).requires_grad_(),
         v = rand_tensor({1, 2, 12, 6}, 32).requires_grad_();
  const Tensor r = rand_tensor({1, 4, 12, 6}, 33);
  for (bool causal : {false, true}) {
    ops::AttentionOptions o = opts(causal);
    o.segments = segments;
    Tensor packed = ops::scaled_dot_product_attention(q, k, v, o);
    ops::sum(packed * r).backward();
    const Tensor gq = q.grad().clone(), gk = k.grad().clone(), gv = v.grad().clone();
    q.zero_grad(), k.zero_grad(), v.zero_grad();
    int64_t t0 = 0;
    Tensor loss = Tensor::zeros({}, DType::F64);
    for (int64_t len : lens) {
      auto part = [&](const Tensor& x) { return x.slice(2, t0, t0 + len); };
      Tensor alone = ops::scaled_dot_product_attention(part(q), part(k), part(v), causal);
      EXPECT_LT(max_abs_diff(part(packed), alone), 1e-14) << "segment at " << t0;
      loss = loss + ops::sum(alone * part(r));
      t0 += len;
    }
    loss.backward();
    EXPECT_LT(max_abs_diff(gq, q.grad()), 1e-14);
    EXPECT_LT(max_abs_diff(gk, k.grad()), 1e-14);
    EXPECT_LT(max_abs_diff(gv, v.grad()), 1e-14);
    q.zero_grad(), k.zero_grad(), v.zero_grad();
  }
  // Finite differences with segments, a key mask and a bias.
  const Tensor seg4 = Tensor::from_vector(std::vector<int32_t>{0, 0, 1, 1, 7, 7, 7, 2}, {2, 4});
  const Tensor mask4 = Tensor::from_vector(std::vector<uint8_t>{1, 1, 1, 1, 1, 0, 1, 1}, {2, 4});
  Tensor qs = rand_tensor({2, 2, 4, 4}, 34).requires_grad_(),
         ks = rand_tensor({2, 1, 4, 4}, 35).requires_grad_(),
         vs = rand_tensor({2, 1, 4, 4}, 36).requires_grad_(),
         bs = rand_tensor({2, 4, 4}, 37).requires_grad_();
  for (bool causal : {false, true})
    gradcheck(
        [&](const V& x) {
          ops::AttentionOptions o = opts(causal, mask4, x[3]);
          o.segments = seg4;
          return ops::scaled_dot_product_attention(x[0], x[1], x[2], o);
        },
        {qs, ks, vs, bs});
  // Errors: wrong dtype, wrong shape, fewer queries than keys.
  ops::AttentionOptions bad;
  bad.segments = seg4.to(DType::F64);
  EXPECT_THROW(ops::scaled_dot_product_attention(qs, ks, vs, bad), Error);
  bad.segments = Tensor::zeros({2, 5}, DType::I32);
  EXPECT_THROW(ops::scaled_dot_product_attention(qs, ks, vs, bad), Error);
  bad.segments = seg4;
  EXPECT_THROW(ops::scaled_dot_product_attention(qs.slice(2, 0, 3), ks, vs, bad), Error);
}

TEST(Embedding, LookupAndScatterAdd) {
  Tensor w = rand_tensor({5, 3}, 16).requires_grad_();
  Tensor ids = Tensor::from_vector(std::vector<int32_t>{4, 0, 4, 2}, {2, 2});
  Tensor e = ops::embedding(ids, w);
  EXPECT_EQ(e.shape(), (Shape{2, 2, 3}));
  EXPECT_EQ(e.select(0, 0).select(0, 0).to_vector<double>(), w.select(0, 4).to_vector<double>());
  gradcheck([ids](const V& v) { return ops::embedding(ids, v[0]); }, {w});
  EXPECT_THROW(ops::embedding(Tensor::from_vector(std::vector<int32_t>{5}, {1}), w), Error);
  EXPECT_THROW(ops::embedding(Tensor::from_vector(std::vector<int32_t>{-1}, {1}), w), Error);
}

TEST(Rope, RotatesPairsAndPreservesRelativeDot) {
  Tensor x = rand_tensor({1, 2, 6, 8}, 17).requires_grad_();
  Tensor y = ops::rope(x);
  // Position 0 is unrotated; norms are preserved.
  EXPECT_LT(max_abs_diff(y.slice(2, 0, 1), x.slice(2, 0, 1)), 1e-15);
  EXPECT_NEAR(ops::sum(y * y).item<double>(), ops::sum(x * x).item<double>(), 1e-10);
  // Direct formula for one element: pair (1, 5) at position 3.
  const auto xv = x.to_vector<double>(), yv = y.to_vector<double>();
  const double a = 3 * std::pow(10000.0, -2.0 / 8);
  EXPECT_NEAR(yv[3 * 8 + 1], xv[3 * 8 + 1] * std::cos(a) - xv[3 * 8 + 5] * std::sin(a), 1e-12);
  // q.k depends only on the offset: rope with pos0 shifts both.
  Tensor q = rand_tensor({1, 1, 1, 8}, 18), k = rand_tensor({1, 1, 1, 8}, 19);
  const double d1 = ops::sum(ops::rope(q, 5) * ops::rope(k, 2)).item<double>();
  const double d2 = ops::sum(ops::rope(q, 13) * ops::rope(k, 10)).item<double>();
  EXPECT_NEAR(d1, d2, 1e-10);
  gradcheck([](const V& v) { return ops::rope(v[0], 3); }, {x});
  EXPECT_THROW(ops::rope(rand_tensor({1, 1, 2, 7}, 1)), Error);
}

// Positions per token (packed rows): pos0 + t gives exactly the pos0 overload; any other
// positions rotate each token as the pos0 overload would at that position.
TEST(Rope, PositionsPerToken) {
  Tensor x = rand_tensor({2, 3, 5, 8}, 23).requires_grad_();
  std::vector<int32_t> shifted(10);
  for (int t = 0; t < 10; ++t) shifted[t] = 4 + t % 5;
  const Tensor pos4 = Tensor::from_vector(shifted, {2, 5});
  EXPECT_EQ(ops::rope(x, pos4).to_vector<double>(), ops::rope(x, 4).to_vector<double>());
  const std::vector<double> inv = ops::rope_inv_freq(8, 500.0);
  EXPECT_EQ(ops::rope(x, pos4, inv).to_vector<double>(), ops::rope(x, 4, inv).to_vector<double>());
  const std::vector<int32_t> pv = {0, 1, 2, 0, 1, 7, 0, 3, 3, 0};  // restarts, repeats, a jump
  const Tensor pos = Tensor::from_vector(pv, {2, 5});
  Tensor y = ops::rope(x, pos);
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t t = 0; t < 5; ++t) {
      const Tensor tok = x.slice(0, b, b + 1).slice(2, t, t + 1);
      EXPECT_LT(
          max_abs_diff(y.slice(0, b, b + 1).slice(2, t, t + 1), ops::rope(tok, pv[b * 5 + t])),
          1e-15)
          << "b " << b << " t " << t;
    }
  gradcheck([pos](const V& v) { return ops::rope(v[0], pos); }, {x});
  gradcheck(
      [pos, inv](const V& v) { return ops::rope(v[0].transpose(1, 2).transpose(1, 2), pos, inv); },
      {x});
  EXPECT_THROW(ops::rope(x, pos.to(DType::F64)), Error);
  EXPECT_THROW(ops::rope(x, Tensor::zeros({2, 4}, DType::I32)), Error);
  EXPECT_THROW(ops::rope(x, pos, std::vector<double>(3, 1.0)), Error);
}

TEST(Dropout, SeededInvertedAndThreadIndependent) {
  Tensor x = Tensor::ones({1000}, DType::F64);
  Generator g1(3), g2(3);
  Tensor a = ops::dropout(x, 0.25, true, g1), b = ops::dropout(x, 0.25, true, g2);
  EXPECT_EQ(a.to_vector<double>(), b.to_vector<double>());
  int zeros = 0;
  for (double v : a.to_vector<double>()) {
    ASSERT_TRUE(v == 0.0 || std::abs(v - 1 / 0.75) < 1e-12);
    zeros += v == 0.0;
  }
  EXPECT_NEAR(zeros / 1000.0, 0.25, 0.05);
  EXPECT_NE(ops::dropout(x, 0.25, true, g1).to_vector<double>(), a.to_vector<double>());
  EXPECT_TRUE(ops::dropout(x, 0.5, false, g1).same(x));
  Tensor xr = rand_tensor({4, 5}, 20).requires_grad_();
  gradcheck(
      [](const V& v) {
        Generator g(9);  // same mask every call
        return ops::dropout(v[0], 0.3, true, g);
      },
      {xr});
  EXPECT_THROW(ops::dropout(x, 1.0, true, g1), Error);
}

TEST(Shape, ConcatAndSplit) {
  Tensor a = rand_tensor({2, 3}, 21).requires_grad_(), b = rand_tensor({2, 1}, 22).requires_grad_();
  Tensor c = ops::concat({a, b}, 1);
  EXPECT_EQ(c.shape(), (Shape{2, 4}));
  EXPECT_EQ(c.slice(1, 3, 4).to_vector<double>(), b.to_vector<double>());
  auto parts = ops::split(c, {1, 3}, -1);
  EXPECT_EQ(parts[1].shape(), (Shape{2, 3}));
  gradcheck([](const V& v) { return ops::concat({v[0], v[1], v[0]}, 1); }, {a, b});
  gradcheck([](const V& v) { return ops::split(v[0], {2, 1}, 1)[0] * 2.0; }, {a});
  EXPECT_THROW(ops::concat({a, rand_tensor({3, 1}, 1)}, 1), Error);
  EXPECT_THROW(ops::split(a, {2, 2}, 1), Error);
}
