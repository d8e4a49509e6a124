#include "llmkit/ops/norm.h"

#include "llmkit/core/autograd.h"
#include "llmkit/kernels/cpu/norm.h"

namespace llmkit::ops {
namespace {

void check_param(const Tensor& p, const Tensor& x, const char* op, const char* what) {
  if (!p.defined()) return;
  LLMKIT_CHECK(p.dim() == 1 && p.size(0) == x.size(-1) && p.dtype() == x.dtype(), op, ": ", what,
               " ", p.str(), " does not match input ", x.str());
}

template <typename T>
const T* ptr_or_null(const Tensor& t) {
  return t.defined() ? t.data<T>() : nullptr;
}

}  // namespace

Tensor layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps) {
  LLMKIT_CHECK(x.dim() >= 1, "layer_norm: input ", x.str(), " has no channel dim");
  check_param(weight, x, "layer_norm", "weight");
  check_param(bias, x, "layer_norm", "bias");
  const int64_t C = x.size(-1), R = C == 0 ? 0 : x.numel() / C;
  const Tensor xc = x.contiguous().detach();
  const Tensor w = weight.defined() ? weight.contiguous().detach() : Tensor();
  const Tensor b = bias.defined() ? bias.contiguous().detach() : Tensor();
  Tensor y = Tensor::empty(x.shape(), x.dtype());
  Tensor mean = Tensor::empty({R}, x.dtype()), rstd = Tensor::empty({R}, x.dtype());
  dispatch_float(x.dtype(), "layer_norm", [&](auto t) {
    using T = decltype(t);
    kernels::layer_norm_forward(y.data<T>(), mean.data<T>(), rstd.data<T>(), xc.data<T>(),
                                ptr_or_null<T>(w), ptr_or_null<T>(b), R, C, eps);
  });
  if (needs_graph({&x, &weight, &bias}))
    record(y, "layer_norm", {&x, &weight, &bias},
           [xc, w, mean, rstd, R, C](Node& n, const Tensor& dy) {
             dispatch_float(dy.dtype(), "layer_norm", [&](auto t) {
               using T = decltype(t);
               Tensor dx = n.needs_grad(0) ? n.grad(0) : Tensor::zeros({R, C}, dy.dtype());
               Tensor dw = n.needs_grad(1) ? n.grad(1) : Tensor();
               Tensor db = n.needs_grad(2) ? n.grad(2) : Tensor();
               kernels::layer_norm_backward(dx.data<T>(), dw.defined() ? dw.data<T>() : nullptr,
                                            db.defined() ? db.data<T>() : nullptr, dy.data<T>(),
                                            xc.data<T>(), ptr_or_null<T>(w), mean.data<T>(),
                                            rstd.data<T>(), R, C);
             });
           });
  return y;
}

Tensor rms_norm(const Tensor& x, const Tensor& weight, double eps) {
  LLMKIT_CHECK(x.dim() >= 1, "rms_norm: input ", x.str(), " has no channel dim");
  check_param(weight, x, "rms_norm", "weight");
  const int64_t C = x.size(-1), R = C == 0 ? 0 : x.numel() / C;
  const Tensor xc = x.contiguous().detach();
  const Tensor w = weight.defined() ? weight.contiguous().detach() : Tensor();
  Tensor y = Tensor::empty(x.shape(), x.dtype());
  Tensor rstd = Tensor::empty({R}, x.dtype());
  dispatch_float(x.dtype(), "rms_norm", [&](auto t) {
    using T = decltype(t);
    kernels::rms_norm_forward(y.data<T>(), rstd.data<T>(), xc.data<T>(), ptr_or_null<T>(w), R, C,
                              eps);
  });
  if (needs_graph({&x, &weight}))
    record(y, "rms_norm", {&x, &weight}, [xc, w, rstd, R, C](Node& n, const Tensor& dy) {
      dispatch_float(dy.dtype(), "rms_norm", [&](auto t) {
        using T = decltype(t);
        Tensor dx = n.needs_grad(0) ? n.grad(0) : Tensor::zeros({R, C}, dy.dtype());
        Tensor dw = n.needs_grad(1) ? n.grad(1) : Tensor();
        kernels::rms_norm_backward(dx.data<T>(), dw.defined() ? dw.data<T>() : nullptr,
                                   dy.data<T>(), xc.data<T>(), ptr_or_null<T>(w), rstd.data<T>(), R,
                                   C);
      });
    });
  return y;
}

}  // namespace llmkit::ops
