// Autograd frees memory as early as it may: the forward graph keeps only the tensors an op saved
// for its backward, and backward releases each node's saved tensors and its output's gradient
// right after the node runs. Measured with the caching allocator's in-use bytes around small
// ops written here with record(), and a probe op whose backward samples in-use bytes as it runs.
#include <gtest/gtest.h>

#include <vector>

#include "llmkit/core/allocator.h"
#include "llmkit/core/autograd.h"
#include "llmkit/core/tensor.h"

using namespace llmkit;

namespace {

constexpr int64_t kN = 1 << 16;  // elements per activation: 256 KiB of f32

size_t in_use() {
  return Allocator::instance().stats().in_use_bytes;
}

size_t activation_bytes() {
  return Allocator::size_class(kN * sizeof(float));
}

// y = x + 1: a backward that needs neither input nor output, so it saves nothing.
Tensor add_one(const Tensor& x) {
  Tensor y = Tensor::empty(x.shape());
  const float* px = x.data<float>();
  float* py = y.data<float>();
  for (int64_t i = 0; i < x.numel(); ++i) py[i] = px[i] + 1.0f;
  if (needs_graph({&x}))
    record(y, "add_one", {&x}, [](Node& n, const Tensor& dy) { n.accumulate(0, dy); });
  return y;
}

// y = x^2: saves its input, as most ops save an activation for their backward.
Tensor square(const Tensor& x) {
  Tensor y = Tensor::empty(x.shape());
  const float* px = x.data<float>();
  float* py = y.data<float>();
  for (int64_t i = 0; i < x.numel(); ++i) py[i] = px[i] * px[i];
  if (needs_graph({&x})) {
    const Tensor xs = x.detach();
    record(y, "square", {&x}, [xs](Node& n, const Tensor& dy) {
      Tensor dx = n.grad(0);
      const float *pd = dy.data<float>(), *pxs = xs.data<float>();
      float* pg = dx.data<float>();
      for (int64_t i = 0; i < xs.numel(); ++i) pg[i] += 2.0f * pxs[i] * pd[i];
    });
  }
  return y;
}

// Identity on the same storage; its backward records the bytes in use when it runs.
Tensor probe(const Tensor& x, std::vector<size_t>* samples) {
  Tensor y = x.detach();
  record(y, "probe", {&x}, [samples](Node& n, const Tensor& dy) {
    samples->push_back(in_use());
    n.accumulate(0, dy);
  });
  return y;
}

}  // namespace

TEST(AutogradMemory, ForwardGraphKeepsNoUnsavedActivation) {
  Tensor x = Tensor::full({kN}, 0.5).requires_grad_();
  const size_t base = in_use();
  Tensor y = x;
  for (int i = 0; i < 10; ++i) y = add_one(y);
  // Ten activations were made; no backward needs any of them, so only the last one (held by y)
  // is alive. A graph that held its nodes' inputs would keep all ten.
  EXPECT_EQ(in_use() - base, activation_bytes());
  y.backward(Tensor::ones({kN}));
  EXPECT_EQ(x.grad().to_vector<float>()[0], 1.0f);
}

TEST(AutogradMemory, BackwardFreesEachNodesSavedTensorsAfterItRuns) {
  const int kLayers = 8;
  Tensor x = Tensor::full({kN}, 1.0).requires_grad_();
  const size_t base = in_use();
  std::vector<size_t> samples;  // in use when each probe's backward runs, last layer first
  Tensor y = x;
  for (int i = 0; i < kLayers; ++i) y = probe(square(y), &samples);
  // x and the kLayers - 1 inner activations are saved by the squares; the last one is y's.
  EXPECT_EQ(in_use() - base, (kLayers - 1 + 1) * activation_bytes());
  {
    Tensor seed = Tensor::ones({kN});
    y.backward(seed);
  }
  ASSERT_EQ(samples.size(), static_cast<size_t>(kLayers));
  // When probe i runs, the squares above it have run and freed their saved inputs: each step
  // down the chain has exactly one activation fewer alive (the gradient in flight and the seed
  // are one buffer each throughout).
  for (size_t k = 0; k + 1 < samples.size(); ++k)
    EXPECT_EQ(samples[k] - samples[k + 1], activation_bytes())
        << "between probes " << k << " and " << k + 1 << " from the top";
  // At the first probe, everything above the last square is gone: y's storage, the seed, the
  // gradient in flight, and the kLayers - 1 inputs still saved below.
  EXPECT_EQ(samples.front() - base, (1 + 1 + 1 + kLayers - 1) * activation_bytes());
  // After backward: y's storage and x's gradient, nothing else.
  EXPECT_EQ(in_use() - base, 2 * activation_bytes());
  y = Tensor();
  EXPECT_EQ(in_use() - base, activation_bytes());
  ASSERT_TRUE(x.grad().defined());
  EXPECT_EQ(x.grad().to_vector<float>()[0], 256.0f);  // d(x^(2^8))/dx at x = 1
}
