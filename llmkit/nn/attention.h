// MultiHeadAttention (2.3.4 멀티 헤드 어텐션): the QKV projection, heads split from it, the fused
// attention op, and the output projection. Two parameter layouts: GPT-2's fused c_attn (q|k|v rows
// stacked) + c_proj, and Hugging Face llama's separate q_proj, k_proj, v_proj, o_proj (split_qkv).
// Grouped-query heads: n_kv_head < n_head shares each key/value head among n_head / n_kv_head query
// heads (llama 2/3). With a KVCache the keys and values of earlier tokens are kept, so generating
// one token costs one row of attention instead of recomputing the whole sequence. Packed rows
// (PackedRows: several examples in one row, SFT packing) attend within their example only.
#pragma once

#include "llmkit/core/random.h"
#include "llmkit/nn/layers.h"
#include "llmkit/nn/positional.h"
#include "llmkit/ops/rope.h"

namespace llmkit::nn {

// Keys and values of one layer for a batch: [B, NKV, capacity, HS], the first `len` positions
// filled. Inference only (no autograd through the cache).
struct KVCache {
  Tensor k, v;
  int64_t len = 0;
};

// Packed rows (models::GPT::forward_packed): the example (segment id) of every token and its
// position within that example, both i32 [B, T]; segments may be undefined (one example per row,
// positions alone: models::GPT::forward_rows). Attention masks across segments; RoPE rotates
// by the positions. ALiBi needs nothing more: its bias depends on i - j, the same within an
// example wherever it sits in the row.
struct PackedRows {
  Tensor segments, positions;
};

struct AttentionConfig {
  int64_t n_embd = 0, n_head = 0, n_kv_head = 0;
  bool bias = true;
  bool causal = true;
  PosEncoding pos = PosEncoding::Learned;
  double rope_theta = 10000.0;
  ops::RopeScaling rope_scaling;
  double dropout = 0.0;
  // Llama layout: q_proj/k_proj/v_proj/o_proj instead of c_attn/c_proj. `bias` then applies to
  // all four; qkv_bias adds biases to q/k/v only (Qwen2).
  bool split_qkv = false;
  bool qkv_bias = false;
};

class MultiHeadAttention : public Module {
 public:
  MultiHeadAttention(const AttentionConfig& cfg, Generator* gen, DType dt = DType::F32);
  // x [B, T, C] -> [B, T, C]. key_mask u8 [B, Tk] or undefined. With a cache, x holds the
  // positions cache->len ... cache->len + T - 1 and the cache grows by T. packed: x holds packed
  // rows; with a cache, its positions place the new tokens (left-padded rows decoded together,
  // models::GPT::forward_rows) and its segments, when defined, need an empty cache.
  Tensor forward(const Tensor& x, KVCache* cache = nullptr, const Tensor& key_mask = Tensor(),
                 const PackedRows* packed = nullptr);
  // Allocates a cache for `batch` sequences of up to `capacity` tokens.
  KVCache make_cache(int64_t batch, int64_t capacity) const;

  std::shared_ptr<Linear> c_attn, c_proj;                  // GPT-2 layout
  std::shared_ptr<Linear> q_proj, k_proj, v_proj, o_proj;  // llama layout (split_qkv)

 private:
  AttentionConfig cfg_;
  int64_t head_size_;
  std::vector<double> inv_freq_;  // RoPE
  // Dropout on the output projection. The fused kernel has no dropout on the attention
  // probabilities themselves (nanoGPT's attn_dropout); with dropout = 0, the default, they agree.
  std::shared_ptr<Dropout> resid_dropout_;
};

}  // namespace llmkit::nn
