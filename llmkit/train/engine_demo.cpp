#include "llmkit/train/engine_demo.h"

#include <chrono>
#include <cmath>

#include "llmkit/core/random.h"
#include "llmkit/ops/ops.h"
#include "llmkit/train/sgd.h"

namespace llmkit::train {
namespace {

using Clock = std::chrono::steady_clock;

Tensor param(const Shape& shape, double std, Generator& g, DType dt) {
  Tensor t = Tensor::empty(shape, dt);
  if (std == 0)
    t.zero_();
  else
    g.normal_(t, 0.0, std);
  return t.requires_grad_();
}

// Fraction of rows where argmax(logits [N, C]) == targets [N] (ignoring negatives).
double accuracy(const Tensor& logits, const Tensor& targets) {
  const int64_t C = logits.size(-1);
  const auto l = logits.to_vector<double>();
  const auto t = targets.to_vector<int32_t>();
  int64_t right = 0, total = 0;
  for (size_t r = 0; r < t.size(); ++r) {
    if (t[r] < 0) continue;
    int64_t best = 0;
    for (int64_t c = 1; c < C; ++c)
      if (l[r * C + c] > l[r * C + best]) best = c;
    right += best == t[r];
    ++total;
  }
  return total ? static_cast<double>(right) / total : 0.0;
}

// Points around the four corners (+-1, +-1) with noise 0.3; label = XOR of the signs.
void xor_batch(Tensor& x, Tensor& y, Generator& g) {
  const int64_t n = y.numel();
  Tensor noise = Tensor::empty({n, 2}, DType::F64);
  g.normal_(noise, 0.0, 0.3);
  const auto nz = noise.to_vector<double>();
  std::vector<double> xv(n * 2);
  std::vector<int32_t> yv(n);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t a = g.randint(2), b = g.randint(2);
    xv[2 * i] = (a ? 1.0 : -1.0) + nz[2 * i];
    xv[2 * i + 1] = (b ? 1.0 : -1.0) + nz[2 * i + 1];
    yv[i] = static_cast<int32_t>(a ^ b);
  }
  x.copy_(Tensor::from_vector(xv, {n, 2}));
  y.copy_(Tensor::from_vector(yv, {n}));
}

// Random tokens in [1, V); the target at every position t >= 1 is the token at position 0.
void recall_batch(Tensor& x, Tensor& y, int64_t V, Generator& g) {
  const int64_t B = x.size(0), T = x.size(1);
  std::vector<int32_t> xv(B * T), yv(B * T);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t) {
      xv[b * T + t] = static_cast<int32_t>(1 + g.randint(V - 1));
      yv[b * T + t] = t == 0 ? -100 : xv[b * T];
    }
  x.copy_(Tensor::from_vector(xv, {B, T}));
  y.copy_(Tensor::from_vector(yv, {B, T}));
}

template <typename Model, typename Batch>
DemoResult run(const DemoOptions& opt, Model&& model, std::vector<Tensor> params, Batch&& batch,
               const DemoProgress& progress) {
  Sgd sgd(std::move(params), {.lr = opt.lr, .momentum = opt.momentum, .weight_decay = 0.0});
  DemoResult res;
  const auto t0 = Clock::now();
  for (int64_t step = 0; step < opt.steps; ++step) {
    auto [x, y] = batch();
    Tensor loss = ops::cross_entropy(model(x), y);
    sgd.zero_grad();
    loss.backward();
    sgd.step();
    res.losses.push_back(loss.item<double>());
    if (progress) progress(step, res.losses.back());
  }
  res.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  NoGradGuard ng;
  auto [x, y] = batch();
  Tensor logits = model(x);
  res.accuracy = accuracy(logits.reshape({-1, logits.size(-1)}), y.reshape({-1}));
  return res;
}

}  // namespace

DemoResult mlp_xor(const DemoOptions& opt, const DemoProgress& progress) {
  const DType dt = opt.f64 ? DType::F64 : DType::F32;
  Generator g(opt.seed);
  const int64_t H = opt.n_embd;
  Tensor w1 = param({H, 2}, 1.0 / std::sqrt(2.0), g, dt), b1 = param({H}, 0, g, dt);
  Tensor w2 = param({2, H}, 1.0 / std::sqrt(double(H)), g, dt), b2 = param({2}, 0, g, dt);
  Tensor x = Tensor::empty({opt.batch, 2}, dt), y = Tensor::empty({opt.batch}, DType::I32);
  auto model = [&](const Tensor& in) {
    return ops::linear(ops::gelu(ops::linear(in, w1, b1)), w2, b2);
  };
  auto batch = [&] {
    xor_batch(x, y, g);
    return std::pair{x, y};
  };
  return run(opt, model, {w1, b1, w2, b2}, batch, progress);
}

DemoResult attention_recall(const DemoOptions& opt, const DemoProgress& progress) {
  const DType dt = opt.f64 ? DType::F64 : DType::F32;
  Generator g(opt.seed);
  const int64_t B = opt.batch, T = opt.seq_len, V = opt.vocab, C = opt.n_embd, NH = opt.n_head;
  LLMKIT_CHECK(C % NH == 0, "attention_recall: n_embd ", C, " not divisible by n_head ", NH);
  const double s = 1.0 / std::sqrt(double(C));
  Tensor wte = param({V, C}, 1.0, g, dt), wpe = param({T, C}, 1.0, g, dt);
  Tensor w_qkv = param({3 * C, C}, s, g, dt), w_o = param({C, C}, s, g, dt);
  Tensor ln_w = param({C}, 0, g, dt), ln_b = param({C}, 0, g, dt), head = param({V, C}, s, g, dt);
  {
    NoGradGuard ng;
    ln_w.fill_(1.0);
  }
  const Tensor pos = Tensor::arange(T, DType::I32);
  auto model = [&](const Tensor& ids) {
    Tensor h = ops::embedding(ids, wte) + ops::embedding(pos, wpe);  // [B, T, C]
    Tensor qkv = ops::linear(h, w_qkv).reshape({B, T, 3, NH, C / NH}).permute({2, 0, 3, 1, 4});
    Tensor a =
        ops::scaled_dot_product_attention(qkv.select(0, 0), qkv.select(0, 1), qkv.select(0, 2),
                                          /*causal=*/true);
    h = h + ops::linear(a.transpose(1, 2).reshape({B, T, C}), w_o);
    return ops::linear(ops::layer_norm(h, ln_w, ln_b), head);  // [B, T, V]
  };
  Tensor x = Tensor::empty({B, T}, DType::I32), y = Tensor::empty({B, T}, DType::I32);
  auto batch = [&] {
    recall_batch(x, y, V, g);
    return std::pair{x, y};
  };
  return run(opt, model, {wte, wpe, w_qkv, w_o, ln_w, ln_b, head}, batch, progress);
}

}  // namespace llmkit::train
