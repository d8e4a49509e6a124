#include "llmkit/ops/activation.h"

#include "llmkit/core/autograd.h"
#include "llmkit/kernels/cpu/activation.h"

namespace llmkit::ops {
namespace {

// y = f(x) elementwise with kernels fwd(y, x, n) and bwd(dx, dy, x, n) (accumulating). Both are
// generic lambdas over the element type.
template <typename Fwd, typename Bwd>
Tensor activation(const Tensor& x, const char* name, Fwd fwd, Bwd bwd) {
  const Tensor xc = x.contiguous().detach();
  Tensor y = Tensor::empty(x.shape(), x.dtype());
  dispatch_float(x.dtype(), name, [&](auto t) {
    using T = decltype(t);
    fwd(y.data<T>(), xc.data<T>(), xc.numel());
  });
  if (needs_graph({&x}))
    record(y, name, {&x}, [xc, bwd, name](Node& n, const Tensor& dy) {
      Tensor dx = n.grad(0);
      dispatch_float(dy.dtype(), name, [&](auto t) {
        using T = decltype(t);
        bwd(dx.data<T>(), dy.data<T>(), xc.data<T>(), xc.numel());
      });
    });
  return y;
}

#define LLMKIT_ACTIVATION(fn, kname)                                                            \
  Tensor fn(const Tensor& x) {                                                                  \
    return activation(                                                                          \
        x, #fn, [](auto* y, const auto* in, int64_t n) { kernels::kname##_forward(y, in, n); }, \
        [](auto* dx, const auto* dy, const auto* in, int64_t n) {                               \
          kernels::kname##_backward(dx, dy, in, n);                                             \
        });                                                                                     \
  }

}  // namespace

LLMKIT_ACTIVATION(relu, relu)
LLMKIT_ACTIVATION(silu, silu)
LLMKIT_ACTIVATION(tanh, tanh)
LLMKIT_ACTIVATION(sigmoid, sigmoid)
LLMKIT_ACTIVATION(gelu_tanh, gelu_tanh)
LLMKIT_ACTIVATION(gelu_erf, gelu_erf)

Tensor gelu(const Tensor& x, GeluApprox approx) {
  return approx == GeluApprox::Tanh ? gelu_tanh(x) : gelu_erf(x);
}

}  // namespace llmkit::ops
