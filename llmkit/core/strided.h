// Strided iteration over one or two tensors of the same logical shape: the loop every
// copy, conversion and gradient accumulation in core is built on. Rows are the last dimension;
// the outer index is unravelled once per row. Internal to core and ops.
#pragma once

#include <cstdint>

#include "llmkit/core/parallel.h"
#include "llmkit/core/tensor.h"

namespace llmkit::detail {

// Calls fn(a_off, b_off, n, a_inner_stride, b_inner_stride) for each row of `shape`, where the
// offsets are element offsets into a and b. Rows run in parallel unless `serial` (needed when a
// has zero strides and several rows write the same elements).
template <typename Fn>
void for_each_row(const Shape& shape, const Shape& sa, const Shape& sb, bool serial, Fn&& fn) {
  const int64_t nd = static_cast<int64_t>(shape.size());
  if (nd == 0) {
    fn(int64_t{0}, int64_t{0}, int64_t{1}, int64_t{1}, int64_t{1});
    return;
  }
  const int64_t inner = shape[nd - 1];
  if (inner == 0) return;
  int64_t rows = 1;
  for (int64_t d = 0; d + 1 < nd; ++d) rows *= shape[d];
  if (rows == 0) return;
  auto run = [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      int64_t rem = r, oa = 0, ob = 0;
      for (int64_t d = nd - 2; d >= 0; --d) {
        const int64_t i = rem % shape[d];
        rem /= shape[d];
        oa += i * sa[d];
        ob += i * sb[d];
      }
      fn(oa, ob, inner, sa[nd - 1], sb[nd - 1]);
    }
  };
  if (serial)
    run(0, rows);
  else
    parallel_for(rows, (1 << 15) / (inner + 1) + 1, run);
}

// Calls fn(oa, ob, oc, n, sa, sb, sc) per row for three tensors of one logical shape.
template <typename Fn>
void for_each_row3(const Shape& shape, const Shape& sa, const Shape& sb, const Shape& sc, Fn&& fn) {
  const int64_t nd = static_cast<int64_t>(shape.size());
  if (nd == 0) {
    fn(int64_t{0}, int64_t{0}, int64_t{0}, int64_t{1}, int64_t{1}, int64_t{1}, int64_t{1});
    return;
  }
  const int64_t inner = shape[nd - 1];
  int64_t rows = 1;
  for (int64_t d = 0; d + 1 < nd; ++d) rows *= shape[d];
  if (rows == 0 || inner == 0) return;
  parallel_for(rows, (1 << 15) / (inner + 1) + 1, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      int64_t rem = r, oa = 0, ob = 0, oc = 0;
      for (int64_t d = nd - 2; d >= 0; --d) {
        const int64_t i = rem % shape[d];
        rem /= shape[d];
        oa += i * sa[d];
        ob += i * sb[d];
        oc += i * sc[d];
      }
      fn(oa, ob, oc, inner, sa[nd - 1], sb[nd - 1], sc[nd - 1]);
    }
  });
}

// dst += src for f32/f64 tensors of one shape; dst may be a strided view of another tensor's
// buffer (zero strides allowed: those rows then run serially). No autograd.
void add_into(const Tensor& dst, const Tensor& src);

}  // namespace llmkit::detail
