#include "llmkit/ops/softmax.h"

#include "llmkit/core/autograd.h"
#include "llmkit/kernels/cpu/softmax.h"

namespace llmkit::ops {
namespace {

template <bool kLog>
Tensor softmax_last(const Tensor& x) {
  const char* name = kLog ? "log_softmax" : "softmax";
  const Tensor xc = x.contiguous().detach();
  const int64_t C = x.dim() == 0 ? 1 : x.size(-1), R = C == 0 ? 0 : x.numel() / C;
  Tensor y = Tensor::empty(x.shape(), x.dtype());
  dispatch_float(x.dtype(), name, [&](auto t) {
    using T = decltype(t);
    if constexpr (kLog)
      kernels::log_softmax_forward(y.data<T>(), xc.data<T>(), R, C);
    else
      kernels::softmax_forward(y.data<T>(), xc.data<T>(), R, C);
  });
  if (needs_graph({&x})) {
    const Tensor ys = y.detach();  // backward needs only the output
    record(y, name, {&x}, [ys, R, C, name](Node& n, const Tensor& dy) {
      Tensor dx = n.grad(0);
      dispatch_float(dy.dtype(), name, [&](auto t) {
        using T = decltype(t);
        if constexpr (kLog)
          kernels::log_softmax_backward(dx.data<T>(), dy.data<T>(), ys.data<T>(), R, C);
        else
          kernels::softmax_backward(dx.data<T>(), dy.data<T>(), ys.data<T>(), R, C);
      });
    });
  }
  return y;
}

template <bool kLog>
Tensor softmax_dim(const Tensor& x, int64_t dim) {
  const int64_t n = x.dim();
  LLMKIT_CHECK(n == 0 ? (dim == 0 || dim == -1) : (dim >= -n && dim < n),
               kLog ? "log_softmax" : "softmax", ": dim ", dim, " out of range for ", x.str());
  if (n == 0 || dim == -1 || dim == n - 1) return softmax_last<kLog>(x);
  return softmax_last<kLog>(x.transpose(dim, -1)).transpose(dim, -1);
}

}  // namespace

Tensor softmax(const Tensor& x, int64_t dim) {
  return softmax_dim<false>(x, dim);
}
Tensor log_softmax(const Tensor& x, int64_t dim) {
  return softmax_dim<true>(x, dim);
}

}  // namespace llmkit::ops
