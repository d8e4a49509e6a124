// End to end: small models learn synthetic tasks with plain SGD (the loss falls below a stated
// bound), training is deterministic for a seed, and a training step in steady state maps no new
// memory (every buffer comes back from the caching allocator).
#include <gtest/gtest.h>

#include "llmkit/core/allocator.h"
#include "llmkit/train/engine_demo.h"

using namespace llmkit;
using namespace llmkit::train;

TEST(EndToEnd, MlpLearnsXor) {
  DemoOptions o;
  o.steps = 200;
  o.batch = 64;
  o.lr = 0.1;
  const DemoResult r = mlp_xor(o);
  // Chance is ln 2 = 0.69; a learned XOR of clusters with noise 0.3 gets far below.
  EXPECT_GT(r.losses.front(), 0.5);
  EXPECT_LT(r.losses.back(), 0.1);
  EXPECT_GT(r.accuracy, 0.97);
}

TEST(EndToEnd, AttentionLearnsRecall) {
  DemoOptions o;
  o.steps = 300;
  const DemoResult r = attention_recall(o);
  // Chance is ln 15 = 2.7 nats; the bound below needs attention to position 0.
  EXPECT_GT(r.losses.front(), 2.0);
  double last = 0;
  for (size_t i = r.losses.size() - 10; i < r.losses.size(); ++i) last += r.losses[i] / 10;
  EXPECT_LT(last, 0.2);
  EXPECT_GT(r.accuracy, 0.95);
}

TEST(EndToEnd, SameSeedSameLossesBitForBit) {
  DemoOptions o;
  o.steps = 20;
  const std::vector<double> a = attention_recall(o).losses;
  ASSERT_EQ(a.size(), 20u);
  EXPECT_EQ(attention_recall(o).losses, a);
  // The seed reaches the run (so the equality above is not the same numbers by construction):
  // another seed gives other losses.
  o.seed = 2;
  EXPECT_NE(attention_recall(o).losses, a);
}

TEST(EndToEnd, SteadyStateStepMapsNoNewMemory) {
  DemoOptions o;
  o.steps = 3;
  attention_recall(o);  // warm the cache with every buffer size a step uses
  const uint64_t before = Allocator::instance().stats().fresh_allocs;
  o.steps = 10;
  attention_recall(o);
  EXPECT_EQ(Allocator::instance().stats().fresh_allocs, before);
}
