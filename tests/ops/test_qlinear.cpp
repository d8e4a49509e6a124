// ops::qlinear (QLoRA's frozen quantised base) against ops::linear on the same weights
// dequantised to f32: forward for Q4_0, Q8_0 and Q4_K with few rows (qmatmul's int8 path, whose
// activations are quantised too: a looser bound) and with >= 64 rows (dequantised sgemm: tight),
// and backward: dx and the bias gradient equal the reference's, the weight gets none.
#include <gtest/gtest.h>

#include <cstdio>
#include <vector>

#include "common/gradcheck.h"
#include "llmkit/core/error.h"
#include "llmkit/kernels/cpu/quant.h"
#include "llmkit/kernels/cpu/quantize.h"
#include "llmkit/ops/ops.h"
#include "llmkit/ops/qlinear.h"

using namespace llmkit;
using kernels::GgmlType;
using llmkit::testing::rand_tensor;
using llmkit::testing::rel_err;

namespace {

// A random weight [out, in] quantised to `t`, and the same blocks dequantised to f32.
struct QWeight {
  std::vector<uint8_t> blocks;
  kernels::QMatrix m;
  Tensor dequantised;
};

QWeight make_weight(GgmlType t, int64_t out, int64_t in, uint64_t seed) {
  QWeight q;
  const Tensor w = rand_tensor({out, in}, seed, -1, 1, DType::F32);
  const size_t rb = kernels::ggml_row_size(t, in);
  q.blocks.resize(rb * out);
  q.dequantised = Tensor::empty({out, in}, DType::F32);
  for (int64_t r = 0; r < out; ++r) {
    kernels::quantize_row(t, w.data<float>() + r * in, q.blocks.data() + r * rb, in);
    kernels::dequantize_row(t, q.blocks.data() + r * rb, q.dequantised.data<float>() + r * in, in);
  }
  q.m = {t, out, in, q.blocks.data()};
  return q;
}

double rel(const Tensor& a, const Tensor& b) {
  return rel_err(a.to_vector<double>(), b.to_vector<double>());
}

void check(GgmlType t, int64_t rows, double fwd_tol) {
  const int64_t in = 256, out = 96;  // 256: a whole Q4_K super-block
  QWeight q = make_weight(t, out, in, 1);
  Tensor x = rand_tensor({rows, in}, 2, -1, 1, DType::F32).requires_grad_();
  Tensor b = rand_tensor({out}, 3, -1, 1, DType::F32).requires_grad_();
  Tensor xr = x.detach().clone().requires_grad_();
  Tensor br = b.detach().clone().requires_grad_();
  const Tensor y = ops::qlinear(x, q.m, b);
  const Tensor yr = ops::linear(xr, q.dequantised, br);
  const double ef = rel(y, yr);
  const Tensor dy = rand_tensor({rows, out}, 4, -1, 1, DType::F32);
  y.backward(dy);
  yr.backward(dy);
  const double ex = rel(x.grad(), xr.grad()), eb = rel(b.grad(), br.grad());
  std::printf("%s M=%lld: forward rel err %.2e, dx %.2e, dbias %.2e\n", kernels::ggml_type_name(t),
              static_cast<long long>(rows), ef, ex, eb);
  EXPECT_LT(ef, fwd_tol);
  EXPECT_LT(ex, 1e-5);
  EXPECT_LT(eb, 1e-6);
}

}  // namespace

// qmatmul below 64 rows quantises the activations (Q8_0 / Q8_K, ~1/127 of each block's
// max): a few 1e-3 of the output's scale (3.6e-3 measured).
TEST(QLinear, Q4_0FewRows) {
  check(GgmlType::Q4_0, 3, 1e-2);
}
TEST(QLinear, Q8_0FewRows) {
  check(GgmlType::Q8_0, 5, 1e-2);
}
TEST(QLinear, Q4_KFewRows) {
  check(GgmlType::Q4_K, 2, 1e-2);
}
TEST(QLinear, Q4_0ManyRows) {
  check(GgmlType::Q4_0, 70, 1e-5);
}
TEST(QLinear, Q8_0ManyRows) {
  check(GgmlType::Q8_0, 64, 1e-5);
}
TEST(QLinear, Q4_KManyRows) {
  check(GgmlType::Q4_K, 130, 1e-5);
}

TEST(QLinear, BatchedInputNoBiasAndTheWeightGetsNoGradient) {
  QWeight q = make_weight(GgmlType::Q8_0, 300, 64, 5);  // > one backward band of 256 rows
  Tensor x = rand_tensor({2, 40, 64}, 6, -1, 1, DType::F32).requires_grad_();
  Tensor xr = x.detach().clone().requires_grad_();
  Tensor wr = q.dequantised;  // the reference's weight, frozen as ours
  const Tensor y = ops::qlinear(x, q.m);
  const Tensor yr = ops::linear(xr, wr);
  EXPECT_EQ(y.shape(), (Shape{2, 40, 300}));
  EXPECT_LT(rel(y, yr), 1e-5);  // 80 rows: the sgemm path
  ops::sum(y * y).backward();
  ops::sum(yr * yr).backward();
  EXPECT_LT(rel(x.grad(), xr.grad()), 1e-5);
  EXPECT_FALSE(wr.grad().defined());
}

TEST(QLinear, NoGraphWithoutGrad) {
  QWeight q = make_weight(GgmlType::Q4_0, 8, 32, 7);
  const Tensor x = rand_tensor({2, 32}, 8, -1, 1, DType::F32);
  EXPECT_FALSE(ops::qlinear(x, q.m).requires_grad());
}

TEST(QLinear, Errors) {
  QWeight q = make_weight(GgmlType::Q4_0, 8, 32, 7);
  EXPECT_THROW(ops::qlinear(rand_tensor({2, 16}, 1, -1, 1, DType::F32), q.m), Error);
  EXPECT_THROW(ops::qlinear(rand_tensor({2, 32}, 1), q.m), Error);  // f64
  EXPECT_THROW(
      ops::qlinear(rand_tensor({2, 32}, 1, -1, 1, DType::F32), q.m, Tensor::zeros({7}, DType::F32)),
      Error);
}
