// Element types. F32 is the compute type; F64 runs the same ops for finite-difference gradient
// checks; I32 holds token ids and targets; U8 holds masks; BF16 and F16 are storage types
// (weights on disk, halved memory) converted to F32 for compute.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "llmkit/core/error.h"

namespace llmkit {

enum class DType : uint8_t { F32, F64, I32, U8, BF16, F16 };

constexpr size_t dtype_size(DType t) {
  switch (t) {
    case DType::F64:
      return 8;
    case DType::F32:
    case DType::I32:
      return 4;
    case DType::BF16:
    case DType::F16:
      return 2;
    case DType::U8:
      return 1;
  }
  return 0;
}

const char* dtype_name(DType t);
bool dtype_is_float(DType t);  // F32, F64, BF16, F16

// C++ type -> DType, for typed accessors (Tensor::data<T>()).
template <typename T>
struct dtype_of;
template <>
struct dtype_of<float> {
  static constexpr DType value = DType::F32;
};
template <>
struct dtype_of<double> {
  static constexpr DType value = DType::F64;
};
template <>
struct dtype_of<int32_t> {
  static constexpr DType value = DType::I32;
};
template <>
struct dtype_of<uint8_t> {
  static constexpr DType value = DType::U8;
};

// bfloat16: the upper 16 bits of an IEEE float; rounding to nearest even, NaN kept quiet.
struct bf16 {
  uint16_t bits;
};
// IEEE binary16.
struct f16 {
  uint16_t bits;
};
template <>
struct dtype_of<bf16> {
  static constexpr DType value = DType::BF16;
};
template <>
struct dtype_of<f16> {
  static constexpr DType value = DType::F16;
};

inline float bf16_to_float(bf16 h) {
  uint32_t u = static_cast<uint32_t>(h.bits) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

inline bf16 float_to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return bf16{static_cast<uint16_t>((u >> 16) | 0x40)};
  u += 0x7fffu + ((u >> 16) & 1u);  // round to nearest, ties to even
  return bf16{static_cast<uint16_t>(u >> 16)};
}

float f16_to_float(f16 h);
f16 float_to_f16(float f);

// Calls fn(T{}) with T = float or double for an f32 or f64 dtype; other dtypes are an error
// naming `op`.
template <typename Fn>
void dispatch_float(DType t, const char* op, Fn&& fn) {
  if (t == DType::F32)
    fn(float{});
  else if (t == DType::F64)
    fn(double{});
  else
    fail(op, ": expected an f32 or f64 tensor, got ", dtype_name(t));
}

}  // namespace llmkit
