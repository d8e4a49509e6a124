// GPT::forward_packed (SFT packing): for every positional encoding (learned, sinusoidal, rope in
// the llama layout with grouped-query heads, alibi), a packed row's logits on each example equal
// forward() on that example alone, the gradient of a loss over the packed rows equals the sum of
// the separate losses' gradients, and one segment per row is plain forward(). GPT::forward_rows
// (left-padded rows decoded together with KV caches) gives each row the logits of forward() on
// that row alone, at the prefill and at every following step.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <memory>

#include "common/gradcheck.h"
#include "llmkit/models/gpt.h"
#include "llmkit/ops/ops.h"

using namespace llmkit;
using models::GPT;
using models::GPTConfig;

namespace {

GPTConfig packed_config(const std::string& name) {
  GPTConfig c;
  c.n_layer = 2;
  c.n_head = 4;
  c.n_embd = 16;
  c.block_size = 32;
  c.vocab_size = 23;
  if (name == "llama") {
    c.arch = "llama";
    c.pos_encoding = "rope";
    c.norm = "rmsnorm";
    c.activation = "swiglu";
    c.n_kv_head = 2;
    c.bias = false;
    c.tie_embeddings = false;
  } else {
    c.pos_encoding = name;  // learned | sinusoidal | alibi, GPT-2 layout
  }
  return c;
}

// Weights larger than GPT-2's init, so attention is far from uniform and every path matters.
std::unique_ptr<GPT> make_model(const GPTConfig& c, DType dt) {
  auto m = std::make_unique<GPT>(c, 7, dt);
  NoGradGuard ng;
  Generator g(11);
  for (auto& [n, p] : m->named_parameters()) {
    const bool norm = n.find("ln_") != std::string::npos || n.find("norm") != std::string::npos;
    g.normal_(p, norm ? 1.0 : 0.0, 0.3);
  }
  return m;
}

void zero_grads(const GPT& m) {
  for (const Tensor& t : m.parameters()) t.zero_grad();
}

// One example of a packed row: its tokens and where it sits.
struct Example {
  std::vector<int32_t> ids;
  int64_t row, start;
};

// Two rows of 20 tokens: examples of lengths 5, 7, 4 then 4 padding tokens (segment -1), and the
// same three lengths in another order with other segment ids.
struct Packed {
  Tensor ids, segments;
  std::vector<Example> examples;
};

Packed make_packed() {
  const int64_t T = 20;
  const std::vector<std::vector<int64_t>> lens = {{5, 7, 4}, {7, 4, 5}};
  const std::vector<std::vector<int32_t>> seg_ids = {{0, 1, 2}, {5, 3, 9}};
  std::vector<int32_t> ids(2 * T), seg(2 * T, -1);
  Packed p;
  Generator g(3);
  for (int64_t b = 0; b < 2; ++b) {
    int64_t t = 0;
    for (size_t e = 0; e < 3; ++e) {
      Example ex{{}, b, t};
      for (int64_t i = 0; i < lens[b][e]; ++i, ++t) {
        ids[b * T + t] = static_cast<int32_t>(g.next_u64() % 23);
        seg[b * T + t] = seg_ids[b][e];
        ex.ids.push_back(ids[b * T + t]);
      }
      p.examples.push_back(ex);
    }
    for (; t < T; ++t) ids[b * T + t] = 1;  // padding
  }
  p.ids = Tensor::from_vector(ids, {2, T});
  p.segments = Tensor::from_vector(seg, {2, T});
  return p;
}

Tensor example_ids(const Example& ex) {
  return Tensor::from_vector(ex.ids, {1, static_cast<int64_t>(ex.ids.size())});
}
// The logits of ex inside packed logits [B, T, V] -> [1, len, V].
Tensor example_part(const Tensor& logits, const Example& ex) {
  const int64_t len = static_cast<int64_t>(ex.ids.size());
  return logits.slice(0, ex.row, ex.row + 1).slice(1, ex.start, ex.start + len);
}

// max |a - b| / max |b|
double rel_err(const Tensor& a, const Tensor& b) {
  const auto bv = b.to_vector<double>();
  double norm = 0;
  for (double v : bv) norm = std::max(norm, std::abs(v));
  return llmkit::testing::max_abs_diff(a, b) / norm;
}

class GPTPacked : public ::testing::TestWithParam<std::string> {};

TEST_P(GPTPacked, EachExampleMatchesForwardAlone) {
  const GPTConfig c = packed_config(GetParam());
  const auto model = make_model(c, DType::F32);
  GPT& m = *model;
  const Packed p = make_packed();
  NoGradGuard ng;
  const Tensor logits = m.forward_packed(p.ids, p.segments);
  EXPECT_EQ(logits.shape(), (Shape{2, 20, 23}));
  for (const Example& ex : p.examples) {
    const double e = rel_err(example_part(logits, ex), m.forward(example_ids(ex)));
    EXPECT_LT(e, 1e-5) << "example at row " << ex.row << " position " << ex.start;
  }
}

TEST_P(GPTPacked, GradientIsTheSumOfSeparateGradients) {
  const GPTConfig c = packed_config(GetParam());
  const auto model = make_model(c, DType::F64);
  GPT& m = *model;
  const Packed p = make_packed();
  // L = sum(logits * R) over the examples' positions; R is 0 on padding.
  const Tensor r = llmkit::testing::rand_tensor({2, 20, 23}, 13);
  Tensor rmask = Tensor::zeros({2, 20, 1}, DType::F64);
  for (const Example& ex : p.examples)
    rmask.slice(0, ex.row, ex.row + 1)
        .slice(1, ex.start, ex.start + static_cast<int64_t>(ex.ids.size()))
        .fill_(1.0);
  const Tensor rp = r * rmask;
  zero_grads(m);
  ops::sum(m.forward_packed(p.ids, p.segments) * rp).backward();
  std::map<std::string, Tensor> packed_grads;
  for (auto& [n, t] : m.named_parameters()) packed_grads[n] = t.grad().clone();
  zero_grads(m);
  Tensor loss = Tensor::zeros({}, DType::F64);
  for (const Example& ex : p.examples)
    loss = loss + ops::sum(m.forward(example_ids(ex)) * example_part(rp, ex));
  loss.backward();
  int checked = 0;
  for (auto& [n, t] : m.named_parameters()) {
    ASSERT_TRUE(t.grad().defined()) << n;
    EXPECT_LT(rel_err(packed_grads.at(n), t.grad()), 1e-10) << n;
    ++checked;
  }
  EXPECT_GT(checked, 10);
}

TEST_P(GPTPacked, OneSegmentPerRowIsForward) {
  const GPTConfig c = packed_config(GetParam());
  const auto model = make_model(c, DType::F32);
  GPT& m = *model;
  const Packed p = make_packed();
  NoGradGuard ng;
  const Tensor full = m.forward(p.ids);
  EXPECT_LT(rel_err(m.forward_packed(p.ids, Tensor::zeros({2, 20}, DType::I32)), full), 1e-6);
}

TEST_P(GPTPacked, LeftPaddedRowsDecodeAsEachRowAlone) {
  const GPTConfig c = packed_config(GetParam());
  const auto model = make_model(c, DType::F32);
  GPT& m = *model;
  NoGradGuard ng;
  // Three prompts of 6, 2 and 4 tokens, then three steps that append one token to each row.
  Generator g(5);
  std::vector<std::vector<int32_t>> rows = {{}, {}, {}};
  const std::vector<int64_t> lens = {6, 2, 4};
  for (size_t i = 0; i < 3; ++i)
    for (int64_t t = 0; t < lens[i]; ++t)
      rows[i].push_back(static_cast<int32_t>(g.next_u64() % 23));
  const std::vector<int64_t> pad = {0, 4, 2};
  std::vector<int32_t> first(3 * 6, 7);  // padding id 7: never seen
  for (size_t i = 0; i < 3; ++i)
    std::copy(rows[i].begin(), rows[i].end(), first.begin() + i * 6 + pad[i]);
  auto caches = m.make_caches(3, 9);
  Tensor logits = m.forward_rows(Tensor::from_vector(first, {3, 6}), caches, pad);
  for (int step = 0; step <= 3; ++step) {
    std::vector<int32_t> next(3);
    for (size_t i = 0; i < 3; ++i) {
      const auto n = static_cast<int64_t>(rows[i].size());
      const Tensor alone = m.forward(Tensor::from_vector(rows[i], {1, n})).slice(1, n - 1, n);
      const Tensor got = logits.slice(0, static_cast<int64_t>(i), static_cast<int64_t>(i) + 1);
      EXPECT_LT(rel_err(got.reshape({1, 1, -1}), alone), 1e-5)
          << "row " << i << " at step " << step;
      next[i] = static_cast<int32_t>(g.next_u64() % 23);
      rows[i].push_back(next[i]);
    }
    if (step < 3) logits = m.forward_rows(Tensor::from_vector(next, {3, 1}), caches, pad);
  }
}

INSTANTIATE_TEST_SUITE_P(PosEncodings, GPTPacked,
                         ::testing::Values("learned", "sinusoidal", "llama", "alibi"));

TEST(GPTPacked, RejectsBadSegments) {
  GPT m(packed_config("learned"));
  const Tensor ids = Tensor::zeros({1, 6}, DType::I32);
  // Example 0 resumes after example 1: not contiguous.
  EXPECT_THROW(
      m.forward_packed(ids, Tensor::from_vector(std::vector<int32_t>{0, 0, 1, 1, 0, 0}, {1, 6})),
      Error);
  // Padding may sit anywhere; other ids must not repeat.
  EXPECT_NO_THROW(m.forward_packed(
      ids, Tensor::from_vector(std::vector<int32_t>{0, -1, -1, 1, 1, -1}, {1, 6})));
  EXPECT_THROW(m.forward_packed(ids, Tensor::zeros({1, 5}, DType::I32)), Error);
  EXPECT_THROW(m.forward_packed(ids, Tensor::zeros({1, 6}, DType::F32)), Error);
}

TEST(GPTPacked, ForwardRowsRejectsBadPadding) {
  GPT m(packed_config("learned"));
  NoGradGuard ng;
  auto caches = m.make_caches(2, 8);
  const Tensor ids = Tensor::zeros({2, 3}, DType::I32);
  const std::vector<int64_t> all_padding = {0, 3}, one = {0};
  EXPECT_THROW(m.forward_rows(ids, caches, all_padding), Error);  // row 1 has no real token
  EXPECT_THROW(m.forward_rows(ids, caches, one), Error);          // one padding for two rows
  const std::vector<int64_t> pad = {0, 2};
  m.forward_rows(ids, caches, pad);
  const std::vector<int64_t> more = {0, 4};  // more padding than the caches hold
  EXPECT_THROW(m.forward_rows(Tensor::zeros({2, 1}, DType::I32), caches, more), Error);
}

}  // namespace
