// QLoRA's base in nn::Linear: quantize_weight keeps ggml blocks and frees the f32 weight (the
// stored bytes shrink ~7x for Q4_0, ~3.8x for Q8_0), forward follows the dequantised weight,
// the base counts in PEFT's parameter line but gets no gradient, merging into it is an Error,
// and a LoRA adapter over a quantised base learns a tiny regression (the loss falls).
#include <gtest/gtest.h>

#include <cstdio>
#include <memory>

#include "common/gradcheck.h"
#include "llmkit/core/error.h"
#include "llmkit/nn/layers.h"
#include "llmkit/nn/lora.h"

using namespace llmkit;
using llmkit::testing::rand_tensor;
using llmkit::testing::rel_err;

namespace {

std::shared_ptr<nn::Linear> random_linear(int64_t in, int64_t out, uint64_t seed) {
  auto l = std::make_shared<nn::Linear>(in, out, true);
  Generator g(seed);
  NoGradGuard ng;
  g.uniform_(l->weight, -0.5, 0.5);
  g.uniform_(l->bias, -0.5, 0.5);
  return l;
}

struct Wrap : nn::Module {
  std::shared_ptr<nn::Linear> fc;
  explicit Wrap(std::shared_ptr<nn::Linear> l) { fc = register_module("fc", l); }
};

}  // namespace

TEST(QLora, QuantizeFreesTheWeightAndShrinksIt) {
  for (const char* type : {"q4_0", "q8_0", "Q4_K"}) {
    auto l = random_linear(256, 64, 1);
    const size_t f32 = l->weight_bytes();
    EXPECT_EQ(f32, 256u * 64u * 4u);
    NoGradGuard ng;
    const Tensor x = rand_tensor({70, 256}, 2, -1, 1, DType::F32);  // >= 64 rows: sgemm path
    const Tensor y0 = l->forward(x);
    l->quantize_weight(type);
    EXPECT_TRUE(l->weight_quantised());
    EXPECT_FALSE(l->weight.defined());
    EXPECT_EQ(l->dtype(), DType::F32);
    for (auto& [n, p] : l->named_parameters()) EXPECT_NE(n, "weight");
    const double ratio = double(f32) / double(l->weight_bytes());
    std::printf("%s: %zu -> %zu bytes (%.2fx)\n", type, f32, l->weight_bytes(), ratio);
    EXPECT_NEAR(ratio, std::string(type) == "q8_0" ? 32.0 / 8.5 : 32.0 / 4.5, 0.01) << type;
    // The quantisation error of the weight only: ~8% of the output's scale for 4 bits (a step of
    // 1/8 of each block's largest weight), < 1% for 8.
    const double e = rel_err(l->forward(x).to_vector<double>(), y0.to_vector<double>());
    EXPECT_LT(e, std::string(type) == "q8_0" ? 1e-2 : 0.12) << type;
    EXPECT_THROW(l->quantize_weight("q8_0"), Error);
  }
}

TEST(QLora, QuantizeErrors) {
  EXPECT_THROW(random_linear(48, 4, 1)->quantize_weight("q4_0"), Error);  // 48 % 32 != 0
  EXPECT_THROW(random_linear(256, 4, 1)->quantize_weight("q3_x"), Error);
  nn::Linear f64(32, 4, true, DType::F64);
  EXPECT_THROW(f64.quantize_weight("q8_0"), Error);
}

TEST(QLora, CountedButNotTrainedAndNoMerge) {
  Wrap net(random_linear(64, 32, 3));
  net.fc->quantize_weight("q4_0");
  nn::LoraConfig c;
  c.r = 4;
  c.target_modules = {"fc"};
  nn::apply_lora(net, c, 5);
  nn::mark_only_lora_trainable(net, {});
  // all: 64*32 (quantised base) + 32 (bias) + 4*64 + 32*4; trainable: the adapter.
  const nn::ParamCount pc = nn::count_parameters(net);
  EXPECT_EQ(pc.all, 64 * 32 + 32 + 4 * 64 + 32 * 4);
  EXPECT_EQ(pc.trainable, 4 * 64 + 32 * 4);
  EXPECT_THROW(nn::merge_lora(net), Error);
  EXPECT_THROW(net.fc->merge_lora(), Error);
  EXPECT_THROW(nn::check_plain_linears(net, "engine"), Error);
  net.fc->remove_lora();
  EXPECT_THROW(nn::check_plain_linears(net, "engine"), Error);  // the quantised base alone
}

// y = x W^T + b on a quantised W, targets from W + a rank-2 change: the adapter alone (A and B;
// plain SGD) must bring the mean squared error down 10x (to near the floor the base's
// quantisation noise sets, which no rank-4 change removes), and the base's bytes stay unchanged.
TEST(QLora, AdapterOverQuantisedBaseLearns) {
  const int64_t in = 64, out = 16, N = 96;
  Wrap net(random_linear(in, out, 7));
  const Tensor x = rand_tensor({N, in}, 8, -1, 1, DType::F32);
  Tensor target;
  {
    NoGradGuard ng;
    const Tensor u = rand_tensor({out, 2}, 9, -1, 1, DType::F32);
    const Tensor v = rand_tensor({2, in}, 10, -1, 1, DType::F32);
    target = ops::linear(x, net.fc->weight + ops::matmul(u, v), net.fc->bias);
  }
  net.fc->quantize_weight("q4_0");
  const size_t bytes = net.fc->weight_bytes();
  nn::LoraConfig c;
  c.r = 4;
  c.alpha = 8;
  c.target_modules = {"fc"};
  nn::apply_lora(net, c, 11);
  nn::mark_only_lora_trainable(net, {});
  auto mse = [&] {
    const Tensor d = net.fc->forward(x) - target;
    return ops::mean(d * d);
  };
  const double first = mse().item<double>();
  double last = first;
  for (int step = 0; step < 300; ++step) {
    Tensor loss = mse();
    for (auto& [n, p] : net.named_parameters()) p.zero_grad();
    loss.backward();
    NoGradGuard ng;
    for (auto& [n, p] : net.named_parameters()) {
      if (!p.requires_grad()) {
        EXPECT_FALSE(p.grad().defined()) << n;
        continue;
      }
      p.copy_(p - p.grad() * 0.05);
    }
    last = loss.item<double>();
  }
  std::printf("QLoRA regression: mse %.4f -> %.4f\n", first, last);
  EXPECT_TRUE(std::isfinite(last));
  EXPECT_LT(last, 0.1 * first);
  EXPECT_EQ(net.fc->weight_bytes(), bytes);
}
