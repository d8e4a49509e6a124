// The LSTM and GRU cell ops: forward against the composite of primitive ops they fuse (PyTorch's
// equations written with ops::sigmoid / tanh / mul / add), backward against finite differences in
// f64 -- for one step and through several steps of a recurrence (linear for gh, the cell op, the
// state fed back), where the gradient of h_prev / c_prev carries everything.
#include <gtest/gtest.h>

#include "common/gradcheck.h"
#include "llmkit/ops/ops.h"
#include "llmkit/ops/rnn.h"

using namespace llmkit;
using llmkit::testing::gradcheck;
using llmkit::testing::max_abs_diff;
using llmkit::testing::rand_tensor;
using V = std::vector<Tensor>;

namespace {

// PyTorch's LSTM cell as composite ops.
ops::LSTMCellOutput lstm_reference(const Tensor& gx, const Tensor& gh, const Tensor& c_prev) {
  const int64_t H = c_prev.size(1);
  auto a = ops::split(gx + gh, {H, H, H, H}, 1);
  Tensor i = ops::sigmoid(a[0]), f = ops::sigmoid(a[1]), g = ops::tanh(a[2]),
         o = ops::sigmoid(a[3]);
  Tensor c = f * c_prev + i * g;
  return {o * ops::tanh(c), c};
}

Tensor gru_reference(const Tensor& gx, const Tensor& gh, const Tensor& h_prev) {
  const int64_t H = h_prev.size(1);
  auto x = ops::split(gx, {H, H, H}, 1), y = ops::split(gh, {H, H, H}, 1);
  Tensor r = ops::sigmoid(x[0] + y[0]), z = ops::sigmoid(x[1] + y[1]);
  Tensor n = ops::tanh(x[2] + r * y[2]);
  return n - z * n + z * h_prev;
}

}  // namespace

TEST(RnnCell, LstmForwardMatchesComposite) {
  const int64_t B = 3, H = 5;
  Tensor gx = rand_tensor({B, 4 * H}, 1, -3, 3), gh = rand_tensor({B, 4 * H}, 2, -3, 3);
  Tensor c = rand_tensor({B, H}, 3);
  auto ours = ops::lstm_cell(gx, gh, c);
  auto ref = lstm_reference(gx, gh, c);
  EXPECT_LT(max_abs_diff(ours.h, ref.h), 1e-12);
  EXPECT_LT(max_abs_diff(ours.c, ref.c), 1e-12);
  // float path (vectorised sigmoid / tanh approximations)
  auto f = ops::lstm_cell(gx.to(DType::F32), gh.to(DType::F32), c.to(DType::F32));
  EXPECT_LT(max_abs_diff(f.h.to(DType::F64), ref.h), 2e-6);
  EXPECT_LT(max_abs_diff(f.c.to(DType::F64), ref.c), 2e-6);
}

TEST(RnnCell, GruForwardMatchesComposite) {
  const int64_t B = 3, H = 5;
  Tensor gx = rand_tensor({B, 3 * H}, 4, -3, 3), gh = rand_tensor({B, 3 * H}, 5, -3, 3);
  Tensor h = rand_tensor({B, H}, 6);
  EXPECT_LT(max_abs_diff(ops::gru_cell(gx, gh, h), gru_reference(gx, gh, h)), 1e-12);
  Tensor f = ops::gru_cell(gx.to(DType::F32), gh.to(DType::F32), h.to(DType::F32));
  EXPECT_LT(max_abs_diff(f.to(DType::F64), gru_reference(gx, gh, h)), 2e-6);
}

TEST(RnnCell, LstmGradients) {
  const int64_t B = 2, H = 3;
  Tensor gx = rand_tensor({B, 4 * H}, 7, -2, 2).requires_grad_();
  Tensor gh = rand_tensor({B, 4 * H}, 8, -2, 2).requires_grad_();
  Tensor c = rand_tensor({B, H}, 9).requires_grad_();
  // h and c together, each alone (the other's gradient is then zero), and a non-contiguous gx.
  gradcheck(
      [](const V& v) {
        auto o = ops::lstm_cell(v[0], v[1], v[2]);
        return ops::concat({o.h, o.c}, 1);
      },
      {gx, gh, c});
  gradcheck([](const V& v) { return ops::lstm_cell(v[0], v[1], v[2]).h; }, {gx, gh, c});
  gradcheck([](const V& v) { return ops::lstm_cell(v[0], v[1], v[2]).c; }, {gx, gh, c});
  Tensor gxt = rand_tensor({4 * H, B}, 10, -2, 2).requires_grad_();
  gradcheck([](const V& v) { return ops::lstm_cell(v[0].transpose(0, 1), v[1], v[2]).h; },
            {gxt, gh, c});
}

TEST(RnnCell, GruGradients) {
  const int64_t B = 2, H = 3;
  Tensor gx = rand_tensor({B, 3 * H}, 11, -2, 2).requires_grad_();
  Tensor gh = rand_tensor({B, 3 * H}, 12, -2, 2).requires_grad_();
  Tensor h = rand_tensor({B, H}, 13).requires_grad_();
  gradcheck([](const V& v) { return ops::gru_cell(v[0], v[1], v[2]); }, {gx, gh, h});
  // only some inputs requiring grad
  Tensor gh_const = rand_tensor({B, 3 * H}, 12, -2, 2);
  gradcheck([](const V& v) { return ops::gru_cell(v[0], v[1], v[2]); }, {gx, gh_const, h});
}

// Four steps of a one-layer recurrence, as nn::LSTM runs it: gx for the whole sequence from one
// linear, gh = linear(h, W_hh, b_hh) per step. Checks W_ih, W_hh, biases, inputs and h0/c0.
TEST(RnnCell, LstmGradientsThroughTime) {
  const int64_t T = 4, B = 2, C = 3, H = 3;
  Tensor x = rand_tensor({T, B, C}, 20).requires_grad_();
  Tensor w_ih = rand_tensor({4 * H, C}, 21, -0.8, 0.8).requires_grad_();
  Tensor w_hh = rand_tensor({4 * H, H}, 22, -0.8, 0.8).requires_grad_();
  Tensor b_ih = rand_tensor({4 * H}, 23).requires_grad_();
  Tensor b_hh = rand_tensor({4 * H}, 24).requires_grad_();
  Tensor h0 = rand_tensor({B, H}, 25).requires_grad_(),
         c0 = rand_tensor({B, H}, 26).requires_grad_();
  gradcheck(
      [T](const V& v) {
        Tensor gx = ops::linear(v[0], v[1], v[3]);  // [T, B, 4H]
        Tensor h = v[5], c = v[6];
        std::vector<Tensor> hs;
        for (int64_t t = 0; t < T; ++t) {
          auto o = ops::lstm_cell(gx.select(0, t), ops::linear(h, v[2], v[4]), c);
          h = o.h;
          c = o.c;
          hs.push_back(h);
        }
        hs.push_back(c);
        return ops::concat(hs, 1);
      },
      {x, w_ih, w_hh, b_ih, b_hh, h0, c0});
}

TEST(RnnCell, GruGradientsThroughTime) {
  const int64_t T = 4, B = 2, C = 3, H = 3;
  Tensor x = rand_tensor({T, B, C}, 30).requires_grad_();
  Tensor w_ih = rand_tensor({3 * H, C}, 31, -0.8, 0.8).requires_grad_();
  Tensor w_hh = rand_tensor({3 * H, H}, 32, -0.8, 0.8).requires_grad_();
  Tensor b_ih = rand_tensor({3 * H}, 33).requires_grad_();
  Tensor b_hh = rand_tensor({3 * H}, 34).requires_grad_();
  Tensor h0 = rand_tensor({B, H}, 35).requires_grad_();
  gradcheck(
      [T](const V& v) {
        Tensor gx = ops::linear(v[0], v[1], v[3]);
        Tensor h = v[5];
        std::vector<Tensor> hs;
        for (int64_t t = 0; t < T; ++t) {
          h = ops::gru_cell(gx.select(0, t), ops::linear(h, v[2], v[4]), h);
          hs.push_back(h);
        }
        return ops::concat(hs, 1);
      },
      {x, w_ih, w_hh, b_ih, b_hh, h0});
}

TEST(RnnCell, BadShapesAreErrors) {
  Tensor c = Tensor::zeros({2, 3});
  auto expect_error = [](auto fn, const char* needle) {
    try {
      fn();
      ADD_FAILURE() << "no error";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  expect_error(
      [&] {
        ops::lstm_cell(Tensor::zeros({2, 9}), Tensor::zeros({2, 12}), c);
      },
      "lstm_cell: gates");
  expect_error(
      [&] {
        ops::gru_cell(Tensor::zeros({2, 9}), Tensor::zeros({3, 9}), c);
      },
      "gru_cell: gates");
  expect_error(
      [&] {
        ops::gru_cell(Tensor::zeros({2, 9}), Tensor::zeros({2, 9}), Tensor::zeros({6}));
      },
      "must be [B, H]");
  expect_error(
      [&] {
        ops::gru_cell(Tensor::zeros({2, 9}, DType::F64), Tensor::zeros({2, 9}), c);
      },
      "dtype mismatch");
}
