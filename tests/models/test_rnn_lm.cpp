// nn::LSTM / nn::GRU and models::RNNLM: gradients of every parameter, the input and the initial
// state against finite differences (f64, stacked layers, several steps); the step API against the
// full forward (generation sees exactly the logits training sees); carried state across segments
// equal to one long forward (what truncated BPTT relies on); config and input errors; seeds.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "common/gradcheck.h"
#include "llmkit/models/rnn_lm.h"

using namespace llmkit;
using llmkit::testing::gradcheck;
using llmkit::testing::max_abs_diff;
using llmkit::testing::rand_tensor;
using V = std::vector<Tensor>;

namespace {

models::RNNLMConfig small(const std::string& cell, bool tie = false) {
  models::RNNLMConfig c;
  c.cell = cell;
  c.n_layer = 2;
  c.n_embd = 8;
  c.hidden = tie ? 8 : 6;
  c.vocab_size = 11;
  c.block_size = 5;
  c.tie_embeddings = tie;
  return c;
}

Tensor ids_tensor(int64_t B, int64_t T, int64_t V, int salt = 0) {
  std::vector<int32_t> v;
  for (int64_t i = 0; i < B * T; ++i) v.push_back(static_cast<int32_t>((i * 7 + 3 + salt) % V));
  return Tensor::from_vector(v, {B, T});
}

template <typename Fn>
void expect_error(Fn fn, const std::string& needle) {
  try {
    fn();
    ADD_FAILURE() << "no error; expected one mentioning '" << needle << "'";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

}  // namespace

class RnnModule : public ::testing::TestWithParam<const char*> {};

// Output sequence and final state of a 2-layer module against finite differences, with respect
// to the input, the initial state and all eight parameters.
TEST_P(RnnModule, GradientsThroughLayersAndTime) {
  const nn::CellKind kind = nn::parse_cell(GetParam());
  nn::RNN rnn(kind, 3, 4, 2, 0.0, nullptr, DType::F64);
  Generator g(5);
  rnn.reset_parameters(g);
  Tensor x = rand_tensor({2, 3, 3}, 1).requires_grad_();
  Tensor h0 = rand_tensor({2, 4}, 2).requires_grad_(), c0 = rand_tensor({2, 4}, 3).requires_grad_();
  V inputs = {x, h0, c0};
  for (const Tensor& p : rnn.parameters()) inputs.push_back(p);
  const bool lstm = kind == nn::CellKind::LSTM;
  gradcheck(
      [&](const V& v) {
        nn::RNNState s;
        s.h = {v[1], v[1] * 0.5};
        if (lstm) s.c = {v[2], v[2] * -0.5};
        Tensor y = rnn.forward(v[0], &s);  // [B, T, H]
        V parts = {y.reshape({2, -1}), s.h[0], s.h[1]};
        if (lstm) parts.push_back(s.c[1]);
        return ops::concat(parts, 1);
      },
      lstm ? inputs
           : V{x, h0, inputs[3], inputs[4], inputs[5], inputs[6], inputs[7], inputs[8], inputs[9],
               inputs[10]});
}

TEST_P(RnnModule, ParameterNamesAreTorchs) {
  nn::RNN rnn(nn::parse_cell(GetParam()), 3, 4, 2);
  const int64_t G = std::string(GetParam()) == "lstm" ? 4 : 3;
  std::vector<std::string> names;
  for (auto& [n, p] : rnn.named_parameters()) names.push_back(n + shape_str(p.shape()));
  EXPECT_EQ(
      names,
      (std::vector<std::string>{
          "weight_ih_l0" + shape_str(Shape{G * 4, 3}), "weight_hh_l0" + shape_str(Shape{G * 4, 4}),
          "bias_ih_l0" + shape_str(Shape{G * 4}), "bias_hh_l0" + shape_str(Shape{G * 4}),
          "weight_ih_l1" + shape_str(Shape{G * 4, 4}), "weight_hh_l1" + shape_str(Shape{G * 4, 4}),
          "bias_ih_l1" + shape_str(Shape{G * 4}), "bias_hh_l1" + shape_str(Shape{G * 4})}));
  EXPECT_EQ(rnn.state_bytes(5), (G == 4 ? 2 : 1) * 2 * 5 * 4 * 4);
}

class RnnLM : public ::testing::TestWithParam<const char*> {};

TEST_P(RnnLM, StepReproducesForwardAndStateCarries) {
  models::RNNLM m(small(GetParam()), 3);
  const int64_t B = 2, T = 7;
  Tensor ids = ids_tensor(B, T, 11);
  NoGradGuard ng;
  Tensor full = m.forward(ids);  // [B, T, V]
  ASSERT_EQ(full.shape(), (Shape{B, T, 11}));
  nn::RNNState s;
  for (int64_t t = 0; t < T; ++t) {
    Tensor logits = m.step(ids.select(1, t).contiguous(), s);
    EXPECT_LT(max_abs_diff(logits, full.select(1, t)), 1e-5) << "step " << t;
  }
  // two segments with the state carried == one forward
  nn::RNNState s2;
  Tensor a = m.forward(ids.slice(1, 0, 3).contiguous(), &s2);
  Tensor b = m.forward(ids.slice(1, 3, T).contiguous(), &s2);
  EXPECT_LT(max_abs_diff(ops::concat({a, b}, 1), full), 1e-6);
  for (int64_t l = 0; l < 2; ++l) EXPECT_LT(max_abs_diff(s2.h[l], s.h[l]), 1e-5);
}

TEST_P(RnnLM, GradientsOfTheWholeModel) {
  for (bool tie : {false, true}) {
    models::RNNLM m(small(GetParam(), tie), 4, DType::F64);
    Tensor ids = ids_tensor(2, 4, 11);
    V params = m.parameters();
    gradcheck([&](const V&) { return m.forward(ids); }, params);
  }
}

TEST_P(RnnLM, SeedsAndDropoutAreDeterministic) {
  models::RNNLMConfig c = small(GetParam());
  c.dropout = 0.3;
  auto run = [&] {
    models::RNNLM m(c, 9);
    m.train();
    Tensor ids = ids_tensor(2, 5, 11), tgt = ids_tensor(2, 5, 11, 1);
    double l1 = m.loss(ids, tgt).item<double>();
    double l2 = m.loss(ids, tgt).item<double>();  // new dropout masks
    return std::make_pair(l1, l2);
  };
  const auto a = run(), b = run();
  EXPECT_EQ(a, b);
  EXPECT_NE(a.first, a.second);
  models::RNNLM m(c, 9);
  m.eval();
  NoGradGuard ng;
  Tensor ids = ids_tensor(2, 5, 11);
  EXPECT_EQ(max_abs_diff(m.forward(ids), m.forward(ids)), 0.0);
}

INSTANTIATE_TEST_SUITE_P(Cells, RnnModule, ::testing::Values("lstm", "gru"));
INSTANTIATE_TEST_SUITE_P(Cells, RnnLM, ::testing::Values("lstm", "gru"));

TEST(RnnLMConfig, BadFieldsAreErrors) {
  using nlohmann::json;
  auto parse = [](json j) { return models::RNNLMConfig::from_json(j); };
  expect_error([&] { parse({{"arch", "rnn"}, {"cell", "rnn_tanh"}}); }, "cell 'rnn_tanh'");
  expect_error(
      [&] {
        parse({{"arch", "rnn"}, {"n_embd", 8}, {"hidden", 6}, {"tie_embeddings", true}});
      },
      "tie_embeddings");
  expect_error([&] { parse({{"arch", "rnn"}, {"n_head", 2}}); }, "unknown field 'n_head'");
  expect_error([&] { parse({{"arch", "rnn"}, {"hidden", 0}}); }, "hidden must be positive");
  expect_error(
      [&] {
        parse({{"arch", "rnn"}, {"hidden", "big"}});
      },
      "field 'hidden' has the wrong type");
  expect_error([&] { parse({{"arch", "gpt"}}); }, "arch 'gpt' is not rnn");
  const auto c = parse({{"arch", "rnn"}, {"cell", "gru"}, {"n_layer", 3}});
  EXPECT_EQ(models::RNNLMConfig::from_json(c.to_json()).to_json(), c.to_json());
}

TEST(RnnLMConfig, BadInputsAreErrors) {
  models::RNNLM m(small("lstm"));
  nn::RNNState wrong = m.make_state(3);
  expect_error([&] { m.forward(Tensor::zeros({2, 3})); }, "must be i32 [B, T]");
  expect_error([&] { m.step(Tensor::zeros({2, 3}, DType::I32), wrong); }, "must be i32 [B]");
  expect_error([&] { m.forward(ids_tensor(2, 3, 11), &wrong); }, "is not [2, 6]");
  expect_error([&] { m.rnn->forward(Tensor::zeros({2, 3, 5})); }, "is not [B, T, 8]");
}
