// Tensor: a shaped, strided view of a shared buffer, with reverse-mode autograd.
// A Tensor is a cheap handle (shared_ptr to TensorImpl); copies alias the same data, as in
// PyTorch. Shape and strides are in elements; views (reshape of a contiguous tensor, permute,
// transpose, slice, narrow, expand) share storage. The methods here are differentiable: a view
// of a tensor that requires grad records a graph node. Arithmetic and the other ops live in
// llmkit/ops and are free functions (ops::matmul(a, b), a + b, ...).
#pragma once

#include <initializer_list>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "llmkit/core/dtype.h"
#include "llmkit/core/error.h"

namespace llmkit {

using Shape = std::vector<int64_t>;
std::string shape_str(std::span<const int64_t> shape);  // "[2, 3, 4]"
// The product of the dims; raises llmkit::Error naming the shape if it overflows int64.
int64_t shape_numel(std::span<const int64_t> shape);
Shape contiguous_strides(std::span<const int64_t> shape);
// Raises llmkit::Error, naming `op` and the shape, unless every dim is >= 0 and the product of
// the non-zero dims (what numel, strides and byte counts multiply) fits in int64. Every shape a
// tensor is made with passes here, so sizes computed from a tensor's shape cannot wrap.
void check_shape(std::span<const int64_t> shape, const char* op);

// A buffer of bytes: from the caching allocator, or borrowed memory with a deleter (e.g. a
// memory-mapped file). Storage never changes size.
class Storage {
 public:
  explicit Storage(size_t nbytes);  // from the caching allocator; contents undefined
  Storage(void* data, size_t nbytes, void (*deleter)(void*, void*), void* ctx);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data() const { return data_; }
  size_t nbytes() const { return nbytes_; }

 private:
  void* data_ = nullptr;
  size_t nbytes_ = 0;
  size_t capacity_ = 0;  // allocator size class; 0 for borrowed memory
  void (*deleter_)(void*, void*) = nullptr;
  void* ctx_ = nullptr;
};

struct Node;
struct TensorImpl;
class Tensor;

// The autograd half of a tensor: what backward needs to find and fill its gradient, and nothing
// of its data. Graph nodes point at their inputs through this, so the graph keeps an activation
// alive only where an op saved it for its backward, never merely because it was an input.
struct AutogradMeta {
  Shape shape;  // of the tensor, for its gradient
  DType dtype = DType::F32;
  std::shared_ptr<TensorImpl> grad;  // same shape, contiguous; allocated by backward
  std::shared_ptr<Node> grad_fn;     // the op that made this tensor (null for leaves)
};

struct TensorImpl {
  std::shared_ptr<Storage> storage;
  int64_t offset = 0;  // in elements
  Shape shape;
  Shape strides;
  DType dtype = DType::F32;
  bool requires_grad = false;
  std::shared_ptr<AutogradMeta> autograd;  // set once the tensor requires grad
};

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  // --- factories (fresh contiguous tensors, requires_grad = false) ---
  static Tensor empty(const Shape& shape, DType dtype = DType::F32);  // contents undefined
  static Tensor zeros(const Shape& shape, DType dtype = DType::F32);
  static Tensor ones(const Shape& shape, DType dtype = DType::F32);
  static Tensor full(const Shape& shape, double value, DType dtype = DType::F32);
  static Tensor arange(int64_t n, DType dtype = DType::F32);  // 0, 1, ..., n-1
  // Copies `values` (numel must match shape). T decides the dtype.
  template <typename T>
  static Tensor from_vector(const std::vector<T>& values, const Shape& shape);
  static Tensor from_blob(std::shared_ptr<Storage> storage, const Shape& shape, DType dtype,
                          int64_t offset = 0);

  // --- structure ---
  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const { return impl()->shape; }
  const Shape& strides() const { return impl()->strides; }
  int64_t dim() const { return static_cast<int64_t>(impl()->shape.size()); }
  int64_t size(int64_t d) const;  // negative d counts from the end
  int64_t numel() const { return shape_numel(impl()->shape); }
  DType dtype() const { return impl()->dtype; }
  int64_t offset() const { return impl()->offset; }
  bool is_contiguous() const;
  std::string str() const;  // "f32[2, 3]"
  const std::shared_ptr<Storage>& storage() const { return impl()->storage; }
  TensorImpl* impl() const;
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }
  bool same(const Tensor& o) const { return impl_ == o.impl_; }

  // Typed pointer to the first element (checks the dtype). Contiguity is the caller's business.
  template <typename T>
  T* data() const {
    LLMKIT_CHECK(dtype_of<T>::value == dtype(), "data<", dtype_name(dtype_of<T>::value),
                 ">() on a ", str(), " tensor");
    return static_cast<T*>(raw_data());
  }
  void* raw_data() const;
  template <typename T>
  T item() const;  // the single element of a 1-element tensor
  template <typename T>
  std::vector<T> to_vector() const;  // all elements in logical (row-major) order

  // --- views and copies (differentiable) ---
  Tensor reshape(const Shape& shape) const;  // one dim may be -1; copies if not viewable
  Tensor flatten(int64_t start_dim = 0, int64_t end_dim = -1) const;
  Tensor permute(const std::vector<int64_t>& dims) const;
  Tensor transpose(int64_t d0, int64_t d1) const;
  Tensor slice(int64_t dim, int64_t start, int64_t end) const;  // [start, end), negatives ok
  Tensor narrow(int64_t dim, int64_t start, int64_t length) const;
  Tensor select(int64_t dim, int64_t index) const;  // removes `dim`
  Tensor unsqueeze(int64_t dim) const;
  Tensor squeeze(int64_t dim) const;
  Tensor expand(const Shape& shape) const;  // broadcast size-1 dims (stride 0)
  Tensor contiguous() const;                // this tensor if already contiguous, else a copy
  Tensor clone() const;                     // always a copy
  Tensor to(DType dtype) const;             // conversion; differentiable between F32 and F64
  // Copies src's values into this tensor (same shape; no autograd; dtypes converted).
  void copy_(const Tensor& src) const;
  void fill_(double value) const;
  void zero_() const { fill_(0.0); }

  // --- autograd ---
  bool requires_grad() const { return impl()->requires_grad; }
  // Marks a leaf as a parameter/input whose gradient backward() should fill.
  Tensor& requires_grad_(bool on = true);
  Tensor grad() const;  // undefined Tensor if none yet
  void zero_grad() const;
  Tensor detach() const;  // shares data, no graph
  bool is_leaf() const { return !impl()->autograd || impl()->autograd->grad_fn == nullptr; }
  // Runs reverse-mode autodiff from this tensor: a scalar, or give `grad` of the same shape.
  void backward(const Tensor& grad = Tensor()) const;
  const char* grad_fn_name() const;

 private:
  std::shared_ptr<TensorImpl> impl_;
};

}  // namespace llmkit
