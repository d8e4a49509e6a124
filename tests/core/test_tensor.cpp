// Tensor structure, views and their gradients, conversions, the allocator and the RNG.
#include <gtest/gtest.h>

#include <cmath>

#include "common/gradcheck.h"
#include "llmkit/core/allocator.h"
#include "llmkit/core/autograd.h"
#include "llmkit/core/parallel.h"
#include "llmkit/core/random.h"
#include "llmkit/core/tensor.h"

using namespace llmkit;
using llmkit::testing::gradcheck;
using llmkit::testing::rand_tensor;

static Tensor iota(const Shape& s) {
  std::vector<float> v(shape_numel(s));
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(i);
  return Tensor::from_vector(v, s);
}

TEST(Tensor, FactoriesAndStructure) {
  Tensor t = Tensor::zeros({2, 3});
  EXPECT_EQ(t.numel(), 6);
  EXPECT_EQ(t.strides(), (Shape{3, 1}));
  EXPECT_TRUE(t.is_contiguous());
  EXPECT_EQ(t.str(), "f32[2, 3]");
  EXPECT_EQ(Tensor::full({2}, 2.5).to_vector<float>(), (std::vector<float>{2.5f, 2.5f}));
  EXPECT_EQ(Tensor::arange(4, DType::I32).to_vector<int32_t>(), (std::vector<int32_t>{0, 1, 2, 3}));
  EXPECT_EQ(Tensor::empty({0, 5}).numel(), 0);
  EXPECT_THROW(Tensor::empty({-1}), Error);
  EXPECT_THROW(Tensor::from_vector(std::vector<float>{1, 2}, {3}), Error);
  EXPECT_THROW(t.data<double>(), Error);
  EXPECT_THROW(t.size(2), Error);
  EXPECT_EQ(t.size(-1), 3);
}

// Sizes that overflow 64 bits raise llmkit::Error naming the shape; they never wrap into a small
// allocation or abort.
TEST(Tensor, OverflowingShapesRaiseErrorNamingTheShape) {
  const int64_t big = int64_t{1} << 40;
  auto expect_error = [](auto&& make, const std::string& needle) {
    try {
      make();
      ADD_FAILURE() << "no error; expected one naming " << needle;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  const std::string bb = "[1099511627776, 1099511627776]";
  expect_error([&] { Tensor::zeros({big, big}); }, "shape " + bb);
  expect_error([&] { Tensor::empty({big, big, 0}); }, "[1099511627776, 1099511627776, 0]");
  expect_error([&] { Tensor::empty({0, big, big}); }, "[0, 1099511627776, 1099511627776]");
  // The element count fits, the byte count does not.
  expect_error([&] { Tensor::empty({int64_t{1} << 62}, DType::F64); }, "[4611686018427387904]");
  expect_error([&] { (void)shape_numel(Shape{big, big}); }, bb);
  Tensor t = Tensor::zeros({4});
  expect_error([&] { t.reshape({-1, big, big}); }, "reshape");
  expect_error([&] { Tensor::zeros({1, 1}).expand({big, big}); }, "expand: shape " + bb);
  expect_error([&] { Tensor::from_blob(t.storage(), {4}, DType::F32, int64_t{1} << 62); },
               "from_blob");
  expect_error([&] { Tensor::from_blob(t.storage(), {big, big}, DType::F32); }, bb);
  expect_error([&] { Tensor::arange(int64_t{1} << 58); }, "cannot allocate");
}

TEST(Tensor, TransposeSliceViewsShareStorage) {
  Tensor t = iota({2, 3});
  Tensor tt = t.transpose(0, 1);
  EXPECT_FALSE(tt.is_contiguous());
  EXPECT_EQ(tt.to_vector<float>(), (std::vector<float>{0, 3, 1, 4, 2, 5}));
  Tensor s = t.slice(1, 1, 3);
  EXPECT_EQ(s.to_vector<float>(), (std::vector<float>{1, 2, 4, 5}));
  EXPECT_EQ(t.slice(1, -2, 100).shape(), (Shape{2, 2}));
  EXPECT_EQ(t.select(0, 1).to_vector<float>(), (std::vector<float>{3, 4, 5}));
  EXPECT_EQ(t.narrow(1, 2, 1).to_vector<float>(), (std::vector<float>{2, 5}));
  EXPECT_THROW(t.narrow(1, 2, 2), Error);
  s.fill_(9);  // writes through to t
  EXPECT_EQ(t.to_vector<float>(), (std::vector<float>{0, 9, 9, 3, 9, 9}));
  Tensor c = tt.contiguous();
  EXPECT_TRUE(c.is_contiguous());
  EXPECT_EQ(c.to_vector<float>(), tt.to_vector<float>());
}

TEST(Tensor, ReshapeViewsOrCopies) {
  Tensor t = iota({2, 3, 4});
  Tensor r = t.reshape({6, -1});
  EXPECT_EQ(r.shape(), (Shape{6, 4}));
  EXPECT_EQ(r.storage(), t.storage());
  Tensor p = t.permute({2, 0, 1});
  Tensor rp = p.reshape({4, 6});  // not viewable: a copy in logical order
  EXPECT_EQ(rp.to_vector<float>(), p.contiguous().to_vector<float>());
  EXPECT_EQ(t.flatten(1).shape(), (Shape{2, 12}));
  EXPECT_EQ(t.unsqueeze(1).shape(), (Shape{2, 1, 3, 4}));
  EXPECT_EQ(t.unsqueeze(-1).shape(), (Shape{2, 3, 4, 1}));
  EXPECT_EQ(t.unsqueeze(0).squeeze(0).shape(), t.shape());
  EXPECT_THROW(t.reshape({5, -1}), Error);
  EXPECT_THROW(t.reshape({-1, -1}), Error);
  EXPECT_THROW(t.squeeze(0), Error);
  EXPECT_THROW(t.permute({0, 0, 1}), Error);
  Tensor e = Tensor::from_vector(std::vector<float>{1, 2}, {2, 1}).expand({2, 3});
  EXPECT_EQ(e.to_vector<float>(), (std::vector<float>{1, 1, 1, 2, 2, 2}));
  EXPECT_THROW(iota({2, 3}).expand({3, 3}), Error);
}

TEST(Tensor, ViewGradients) {
  Tensor x = rand_tensor({2, 3, 4}, 1).requires_grad_();
  gradcheck(
      [](const std::vector<Tensor>& in) {
        return in[0].permute({2, 0, 1}).reshape({4, 6});
      },
      {x});
  gradcheck([](const std::vector<Tensor>& in) { return in[0].slice(2, 1, 3).transpose(0, 1); },
            {x});
  gradcheck([](const std::vector<Tensor>& in) { return in[0].select(1, 2).contiguous(); }, {x});
  Tensor b = rand_tensor({3, 1}, 2).requires_grad_();
  gradcheck([](const std::vector<Tensor>& in) { return in[0].expand({2, 3, 5}); }, {b});
  gradcheck([](const std::vector<Tensor>& in) { return in[0].to(DType::F32).to(DType::F64); }, {x},
            1e-3, 1e-4, 1e-4);
}

TEST(Tensor, Bf16AndF16Conversions) {
  std::vector<float> v = {0.0f, 1.0f, -2.5f, 3.14159f, 65504.0f, 1e-7f, -0.0f, 1e30f};
  Tensor f = Tensor::from_vector(v, {8});
  auto back_bf = f.to(DType::BF16).to(DType::F32).to_vector<float>();
  auto back_h = f.to(DType::F16).to(DType::F32).to_vector<float>();
  for (size_t i = 0; i < v.size(); ++i) {
    EXPECT_NEAR(back_bf[i], v[i], std::abs(v[i]) * 1.0 / 256) << i;
    if (std::abs(v[i]) <= 65504.0f && std::abs(v[i]) > 1e-4f) {
      EXPECT_NEAR(back_h[i], v[i], std::abs(v[i]) / 2048) << i;
    }
  }
  EXPECT_EQ(back_h[7], INFINITY);        // overflow
  EXPECT_NEAR(back_h[5], 1e-7f, 6e-8f);  // subnormal half
  EXPECT_EQ(float_to_bf16(1.0f).bits, 0x3f80);
  EXPECT_EQ(float_to_f16(1.0f).bits, 0x3c00);
  EXPECT_EQ(float_to_f16(-2.0f).bits, 0xc000);
  EXPECT_EQ(f16_to_float(f16{0x0001}), std::ldexp(1.0f, -24));
  EXPECT_TRUE(std::isnan(bf16_to_float(float_to_bf16(NAN))));
  EXPECT_TRUE(std::isnan(f16_to_float(float_to_f16(NAN))));
  // Round to nearest even: 1 + 2^-8 is halfway between two bf16 values; ties go to 1.0.
  EXPECT_EQ(float_to_bf16(1.0f + std::ldexp(1.0f, -8)).bits, 0x3f80);
}

TEST(Autograd, AccumulatesAndFreesGraph) {
  Tensor x = Tensor::from_vector(std::vector<double>{1, 2, 3}, {3}).requires_grad_();
  Tensor y = x.reshape({3, 1}).expand({3, 2});  // each x used twice
  y.backward(Tensor::ones({3, 2}, DType::F64));
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{2, 2, 2}));
  EXPECT_THROW(y.backward(Tensor::ones({3, 2}, DType::F64)), Error);  // graph freed
  Tensor y2 = x.reshape({3, 1}).expand({3, 2});
  y2.backward(Tensor::ones({3, 2}, DType::F64));  // gradients accumulate across backward calls
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{4, 4, 4}));
  x.zero_grad();
  EXPECT_FALSE(x.grad().defined());
  EXPECT_THROW(y2.detach().backward(), Error);  // needs no grad
  EXPECT_THROW(Tensor::zeros({2}, DType::I32).requires_grad_(), Error);
}

TEST(Autograd, NoGradGuardRecordsNothing) {
  Tensor x = rand_tensor({4}, 3).requires_grad_();
  {
    NoGradGuard ng;
    Tensor y = x.reshape({2, 2});
    EXPECT_FALSE(y.requires_grad());
    EXPECT_FALSE(grad_enabled());
  }
  EXPECT_TRUE(grad_enabled());
  EXPECT_TRUE(x.reshape({2, 2}).requires_grad());
  EXPECT_FALSE(rand_tensor({4}, 3).reshape({2, 2}).requires_grad());
}

TEST(Allocator, ReusesBuffersOfTheSameSize) {
  auto& a = Allocator::instance();
  { Tensor warm = Tensor::empty({1000, 37}); }
  const auto before = a.stats();
  for (int i = 0; i < 10; ++i) Tensor t = Tensor::empty({1000, 37});
  const auto after = a.stats();
  EXPECT_EQ(after.fresh_allocs, before.fresh_allocs);
  EXPECT_GE(after.reuses, before.reuses + 10);
  EXPECT_EQ(Allocator::size_class(1), 64u);
  EXPECT_EQ(Allocator::size_class(4096), 4096u);
  EXPECT_EQ(Allocator::size_class(4097), 4608u);
  for (size_t n : {5000u, 100000u, 12345678u}) {
    EXPECT_GE(Allocator::size_class(n), n);
    EXPECT_LE(Allocator::size_class(n), n + n / 8);
  }
}

TEST(Random, StreamsIndependentOfThreadCount) {
  const int saved = num_threads();
  Tensor a = Tensor::empty({100003}), b = Tensor::empty({100003});
  set_num_threads(1);
  Generator g1(42);
  g1.normal_(a);
  set_num_threads(2);
  Generator g2(42);
  g2.normal_(b);
  set_num_threads(saved);
  EXPECT_EQ(a.to_vector<float>(), b.to_vector<float>());
  // Successive draws differ; (seed, offset) restores the stream.
  Tensor c = Tensor::empty({8}), d = Tensor::empty({8});
  Generator g3(7);
  g3.uniform_(c);
  const uint64_t off = g3.offset();
  g3.uniform_(d);
  EXPECT_NE(c.to_vector<float>(), d.to_vector<float>());
  Generator g4(0);
  g4.set_state(7, off);
  Tensor e = Tensor::empty({8});
  g4.uniform_(e);
  EXPECT_EQ(d.to_vector<float>(), e.to_vector<float>());
}

TEST(Random, NormalAndUniformMoments) {
  Tensor t = Tensor::empty({200000}, DType::F64);
  Generator g(1);
  g.normal_(t, 1.0, 2.0);
  double m = 0, v = 0;
  for (double x : t.to_vector<double>()) m += x;
  m /= t.numel();
  for (double x : t.to_vector<double>()) v += (x - m) * (x - m);
  v /= t.numel();
  EXPECT_NEAR(m, 1.0, 0.02);
  EXPECT_NEAR(std::sqrt(v), 2.0, 0.02);
  g.uniform_(t, -1, 3);
  for (double x : t.to_vector<double>()) ASSERT_TRUE(x >= -1 && x < 3);
  for (int i = 0; i < 1000; ++i) ASSERT_LT(g.randint(7), 7u);
}

TEST(Random, PhiloxKnownAnswer) {
  // Known-answer vector from the Random123 distribution (kat_vectors: philox4x32_10, all zeros).
  const auto r = philox4x32(0, 0, 0);
  EXPECT_EQ(r[0], 0x6627e8d5u);
  EXPECT_EQ(r[1], 0xe169c58du);
  EXPECT_EQ(r[2], 0xbc57ac4cu);
  EXPECT_EQ(r[3], 0x9b00dbd8u);
}
