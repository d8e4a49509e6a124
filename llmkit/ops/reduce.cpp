// A reduction permutes the reduced dims to the end (a copy only when needed), so every kernel
// reduces contiguous rows: out[r] = op(x[r, 0..R)). Reductions over the leading dims of a
// contiguous tensor (a bias gradient: sum over rows of [N, C]) take a column kernel instead,
// which reads memory in order.
#include "llmkit/ops/reduce.h"

#include <algorithm>
#include <limits>

#include "llmkit/core/autograd.h"
#include "llmkit/core/strided.h"

namespace llmkit::ops {
namespace {

struct Plan {
  std::vector<bool> reduced;   // per input dim
  Shape out_shape;             // with keepdim
  Shape squeezed_shape;        // without
  int64_t rows = 1, cols = 1;  // kept elements, reduced elements per kept one
};

Plan make_plan(const Tensor& x, const std::vector<int64_t>& dims, const char* op) {
  Plan p;
  const int64_t n = x.dim();
  p.reduced.assign(n, false);
  for (int64_t d : dims) {
    LLMKIT_CHECK(d >= -n && d < n, op, ": dim ", d, " out of range for ", x.str());
    p.reduced[d < 0 ? d + n : d] = true;
  }
  for (int64_t d = 0; d < n; ++d) {
    if (p.reduced[d]) {
      p.cols *= x.shape()[d];
      p.out_shape.push_back(1);
    } else {
      p.rows *= x.shape()[d];
      p.out_shape.push_back(x.shape()[d]);
      p.squeezed_shape.push_back(x.shape()[d]);
    }
  }
  return p;
}

// Sum (or mean when scale != 1) into out [rows] of the reduced dims.
template <typename T>
void sum_kernel(T* out, const Tensor& x, const Plan& p, double scale) {
  const int64_t n = x.dim();
  int64_t lead = 0;  // number of leading reduced dims
  while (lead < n && p.reduced[lead]) ++lead;
  bool trailing_kept = true;
  for (int64_t d = lead; d < n; ++d) trailing_kept &= !p.reduced[d];
  if (x.is_contiguous() && trailing_kept && lead > 0) {  // columns: out[c] = sum_r x[r, c]
    const T* px = x.data<T>();
    const int64_t R = p.cols, C = p.rows;
    parallel_for(C, 256, [&](int64_t c0, int64_t c1) {
      std::vector<double> acc(c1 - c0, 0.0);
      for (int64_t r = 0; r < R; ++r) {
        const T* row = px + r * C;
        for (int64_t c = c0; c < c1; ++c) acc[c - c0] += row[c];
      }
      for (int64_t c = c0; c < c1; ++c) out[c] = static_cast<T>(acc[c - c0] * scale);
    });
    return;
  }
  std::vector<int64_t> perm;
  for (int64_t d = 0; d < n; ++d)
    if (!p.reduced[d]) perm.push_back(d);
  for (int64_t d = 0; d < n; ++d)
    if (p.reduced[d]) perm.push_back(d);
  const Tensor xc = x.detach().permute(perm).contiguous();
  const T* px = xc.data<T>();
  const int64_t R = p.cols;
  parallel_for(p.rows, std::max<int64_t>(1, 16384 / (R + 1)), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      double acc = 0.0;
      const T* row = px + r * R;
      for (int64_t c = 0; c < R; ++c) acc += row[c];
      out[r] = static_cast<T>(acc * scale);
    }
  });
}

Tensor sum_impl(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim, bool mean,
                const char* op) {
  const Plan p = make_plan(x, dims, op);
  LLMKIT_CHECK(!mean || p.cols > 0, op, ": mean over an empty dimension of ", x.str());
  const double scale = mean ? 1.0 / static_cast<double>(p.cols) : 1.0;
  Tensor out = Tensor::empty(keepdim ? p.out_shape : p.squeezed_shape, x.dtype());
  dispatch_float(x.dtype(), op, [&](auto t) { sum_kernel(out.data<decltype(t)>(), x, p, scale); });
  if (needs_graph({&x})) {
    const Shape in_shape = x.shape(), keep_shape = p.out_shape;
    record(out, op, {&x}, [in_shape, keep_shape, scale](Node& n, const Tensor& dout) {
      Tensor g = dout.reshape(keep_shape).expand(in_shape);
      if (scale != 1.0) {
        Tensor s = Tensor::empty(in_shape, dout.dtype());
        s.copy_(g);
        dispatch_float(s.dtype(), "mean", [&](auto t) {
          using T = decltype(t);
          T* ps = s.data<T>();
          for (int64_t i = 0; i < s.numel(); ++i) ps[i] = static_cast<T>(ps[i] * scale);
        });
        g = s;
      }
      n.accumulate(0, g);
    });
  }
  return out;
}

std::vector<int64_t> all_dims(const Tensor& x) {
  std::vector<int64_t> d(x.dim());
  for (int64_t i = 0; i < x.dim(); ++i) d[i] = i;
  return d;
}

}  // namespace

Tensor sum(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  return sum_impl(x, dims, keepdim, false, "sum");
}
Tensor sum(const Tensor& x) {
  return sum(x, all_dims(x), false);
}
Tensor mean(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  return sum_impl(x, dims, keepdim, true, "mean");
}
Tensor mean(const Tensor& x) {
  return mean(x, all_dims(x), false);
}

Tensor max(const Tensor& x, int64_t dim, bool keepdim) {
  const Plan p = make_plan(x, {dim}, "max");
  LLMKIT_CHECK(p.cols > 0, "max: reduction over an empty dimension of ", x.str());
  const int64_t d = dim < 0 ? dim + x.dim() : dim;
  std::vector<int64_t> perm;
  for (int64_t i = 0; i < x.dim(); ++i)
    if (i != d) perm.push_back(i);
  perm.push_back(d);
  const Tensor xc = x.detach().permute(perm).contiguous();
  Tensor out = Tensor::empty(keepdim ? p.out_shape : p.squeezed_shape, x.dtype());
  std::vector<int64_t> arg(p.rows);
  dispatch_float(x.dtype(), "max", [&](auto t) {
    using T = decltype(t);
    const T* px = xc.data<T>();
    T* po = out.data<T>();
    for (int64_t r = 0; r < p.rows; ++r) {
      const T* row = px + r * p.cols;
      int64_t best = 0;
      for (int64_t c = 1; c < p.cols; ++c)
        if (row[c] > row[best]) best = c;
      po[r] = row[best];
      arg[r] = best;
    }
  });
  if (needs_graph({&x})) {
    const Shape permuted = xc.shape();
    std::vector<int64_t> inverse(perm.size());
    for (size_t i = 0; i < perm.size(); ++i) inverse[perm[i]] = static_cast<int64_t>(i);
    const int64_t cols = p.cols;
    record(out, "max", {&x}, [permuted, inverse, arg, cols](Node& n, const Tensor& dout) {
      Tensor g = Tensor::zeros(permuted, dout.dtype());
      dispatch_float(dout.dtype(), "max", [&](auto t) {
        using T = decltype(t);
        const T* pd = dout.data<T>();
        T* pg = g.data<T>();
        for (size_t r = 0; r < arg.size(); ++r) pg[r * cols + arg[r]] = pd[r];
      });
      n.accumulate(0, g.permute(inverse));
    });
  }
  return out;
}

}  // namespace llmkit::ops
