// Views (reshape, permute, transpose, slice, narrow, select, unsqueeze, squeeze, expand) and
// copies (contiguous, clone, to), each with its gradient beside it. A view shares storage and
// only changes shape, strides and offset; its backward maps the output gradient back onto the
// input's shape (the inverse permutation, a zero tensor with the slice filled, a sum over the
// broadcast dimensions).
#include <algorithm>
#include <numeric>

#include "llmkit/core/autograd.h"
#include "llmkit/core/strided.h"
#include "llmkit/core/tensor.h"

namespace llmkit {
namespace {

int64_t wrap_dim(int64_t d, int64_t n, const char* op, const Tensor& t) {
  LLMKIT_CHECK(d >= -n && d < n, op, ": dim ", d, " out of range for ", t.str());
  return d < 0 ? d + n : d;
}

Tensor make_view(const Tensor& base, Shape shape, Shape strides, int64_t offset) {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = base.storage();
  impl->offset = offset;
  impl->shape = std::move(shape);
  impl->strides = std::move(strides);
  impl->dtype = base.dtype();
  return Tensor(std::move(impl));
}

// Strides that view `t` as `shape` without copying, or empty if impossible (numel matches).
// The rule of PyTorch's computeStride: each run of new dims must lie inside a run of old dims that
// is itself contiguous in memory.
Shape view_strides(const Tensor& t, const Shape& shape) {
  if (t.is_contiguous() || t.numel() == 0) return contiguous_strides(shape);
  const Shape& os = t.shape();
  const Shape& ost = t.strides();
  Shape st(shape.size());
  int64_t view_d = static_cast<int64_t>(shape.size()) - 1;
  int64_t chunk_stride = ost.back(), tensor_numel = 1, view_numel = 1;
  for (int64_t d = static_cast<int64_t>(os.size()) - 1; d >= 0; --d) {
    tensor_numel *= os[d];
    if (d == 0 || (os[d - 1] != 1 && ost[d - 1] != tensor_numel * chunk_stride)) {
      while (view_d >= 0 && (view_numel < tensor_numel || shape[view_d] == 1)) {
        st[view_d] = view_numel * chunk_stride;
        view_numel *= shape[view_d];
        --view_d;
      }
      if (view_numel != tensor_numel) return {};
      if (d > 0) {
        chunk_stride = ost[d - 1];
        tensor_numel = 1;
        view_numel = 1;
      }
    }
  }
  if (view_d != -1) return {};
  return st;
}

}  // namespace

Tensor Tensor::reshape(const Shape& new_shape) const {
  Shape shape = new_shape;
  int64_t infer = -1;
  for (size_t i = 0; i < shape.size(); ++i) {
    LLMKIT_CHECK(shape[i] >= -1, "reshape: bad size in ", shape_str(new_shape));
    if (shape[i] != -1) continue;
    LLMKIT_CHECK(infer < 0, "reshape: more than one -1 in ", shape_str(new_shape));
    infer = static_cast<int64_t>(i);
    shape[i] = 1;
  }
  check_shape(shape, "reshape");  // overflow of the known dims
  const int64_t known = shape_numel(shape);
  if (infer >= 0) {
    LLMKIT_CHECK(known != 0 && numel() % known == 0, "reshape: cannot reshape ", str(), " to ",
                 shape_str(new_shape));
    shape[infer] = numel() / known;
  }
  LLMKIT_CHECK(shape_numel(shape) == numel(), "reshape: cannot reshape ", str(), " (", numel(),
               " elements) to ", shape_str(new_shape));
  Shape st = view_strides(*this, shape);
  Tensor out = st.empty() && !shape.empty() ? contiguous().detach().reshape(shape)
                                            : make_view(*this, shape, st, offset());
  if (needs_graph({this})) {
    Shape in_shape = this->shape();
    record(out, "reshape", {this},
           [in_shape](Node& n, const Tensor& dout) { n.accumulate(0, dout.reshape(in_shape)); });
  }
  return out;
}

Tensor Tensor::flatten(int64_t start_dim, int64_t end_dim) const {
  const int64_t n = dim();
  if (n == 0) return reshape({1});
  start_dim = wrap_dim(start_dim, n, "flatten", *this);
  end_dim = wrap_dim(end_dim, n, "flatten", *this);
  Shape s(shape().begin(), shape().begin() + start_dim);
  int64_t m = 1;
  for (int64_t d = start_dim; d <= end_dim; ++d) m *= shape()[d];
  s.push_back(m);
  s.insert(s.end(), shape().begin() + end_dim + 1, shape().end());
  return reshape(s);
}

Tensor Tensor::permute(const std::vector<int64_t>& dims) const {
  const int64_t n = dim();
  LLMKIT_CHECK(static_cast<int64_t>(dims.size()) == n, "permute: ", dims.size(), " dims given for ",
               str());
  Shape shape(n), st(n);
  std::vector<int64_t> inverse(n, -1);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t d = wrap_dim(dims[i], n, "permute", *this);
    LLMKIT_CHECK(inverse[d] < 0, "permute: dim ", d, " repeated for ", str());
    inverse[d] = i;
    shape[i] = this->shape()[d];
    st[i] = strides()[d];
  }
  Tensor out = make_view(*this, shape, st, offset());
  if (needs_graph({this}))
    record(out, "permute", {this},
           [inverse](Node& nd, const Tensor& dout) { nd.accumulate(0, dout.permute(inverse)); });
  return out;
}

Tensor Tensor::transpose(int64_t d0, int64_t d1) const {
  std::vector<int64_t> p(dim());
  std::iota(p.begin(), p.end(), 0);
  std::swap(p[wrap_dim(d0, dim(), "transpose", *this)], p[wrap_dim(d1, dim(), "transpose", *this)]);
  return permute(p);
}

Tensor Tensor::slice(int64_t d, int64_t start, int64_t end) const {
  d = wrap_dim(d, dim(), "slice", *this);
  const int64_t n = shape()[d];
  if (start < 0) start += n;
  if (end < 0) end += n;
  start = std::clamp<int64_t>(start, 0, n);
  end = std::clamp<int64_t>(end, start, n);
  Shape shape = this->shape();
  shape[d] = end - start;
  Tensor out = make_view(*this, shape, strides(), offset() + start * strides()[d]);
  if (needs_graph({this}))
    record(out, "slice", {this}, [d, start, end](Node& nd, const Tensor& dout) {
      detail::add_into(nd.grad(0).slice(d, start, end), dout);
    });
  return out;
}

Tensor Tensor::narrow(int64_t d, int64_t start, int64_t length) const {
  d = wrap_dim(d, dim(), "narrow", *this);
  LLMKIT_CHECK(start >= 0 && length >= 0 && start + length <= shape()[d], "narrow: [", start, ", ",
               start + length, ") out of range for dim ", d, " of ", str());
  return slice(d, start, start + length);
}

Tensor Tensor::select(int64_t d, int64_t index) const {
  d = wrap_dim(d, dim(), "select", *this);
  const int64_t n = shape()[d];
  LLMKIT_CHECK(index >= -n && index < n, "select: index ", index, " out of range for dim ", d,
               " of ", str());
  if (index < 0) index += n;
  return slice(d, index, index + 1).squeeze(d);
}

Tensor Tensor::unsqueeze(int64_t d) const {
  d = wrap_dim(d, dim() + 1, "unsqueeze", *this);
  Shape s = shape();
  s.insert(s.begin() + d, 1);
  return reshape(s);
}

Tensor Tensor::squeeze(int64_t d) const {
  d = wrap_dim(d, dim(), "squeeze", *this);
  LLMKIT_CHECK(shape()[d] == 1, "squeeze: dim ", d, " of ", str(), " is not 1");
  Shape s = shape();
  s.erase(s.begin() + d);
  return reshape(s);
}

Tensor Tensor::expand(const Shape& target) const {
  const int64_t n = static_cast<int64_t>(target.size());
  LLMKIT_CHECK(n >= dim(), "expand: ", str(), " to fewer dims ", shape_str(target));
  Shape st(n, 0);
  const int64_t lead = n - dim();
  for (int64_t i = 0; i < dim(); ++i) {
    const int64_t s = shape()[i], t = target[lead + i];
    LLMKIT_CHECK(s == t || s == 1, "expand: cannot expand ", str(), " to ", shape_str(target));
    st[lead + i] = s == t ? strides()[i] : 0;
  }
  check_shape(target, "expand");
  Tensor out = make_view(*this, target, st, offset());
  if (needs_graph({this})) {
    Shape in_shape = shape();
    record(out, "expand", {this}, [in_shape, target](Node& nd, const Tensor& dout) {
      // Sum over broadcast dims: view the gradient buffer with zero strides there, then add.
      Tensor g = nd.grad(0);
      Shape gst(target.size(), 0);
      const size_t lead = target.size() - in_shape.size();
      const Shape cs = contiguous_strides(in_shape);
      for (size_t i = 0; i < in_shape.size(); ++i)
        gst[lead + i] = in_shape[i] == target[lead + i] ? cs[i] : 0;
      detail::add_into(make_view(g, target, gst, g.offset()), dout);
    });
  }
  return out;
}

Tensor Tensor::contiguous() const {
  return is_contiguous() ? *this : clone();
}

Tensor Tensor::clone() const {
  Tensor out = Tensor::empty(shape(), dtype());
  out.copy_(*this);
  if (needs_graph({this}))
    record(out, "clone", {this}, [](Node& nd, const Tensor& dout) { nd.accumulate(0, dout); });
  return out;
}

Tensor Tensor::to(DType t) const {
  if (t == dtype()) return *this;
  Tensor out = Tensor::empty(shape(), t);
  out.copy_(*this);
  if (needs_graph({this}) && dtype_is_float(t) && (t == DType::F32 || t == DType::F64)) {
    const DType in = dtype();
    record(out, "to", {this},
           [in](Node& nd, const Tensor& dout) { nd.accumulate(0, dout.to(in)); });
  }
  return out;
}

}  // namespace llmkit
