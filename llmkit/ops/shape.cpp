#include "llmkit/ops/shape.h"

#include "llmkit/core/autograd.h"

namespace llmkit::ops {

Tensor concat(const std::vector<Tensor>& xs, int64_t dim) {
  LLMKIT_CHECK(!xs.empty(), "concat: no tensors");
  const Tensor& first = xs[0];
  const int64_t n = first.dim();
  LLMKIT_CHECK(dim >= -n && dim < n, "concat: dim ", dim, " out of range for ", first.str());
  if (dim < 0) dim += n;
  Shape shape = first.shape();
  shape[dim] = 0;
  for (const Tensor& x : xs) {
    bool ok = x.dim() == n && x.dtype() == first.dtype();
    for (int64_t d = 0; ok && d < n; ++d) ok = d == dim || x.shape()[d] == first.shape()[d];
    LLMKIT_CHECK(ok, "concat: ", x.str(), " does not match ", first.str(), " outside dim ", dim);
    shape[dim] += x.shape()[dim];
  }
  Tensor out = Tensor::empty(shape, first.dtype());
  std::vector<int64_t> starts;
  int64_t at = 0;
  for (const Tensor& x : xs) {
    starts.push_back(at);
    out.detach().slice(dim, at, at + x.shape()[dim]).copy_(x);
    at += x.shape()[dim];
  }
  bool any = false;
  for (const Tensor& x : xs) any |= needs_graph({&x});
  if (any) {
    std::vector<int64_t> sizes;
    for (const Tensor& x : xs) sizes.push_back(x.shape()[dim]);
    record(out, "concat", xs, [dim, starts, sizes](Node& nd, const Tensor& dout) {
      for (size_t i = 0; i < sizes.size(); ++i)
        if (nd.needs_grad(i)) nd.accumulate(i, dout.slice(dim, starts[i], starts[i] + sizes[i]));
    });
  }
  return out;
}

std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& sizes, int64_t dim) {
  const int64_t n = x.dim();
  LLMKIT_CHECK(dim >= -n && dim < n, "split: dim ", dim, " out of range for ", x.str());
  if (dim < 0) dim += n;
  int64_t total = 0;
  for (int64_t s : sizes) {
    LLMKIT_CHECK(s >= 0, "split: negative size");
    total += s;
  }
  LLMKIT_CHECK(total == x.shape()[dim], "split: sizes add up to ", total, ", not ", x.shape()[dim],
               " (dim ", dim, " of ", x.str(), ")");
  std::vector<Tensor> out;
  int64_t at = 0;
  for (int64_t s : sizes) {
    out.push_back(x.slice(dim, at, at + s));
    at += s;
  }
  return out;
}

}  // namespace llmkit::ops
