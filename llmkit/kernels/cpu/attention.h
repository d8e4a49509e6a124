// Fused scaled-dot-product attention, forward and backward (FlashAttention-2 style, on the CPU).
// The T x T score matrix is never materialised: each thread holds one kBlock x kBlock tile of
// scores at a time and keeps a running (online) softmax over key blocks. Causal and key-padding
// masks, segment masks (packed sequences), grouped-query attention (several query heads share one
// key/value head) and an additive score bias (T5 relative positions) are handled inside the tile
// loop. This is the kernel only;
// the differentiable op with shape checks on tensors lives in ops/.
//
// Glossary: B batch, NH query heads, NKV key/value heads, Tq query length, Tk key length,
// HS head size.
#pragma once

#include <cstdint>

namespace llmkit::kernels {

struct AttentionShape {
  int64_t B, NH, NKV, Tq, Tk, HS;  // NH % NKV == 0: query head h reads kv head h / (NH / NKV)
  // Query i (0-based) sees keys j <= i + (Tk - Tq): queries are aligned to the END of the keys,
  // as in a KV cache (Tq == Tk gives the usual lower-triangular mask).
  bool causal;
  double scale;  // score = scale * q.k + bias; usually 1 / sqrt(HS)
};

// Query rows and keys per tile. Scratch: each thread keeps one thread_local buffer of tiles,
// about (8 * 64 * HSp + 2 * 64 * 64) elements for backward (HSp = HS rounded up to a vector;
// 160 KiB in float at HS = 64), grown to the largest call and held until the thread exits, so
// steady-state calls allocate nothing.
inline constexpr int64_t kAttentionBlock = 64;

// out = softmax(scale * q k^T + bias + mask) v, per batch and query head.
//   out      [B, NH, Tq, HS]
//   lse      [B, NH, Tq]   log-sum-exp of each row's scaled+biased+masked scores (for backward);
//                          -inf for a row that sees no key (its out row is 0)
//   q        [B, NH, Tq, HS]
//   k, v     [B, NKV, Tk, HS]
//   key_mask [B, Tk]       1 = attend, 0 = padding; nullptr = all keys visible
//   segments [B, T]        self-attention only (Tq == Tk = T): query i sees key j only when
//                          segments[b, i] == segments[b, j] (several examples packed in one row);
//                          nullptr = one segment. A tile whose query and key blocks hold disjoint
//                          ranges of segment ids is skipped, so packed rows of short examples cost
//                          about the tiles near the diagonal.
//   bias     [NH, Tq, Tk]  additive score bias, broadcast over the batch; nullptr = none
// All tensors contiguous row-major; no alignment required. Threads: OpenMP over
// (batch, head, query block) with llmkit::num_threads() threads; the result does not depend on
// the thread count (every element is computed by one thread in a fixed order).
template <typename T>
void attention_forward(T* out, T* lse, const T* q, const T* k, const T* v, const uint8_t* key_mask,
                       const int32_t* segments, const T* bias, const AttentionShape& s);

// Accumulates (+=) the gradients of attention_forward into dq [B,NH,Tq,HS], dk, dv
// [B,NKV,Tk,HS] and, if not nullptr, dbias [NH,Tq,Tk] (summed over the batch). out and lse are
// attention_forward's outputs for the same inputs. Rows that see no key contribute nothing.
// Threads: OpenMP over (batch, kv head) -- each task owns dk/dv of its kv head and dq of the
// query heads that share it -- or over kv heads alone when dbias is given (dbias sums over the
// batch). No atomics, no per-thread gradient copies; bit-identical for any thread count. With
// fewer tasks than threads (e.g. B = 1 and NKV = 1) some threads idle.
template <typename T>
void attention_backward(T* dq, T* dk, T* dv, T* dbias, const T* dout, const T* q, const T* k,
                        const T* v, const T* out, const T* lse, const uint8_t* key_mask,
                        const int32_t* segments, const T* bias, const AttentionShape& s);

}  // namespace llmkit::kernels
