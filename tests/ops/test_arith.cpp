// Elementwise, reduction and matrix-product ops: forward against direct loops, backward against
// finite differences (f64), broadcasting and layout edge cases, and the errors.
#include <gtest/gtest.h>

#include "common/gradcheck.h"
#include "llmkit/ops/elementwise.h"
#include "llmkit/ops/matmul.h"
#include "llmkit/ops/reduce.h"

using namespace llmkit;
using llmkit::testing::gradcheck;
using llmkit::testing::max_abs_diff;
using llmkit::testing::rand_tensor;
using V = std::vector<Tensor>;

TEST(Elementwise, BroadcastForward) {
  Tensor a = Tensor::from_vector(std::vector<float>{1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor b = Tensor::from_vector(std::vector<float>{10, 20, 30}, {3});
  EXPECT_EQ((a + b).to_vector<float>(), (std::vector<float>{11, 22, 33, 14, 25, 36}));
  Tensor c = Tensor::from_vector(std::vector<float>{2, 4}, {2, 1});
  EXPECT_EQ((a / c).to_vector<float>(), (std::vector<float>{0.5f, 1, 1.5f, 1, 1.25f, 1.5f}));
  EXPECT_EQ((a - 1.0).to_vector<float>(), (std::vector<float>{0, 1, 2, 3, 4, 5}));
  EXPECT_EQ((2.0 * a.transpose(0, 1)).to_vector<float>(), (std::vector<float>{2, 8, 4, 10, 6, 12}));
  EXPECT_EQ(ops::mul(c, b).shape(), (Shape{2, 3}));  // [2,1] * [3] -> [2,3]
  EXPECT_EQ((Tensor::zeros({0, 3}) + b).numel(), 0);
}

TEST(Elementwise, Errors) {
  Tensor a = Tensor::zeros({2, 3});
  EXPECT_THROW(a + Tensor::zeros({4}), Error);
  EXPECT_THROW(a + Tensor::zeros({2, 3}, DType::F64), Error);
  EXPECT_THROW(Tensor::zeros({2}, DType::I32) + Tensor::zeros({2}, DType::I32), Error);
  try {
    a* Tensor::zeros({2, 2});
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("[2, 3] and [2, 2]"), std::string::npos) << e.what();
  }
}

TEST(Elementwise, Gradients) {
  Tensor a = rand_tensor({2, 3, 4}, 1).requires_grad_();
  Tensor b = rand_tensor({3, 1}, 2, 0.5, 2.0).requires_grad_();
  Tensor c = rand_tensor({4}, 3).requires_grad_();
  gradcheck([](const V& x) { return x[0] + x[1]; }, {a, b});
  gradcheck([](const V& x) { return x[0] - x[1]; }, {a, c});
  gradcheck([](const V& x) { return x[0] * x[1] * x[2]; }, {a, b, c});
  gradcheck([](const V& x) { return x[0] / x[1]; }, {a, b});
  gradcheck([](const V& x) { return x[0].transpose(0, 2) * x[1].unsqueeze(1).unsqueeze(2); },
            {a, c});
  gradcheck([](const V& x) { return ops::exp(x[0]) + ops::log(x[1]) * 3.0 - ops::sqrt(x[1]); },
            {a, b});
  gradcheck([](const V& x) { return ops::pow_scalar(x[0], 3.0) + (-x[0]) / 4.0; }, {b});
  Tensor s = rand_tensor({}, 4).requires_grad_();  // 0-dim scalar broadcast
  gradcheck([](const V& x) { return x[0] * x[1]; }, {a, s});
}

TEST(Reduce, ForwardAndGradients) {
  Tensor x = Tensor::from_vector(std::vector<double>{1, 5, 3, 4, 2, 6}, {2, 3});
  EXPECT_EQ(ops::sum(x, {1}).to_vector<double>(), (std::vector<double>{9, 12}));
  EXPECT_EQ(ops::sum(x, {0}).to_vector<double>(), (std::vector<double>{5, 7, 9}));
  EXPECT_EQ(ops::sum(x, {0}, true).shape(), (Shape{1, 3}));
  EXPECT_EQ(ops::mean(x).item<double>(), 3.5);
  EXPECT_EQ(ops::max(x, 1).to_vector<double>(), (std::vector<double>{5, 6}));
  EXPECT_EQ(ops::max(x, 0, true).to_vector<double>(), (std::vector<double>{4, 5, 6}));
  EXPECT_EQ(ops::sum(Tensor::zeros({0, 3}, DType::F64), {0}).to_vector<double>(),
            (std::vector<double>{0, 0, 0}));
  EXPECT_THROW(ops::sum(x, {2}), Error);
  EXPECT_THROW(ops::mean(Tensor::zeros({0}, DType::F64)), Error);

  Tensor a = rand_tensor({3, 4, 5}, 5).requires_grad_();
  gradcheck([](const V& v) { return ops::sum(v[0], {1}); }, {a});
  gradcheck([](const V& v) { return ops::sum(v[0], {0, 2}, true); }, {a});
  gradcheck([](const V& v) { return ops::mean(v[0], {-1}); }, {a});
  gradcheck([](const V& v) { return ops::mean(v[0].transpose(0, 2)); }, {a});
  gradcheck([](const V& v) { return ops::max(v[0], 1); }, {a});
  gradcheck([](const V& v) { return ops::sum(v[0], {0}); }, {a});  // column kernel
}

TEST(Reduce, FloatSumIsAccurate) {
  Tensor x = Tensor::full({1 << 20}, 0.1);
  EXPECT_NEAR(ops::sum(x).item<float>(), 0.1 * (1 << 20), 1e-2);
}

static Tensor naive_matmul(const Tensor& a, const Tensor& b) {  // [B,M,K] @ [B,K,N], f64
  const int64_t B = a.size(0), M = a.size(1), K = a.size(2), N = b.size(2);
  auto va = a.contiguous().to_vector<double>(), vb = b.contiguous().to_vector<double>();
  std::vector<double> c(B * M * N, 0.0);
  for (int64_t z = 0; z < B; ++z)
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j)
        for (int64_t k = 0; k < K; ++k)
          c[(z * M + i) * N + j] += va[(z * M + i) * K + k] * vb[(z * K + k) * N + j];
  return Tensor::from_vector(c, {B, M, N});
}

TEST(Matmul, LayoutsAgainstNaive) {
  Tensor a = rand_tensor({3, 5, 7}, 6), b = rand_tensor({3, 7, 4}, 7);
  EXPECT_LT(max_abs_diff(ops::matmul(a, b), naive_matmul(a, b)), 1e-12);
  // Transposed views go to BLAS as flags.
  Tensor at = rand_tensor({3, 7, 5}, 8).transpose(1, 2),
         bt = rand_tensor({3, 4, 7}, 9).transpose(1, 2);
  EXPECT_LT(max_abs_diff(ops::matmul(at, bt), naive_matmul(at, bt)), 1e-12);
  // Broadcast batch: [2,1,5,7] @ [3,7,4] -> [2,3,5,4]; and 2-D weights.
  Tensor a4 = rand_tensor({2, 1, 5, 7}, 10);
  Tensor r = ops::matmul(a4, b);
  EXPECT_EQ(r.shape(), (Shape{2, 3, 5, 4}));
  EXPECT_LT(max_abs_diff(r.select(0, 1), naive_matmul(a4.select(0, 1).expand({3, 5, 7}), b)),
            1e-12);
  Tensor w = rand_tensor({7, 4}, 11);
  EXPECT_LT(max_abs_diff(ops::matmul(a, w), naive_matmul(a, w.unsqueeze(0).expand({3, 7, 4}))),
            1e-12);
  // Float path and vectors.
  Tensor af = a.to(DType::F32), bf = b.to(DType::F32);
  EXPECT_LT(max_abs_diff(ops::matmul(af, bf), naive_matmul(a, b)), 1e-5);
  EXPECT_EQ(ops::matmul(rand_tensor({7}, 1), w).shape(), (Shape{4}));
  EXPECT_EQ(ops::matmul(w.transpose(0, 1), rand_tensor({7}, 1)).shape(), (Shape{4}));
  EXPECT_EQ(ops::matmul(Tensor::zeros({0, 3}), Tensor::zeros({3, 2})).shape(), (Shape{0, 2}));
  EXPECT_EQ(ops::matmul(Tensor::ones({2, 0}), Tensor::ones({0, 3})).to_vector<float>(),
            std::vector<float>(6, 0.0f));
  EXPECT_THROW(ops::matmul(a, a), Error);
  EXPECT_THROW(ops::matmul(rand_tensor({2, 5, 7}, 1), b), Error);
}

TEST(Matmul, Gradients) {
  Tensor a = rand_tensor({2, 3, 4}, 1).requires_grad_(),
         b = rand_tensor({2, 4, 5}, 2).requires_grad_();
  Tensor w = rand_tensor({4, 5}, 3).requires_grad_(),
         c = rand_tensor({1, 4, 5}, 4).requires_grad_();
  gradcheck([](const V& x) { return ops::matmul(x[0], x[1]); }, {a, b});
  gradcheck([](const V& x) { return ops::matmul(x[0], x[1]); }, {a, w});
  gradcheck([](const V& x) { return ops::matmul(x[0], x[1]); }, {a, c});
  gradcheck([](const V& x) { return ops::matmul(x[1].transpose(-1, -2), x[0].transpose(-1, -2)); },
            {a, b});
  Tensor v = rand_tensor({4}, 5).requires_grad_();
  gradcheck([](const V& x) { return ops::matmul(x[0], x[1]); }, {v, w});
}

TEST(Linear, ForwardAndGradients) {
  Tensor x = rand_tensor({2, 3, 4}, 1).requires_grad_();
  Tensor w = rand_tensor({5, 4}, 2).requires_grad_(), b = rand_tensor({5}, 3).requires_grad_();
  Tensor ref = ops::matmul(x, w.transpose(0, 1)) + b;
  EXPECT_LT(max_abs_diff(ops::linear(x, w, b), ref), 1e-12);
  gradcheck([](const V& v) { return ops::linear(v[0], v[1], v[2]); }, {x, w, b});
  gradcheck([](const V& v) { return ops::linear(v[0], v[1]); }, {x, w});
  gradcheck([](const V& v) { return ops::linear(v[0].transpose(0, 1), v[1]); }, {x, w});
  EXPECT_THROW(ops::linear(x, rand_tensor({5, 3}, 1)), Error);
  EXPECT_THROW(ops::linear(x, w, rand_tensor({4}, 1)), Error);
}
