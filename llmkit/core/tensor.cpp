// Tensor structure, factories, element access, copies and conversions. Views and their
// gradients are in tensor_views.cpp; the backward engine is in autograd.cpp.
#include "llmkit/core/tensor.h"

#include <cstring>
#include <sstream>

#include "llmkit/core/allocator.h"
#include "llmkit/core/autograd.h"
#include "llmkit/core/strided.h"

namespace llmkit {

std::string shape_str(std::span<const int64_t> shape) {
  std::ostringstream os;
  os << '[';
  for (size_t i = 0; i < shape.size(); ++i) os << (i ? ", " : "") << shape[i];
  os << ']';
  return os.str();
}

int64_t shape_numel(std::span<const int64_t> shape) {
  int64_t n = 1;
  for (int64_t s : shape)
    LLMKIT_CHECK(!__builtin_mul_overflow(n, s, &n), "shape ", shape_str(shape),
                 " has more elements than fit in 64 bits");
  return n;
}

void check_shape(std::span<const int64_t> shape, const char* op) {
  int64_t n = 1;
  for (int64_t s : shape) {
    LLMKIT_CHECK(s >= 0, op, ": negative dimension in shape ", shape_str(shape));
    LLMKIT_CHECK(s == 0 || !__builtin_mul_overflow(n, s, &n), op, ": shape ", shape_str(shape),
                 " is too large (its size overflows 64 bits)");
  }
}

Shape contiguous_strides(std::span<const int64_t> shape) {
  Shape st(shape.size());
  int64_t s = 1;
  for (int64_t d = static_cast<int64_t>(shape.size()) - 1; d >= 0; --d) {
    st[d] = s;
    LLMKIT_CHECK(!__builtin_mul_overflow(s, shape[d], &s), "shape ", shape_str(shape),
                 " is too large (its strides overflow 64 bits)");
  }
  return st;
}

// --- Storage ---

Storage::Storage(size_t nbytes) : nbytes_(nbytes) {
  data_ = Allocator::instance().allocate(nbytes, &capacity_);
}

Storage::Storage(void* data, size_t nbytes, void (*deleter)(void*, void*), void* ctx)
    : data_(data), nbytes_(nbytes), deleter_(deleter), ctx_(ctx) {}

Storage::~Storage() {
  if (capacity_ != 0)
    Allocator::instance().release(data_, capacity_);
  else if (deleter_ != nullptr)
    deleter_(data_, ctx_);
}

// --- factories ---

Tensor Tensor::empty(const Shape& shape, DType dtype) {
  check_shape(shape, "empty");
  size_t nbytes = 0;
  LLMKIT_CHECK(
      !__builtin_mul_overflow(static_cast<size_t>(shape_numel(shape)), dtype_size(dtype), &nbytes),
      "empty: a ", dtype_name(dtype), " tensor of shape ", shape_str(shape),
      " has more bytes than fit in 64 bits");
  auto impl = std::make_shared<TensorImpl>();
  try {
    impl->storage = std::make_shared<Storage>(nbytes);
  } catch (const std::exception&) {  // llmkit::Error from the allocator, or bad_alloc
    fail("cannot allocate ", nbytes, " bytes for tensor of shape ", shape_str(shape), " (",
         dtype_name(dtype), ")");
  }
  impl->shape = shape;
  impl->strides = contiguous_strides(shape);
  impl->dtype = dtype;
  return Tensor(std::move(impl));
}

Tensor Tensor::zeros(const Shape& shape, DType dtype) {
  Tensor t = empty(shape, dtype);
  std::memset(t.raw_data(), 0, t.numel() * dtype_size(dtype));
  return t;
}

Tensor Tensor::ones(const Shape& shape, DType dtype) {
  return full(shape, 1.0, dtype);
}

Tensor Tensor::full(const Shape& shape, double value, DType dtype) {
  Tensor t = empty(shape, dtype);
  t.fill_(value);
  return t;
}

Tensor Tensor::arange(int64_t n, DType dtype) {
  Tensor t = empty({n}, DType::F64);
  double* p = t.data<double>();
  for (int64_t i = 0; i < n; ++i) p[i] = static_cast<double>(i);
  return t.to(dtype);
}

template <typename T>
Tensor Tensor::from_vector(const std::vector<T>& values, const Shape& shape) {
  LLMKIT_CHECK(static_cast<int64_t>(values.size()) == shape_numel(shape),
               "from_vector: ", values.size(), " values do not fill shape ", shape_str(shape));
  Tensor t = empty(shape, dtype_of<T>::value);
  if (!values.empty()) std::memcpy(t.raw_data(), values.data(), values.size() * sizeof(T));
  return t;
}
template Tensor Tensor::from_vector(const std::vector<float>&, const Shape&);
template Tensor Tensor::from_vector(const std::vector<double>&, const Shape&);
template Tensor Tensor::from_vector(const std::vector<int32_t>&, const Shape&);
template Tensor Tensor::from_vector(const std::vector<uint8_t>&, const Shape&);
template Tensor Tensor::from_vector(const std::vector<bf16>&, const Shape&);
template Tensor Tensor::from_vector(const std::vector<f16>&, const Shape&);

Tensor Tensor::from_blob(std::shared_ptr<Storage> storage, const Shape& shape, DType dtype,
                         int64_t offset) {
  check_shape(shape, "from_blob");
  int64_t end = 0;  // in elements
  size_t end_bytes = 0;
  LLMKIT_CHECK(
      offset >= 0 && !__builtin_add_overflow(offset, shape_numel(shape), &end) &&
          !__builtin_mul_overflow(static_cast<size_t>(end), dtype_size(dtype), &end_bytes) &&
          end_bytes <= storage->nbytes(),
      "from_blob: shape ", shape_str(shape), " of ", dtype_name(dtype), " at offset ", offset,
      " does not fit in ", storage->nbytes(), " bytes");
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = std::move(storage);
  impl->offset = offset;
  impl->shape = shape;
  impl->strides = contiguous_strides(shape);
  impl->dtype = dtype;
  return Tensor(std::move(impl));
}

// --- structure ---

TensorImpl* Tensor::impl() const {
  LLMKIT_CHECK(impl_ != nullptr, "use of an undefined Tensor");
  return impl_.get();
}

int64_t Tensor::size(int64_t d) const {
  const int64_t n = dim();
  LLMKIT_CHECK(d >= -n && d < n, "size: dim ", d, " out of range for ", str());
  return shape()[d < 0 ? d + n : d];
}

bool Tensor::is_contiguous() const {
  int64_t expect = 1;
  for (int64_t d = dim() - 1; d >= 0; --d) {
    if (shape()[d] != 1 && strides()[d] != expect) return false;
    expect *= shape()[d];
  }
  return true;
}

std::string Tensor::str() const {
  if (!defined()) return "undefined";
  return std::string(dtype_name(dtype())) + shape_str(shape());
}

void* Tensor::raw_data() const {
  return static_cast<char*>(impl()->storage->data()) + impl()->offset * dtype_size(dtype());
}

// --- element conversion ---

namespace {

template <typename T>
double to_f64(T v) {
  if constexpr (std::is_same_v<T, bf16>)
    return bf16_to_float(v);
  else if constexpr (std::is_same_v<T, f16>)
    return f16_to_float(v);
  else
    return static_cast<double>(v);
}

template <typename T>
T from_f64(double v) {
  if constexpr (std::is_same_v<T, bf16>)
    return float_to_bf16(static_cast<float>(v));
  else if constexpr (std::is_same_v<T, f16>)
    return float_to_f16(static_cast<float>(v));
  else
    return static_cast<T>(v);
}

template <typename Fn>
void dispatch_dtype(DType t, Fn&& fn) {
  switch (t) {
    case DType::F32:
      fn(float{});
      break;
    case DType::F64:
      fn(double{});
      break;
    case DType::I32:
      fn(int32_t{});
      break;
    case DType::U8:
      fn(uint8_t{});
      break;
    case DType::BF16:
      fn(bf16{});
      break;
    case DType::F16:
      fn(f16{});
      break;
  }
}

}  // namespace

void Tensor::copy_(const Tensor& src) const {
  LLMKIT_CHECK(shape() == src.shape(), "copy_: shape ", src.str(), " into ", str());
  const size_t es = dtype_size(dtype());
  char* dbase = static_cast<char*>(raw_data());
  const char* sbase = static_cast<const char*>(src.raw_data());
  if (dtype() == src.dtype()) {
    if (is_contiguous() && src.is_contiguous()) {
      std::memmove(dbase, sbase, numel() * es);
      return;
    }
    detail::for_each_row(shape(), strides(), src.strides(), false,
                         [&](int64_t od, int64_t os, int64_t n, int64_t sd, int64_t ss) {
                           char* d = dbase + od * es;
                           const char* s = sbase + os * es;
                           if (sd == 1 && ss == 1) {
                             std::memcpy(d, s, n * es);
                             return;
                           }
                           for (int64_t i = 0; i < n; ++i)
                             std::memcpy(d + i * sd * es, s + i * ss * es, es);
                         });
    return;
  }
  dispatch_dtype(dtype(), [&](auto dtag) {
    using D = decltype(dtag);
    dispatch_dtype(src.dtype(), [&](auto stag) {
      using S = decltype(stag);
      D* d = reinterpret_cast<D*>(dbase);
      const S* s = reinterpret_cast<const S*>(sbase);
      detail::for_each_row(shape(), strides(), src.strides(), false,
                           [&](int64_t od, int64_t os, int64_t n, int64_t sd, int64_t ss) {
                             for (int64_t i = 0; i < n; ++i)
                               d[od + i * sd] = from_f64<D>(to_f64(s[os + i * ss]));
                           });
    });
  });
}

void Tensor::fill_(double value) const {
  dispatch_dtype(dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T v = from_f64<T>(value);
    T* p = static_cast<T*>(raw_data());
    detail::for_each_row(shape(), strides(), strides(), false,
                         [&](int64_t o, int64_t, int64_t n, int64_t s, int64_t) {
                           for (int64_t i = 0; i < n; ++i) p[o + i * s] = v;
                         });
  });
}

template <typename T>
std::vector<T> Tensor::to_vector() const {
  Tensor c = Tensor::empty(shape(), dtype_of<T>::value);
  c.copy_(*this);
  const T* p = c.data<T>();
  return std::vector<T>(p, p + c.numel());
}
template std::vector<float> Tensor::to_vector() const;
template std::vector<double> Tensor::to_vector() const;
template std::vector<int32_t> Tensor::to_vector() const;
template std::vector<uint8_t> Tensor::to_vector() const;

template <typename T>
T Tensor::item() const {
  LLMKIT_CHECK(numel() == 1, "item: tensor ", str(), " has ", numel(), " elements, not 1");
  return to_vector<T>()[0];
}
template float Tensor::item() const;
template double Tensor::item() const;
template int32_t Tensor::item() const;

}  // namespace llmkit
