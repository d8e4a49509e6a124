#include "llmkit/ops/loss.h"

#include <limits>

#include "llmkit/core/autograd.h"
#include "llmkit/kernels/cpu/loss.h"

namespace llmkit::ops {

Tensor cross_entropy(const Tensor& logits, const Tensor& targets, int32_t ignore_index) {
  LLMKIT_CHECK(logits.dim() >= 1 && targets.dtype() == DType::I32 &&
                   targets.numel() * logits.size(-1) == logits.numel(),
               "cross_entropy: logits ", logits.str(), " and targets ", targets.str(),
               " do not match (want logits [..., V] and i32 targets [...])");
  const int64_t V = logits.size(-1), R = targets.numel();
  const Tensor lc = logits.contiguous().detach(), tc = targets.contiguous();
  Tensor loss = Tensor::empty({}, logits.dtype());
  Tensor lse = Tensor::empty({R}, logits.dtype());
  int64_t valid = 0;
  dispatch_float(logits.dtype(), "cross_entropy", [&](auto t) {
    using T = decltype(t);
    Tensor losses = Tensor::empty({R}, logits.dtype());
    valid = kernels::cross_entropy_forward(losses.data<T>(), lse.data<T>(), lc.data<T>(),
                                           tc.data<int32_t>(), R, V, ignore_index);
    double s = 0.0;  // fixed order: deterministic
    const T* pl = losses.data<T>();
    for (int64_t r = 0; r < R; ++r) s += pl[r];
    // No valid row: NaN, as PyTorch (0/0).
    loss.data<T>()[0] = static_cast<T>(valid > 0 ? s / static_cast<double>(valid)
                                                 : std::numeric_limits<double>::quiet_NaN());
  });
  if (needs_graph({&logits}) && valid > 0)
    record(loss, "cross_entropy", {&logits},
           [lc, tc, lse, R, V, valid, ignore_index](Node& n, const Tensor& dloss) {
             Tensor dl = n.grad(0);
             dispatch_float(dloss.dtype(), "cross_entropy", [&](auto t) {
               using T = decltype(t);
               const T scale = static_cast<T>(dloss.data<T>()[0] / static_cast<double>(valid));
               kernels::cross_entropy_backward(dl.data<T>(), lc.data<T>(), lse.data<T>(),
                                               tc.data<int32_t>(), scale, R, V, ignore_index);
             });
           });
  return loss;
}

namespace {

// logits [..., V] and i32 targets [...] of the same leading shape, or an Error naming both.
void check_logits_targets(const char* op, const Tensor& logits, const Tensor& targets) {
  Shape lead = logits.shape();
  if (!lead.empty()) lead.pop_back();
  LLMKIT_CHECK(logits.dim() >= 1 && targets.dtype() == DType::I32 && targets.shape() == lead, op,
               ": logits ", logits.str(), " and targets ", targets.str(),
               " do not match (want logits [..., V] and i32 targets [...])");
}

}  // namespace

Tensor token_log_probs(const Tensor& logits, const Tensor& targets, int32_t ignore_index) {
  check_logits_targets("token_log_probs", logits, targets);
  const int64_t V = logits.size(-1), R = targets.numel();
  const Tensor lc = logits.contiguous().detach(), tc = targets.contiguous();
  Tensor logp = Tensor::empty(targets.shape(), logits.dtype());
  Tensor lse = Tensor::empty({R}, logits.dtype());
  dispatch_float(logits.dtype(), "token_log_probs", [&](auto t) {
    using T = decltype(t);
    kernels::token_log_probs_forward(logp.data<T>(), lse.data<T>(), lc.data<T>(),
                                     tc.data<int32_t>(), R, V, ignore_index);
  });
  if (needs_graph({&logits}))
    record(logp, "token_log_probs", {&logits},
           [lc, tc, lse, R, V, ignore_index](Node& n, const Tensor& dlogp) {
             Tensor dl = n.grad(0);
             const Tensor g = dlogp.contiguous();
             dispatch_float(dlogp.dtype(), "token_log_probs", [&](auto t) {
               using T = decltype(t);
               kernels::token_log_probs_backward(dl.data<T>(), g.data<T>(), lc.data<T>(),
                                                 lse.data<T>(), tc.data<int32_t>(), R, V,
                                                 ignore_index);
             });
           });
  return logp;
}

Tensor softmax_entropy(const Tensor& logits) {
  LLMKIT_CHECK(logits.dim() >= 1 && logits.size(-1) > 0,
               "softmax_entropy: want logits [..., V], got ", logits.str());
  const int64_t V = logits.size(-1), R = logits.numel() / V;
  Shape lead = logits.shape();
  lead.pop_back();
  const Tensor lc = logits.contiguous().detach();
  Tensor entropy = Tensor::empty(lead, logits.dtype());
  Tensor lse = Tensor::empty({R}, logits.dtype()), mean = Tensor::empty({R}, logits.dtype());
  dispatch_float(logits.dtype(), "softmax_entropy", [&](auto t) {
    using T = decltype(t);
    kernels::softmax_entropy_forward(entropy.data<T>(), lse.data<T>(), mean.data<T>(), lc.data<T>(),
                                     R, V);
  });
  if (needs_graph({&logits}))
    record(entropy, "softmax_entropy", {&logits},
           [lc, lse, mean, R, V](Node& n, const Tensor& dentropy) {
             Tensor dl = n.grad(0);
             const Tensor g = dentropy.contiguous();
             dispatch_float(dentropy.dtype(), "softmax_entropy", [&](auto t) {
               using T = decltype(t);
               kernels::softmax_entropy_backward(dl.data<T>(), g.data<T>(), lc.data<T>(),
                                                 lse.data<T>(), mean.data<T>(), R, V);
             });
           });
  return entropy;
}

}  // namespace llmkit::ops
