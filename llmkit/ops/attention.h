// Scaled dot-product attention, fused (kernels/cpu/attention: flash-attention tiling, at most one
// block of the T x T score matrix per thread at a time, in forward and backward).
//   softmax(q k^T * scale + bias + mask) v
// with optional causal masking (queries aligned to the end of the keys, the KV-cache rule),
// key padding masks, an additive bias (T5's relative positions) and grouped-query heads (k and v
// may have fewer heads than q; each serves NH / NKV query heads).
#pragma once

#include "llmkit/core/tensor.h"

namespace llmkit::ops {

struct AttentionOptions {
  bool causal = false;
  Tensor key_mask;  // u8 [B, Tk], 1 = attend; undefined = all keys
  // i32 [B, T] (self-attention only: Tq == Tk): query i sees key j only when segments[b, i] ==
  // segments[b, j] -- packed sequences (several short examples in one row, SFT packing) that
  // never attend across example boundaries. Undefined = one segment per row.
  Tensor segments;
  Tensor bias;       // [NH, Tq, Tk] additive, same dtype as q; undefined = none
  double scale = 0;  // 0 means 1 / sqrt(head size)
};

// q [B, NH, Tq, HS], k, v [B, NKV, Tk, HS] -> [B, NH, Tq, HS].
Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                                    const AttentionOptions& opt = {});
// The common case: no padding, no bias, default scale.
Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v, bool causal);

}  // namespace llmkit::ops
