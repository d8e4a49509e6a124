#include "llmkit/nn/attention.h"

namespace llmkit::nn {

MultiHeadAttention::MultiHeadAttention(const AttentionConfig& cfg, Generator* gen, DType dt)
    : cfg_(cfg) {
  LLMKIT_CHECK(cfg.n_head > 0 && cfg.n_embd % cfg.n_head == 0, "attention: n_embd ", cfg.n_embd,
               " is not divisible by n_head ", cfg.n_head);
  if (cfg_.n_kv_head == 0) cfg_.n_kv_head = cfg.n_head;
  LLMKIT_CHECK(cfg.n_head % cfg_.n_kv_head == 0, "attention: n_head ", cfg.n_head,
               " is not a multiple of n_kv_head ", cfg_.n_kv_head);
  head_size_ = cfg.n_embd / cfg.n_head;
  const int64_t qkv = (cfg.n_head + 2 * cfg_.n_kv_head) * head_size_;
  if (cfg.split_qkv) {
    const int64_t kv = cfg_.n_kv_head * head_size_;
    const bool qb = cfg.bias || cfg.qkv_bias;
    q_proj = register_module("q_proj", std::make_shared<Linear>(cfg.n_embd, cfg.n_embd, qb, dt));
    k_proj = register_module("k_proj", std::make_shared<Linear>(cfg.n_embd, kv, qb, dt));
    v_proj = register_module("v_proj", std::make_shared<Linear>(cfg.n_embd, kv, qb, dt));
    o_proj =
        register_module("o_proj", std::make_shared<Linear>(cfg.n_embd, cfg.n_embd, cfg.bias, dt));
  } else {
    c_attn = register_module("c_attn", std::make_shared<Linear>(cfg.n_embd, qkv, cfg.bias, dt));
    c_proj =
        register_module("c_proj", std::make_shared<Linear>(cfg.n_embd, cfg.n_embd, cfg.bias, dt));
  }
  if (cfg.pos == PosEncoding::Rope)
    inv_freq_ = ops::rope_inv_freq(head_size_, cfg.rope_theta, cfg.rope_scaling);
  resid_dropout_ = register_module("resid_dropout", std::make_shared<Dropout>(cfg.dropout, gen));
}

KVCache MultiHeadAttention::make_cache(int64_t batch, int64_t capacity) const {
  const DType dt = (c_attn ? c_attn : q_proj)->dtype();
  return {Tensor::zeros({batch, cfg_.n_kv_head, capacity, head_size_}, dt),
          Tensor::zeros({batch, cfg_.n_kv_head, capacity, head_size_}, dt), 0};
}

Tensor MultiHeadAttention::forward(const Tensor& x, KVCache* cache, const Tensor& key_mask,
                                   const PackedRows* packed) {
  const int64_t B = x.size(0), T = x.size(1), C = cfg_.n_embd, NH = cfg_.n_head,
                NKV = cfg_.n_kv_head, HS = head_size_;
  LLMKIT_CHECK(x.dim() == 3 && x.size(2) == C, "attention: input ", x.str(), " is not [B, T, ", C,
               "]");
  const int64_t pos0 = cache ? cache->len : 0;
  // With a cache, packed rows give per-token positions (left-padded rows decoded together); their
  // segments (queries against keys of the same T positions) only fit an empty cache.
  LLMKIT_CHECK(packed == nullptr || cache == nullptr || !packed->segments.defined() || pos0 == 0,
               "attention: packed segments take an empty KV cache (", pos0, " positions used)");
  // qkv [B, T, NH + 2 NKV, HS] -> q [B, NH, T, HS], k and v [B, NKV, T, HS]
  Tensor q, k, v;
  if (c_attn) {
    Tensor qkv = c_attn->forward(x).reshape({B, T, NH + 2 * NKV, HS});
    q = qkv.slice(2, 0, NH).transpose(1, 2);
    k = qkv.slice(2, NH, NH + NKV).transpose(1, 2);
    v = qkv.slice(2, NH + NKV, NH + 2 * NKV).transpose(1, 2);
  } else {
    q = q_proj->forward(x).reshape({B, T, NH, HS}).transpose(1, 2);
    k = k_proj->forward(x).reshape({B, T, NKV, HS}).transpose(1, 2);
    v = v_proj->forward(x).reshape({B, T, NKV, HS}).transpose(1, 2);
  }
  if (cfg_.pos == PosEncoding::Rope && packed != nullptr) {
    q = ops::rope(q, packed->positions, inv_freq_);
    k = ops::rope(k, packed->positions, inv_freq_);
  } else if (cfg_.pos == PosEncoding::Rope) {
    q = ops::rope(q, pos0, inv_freq_);
    k = ops::rope(k, pos0, inv_freq_);
  }
  if (cache != nullptr) {
    const int64_t cap = cache->k.size(2);
    LLMKIT_CHECK(pos0 + T <= cap, "attention: KV cache of ", cap, " positions is full (", pos0,
                 " used, ", T, " more asked)");
    cache->k.slice(2, pos0, pos0 + T).copy_(k);
    cache->v.slice(2, pos0, pos0 + T).copy_(v);
    cache->len = pos0 + T;
    k = cache->k.slice(2, 0, pos0 + T);
    v = cache->v.slice(2, 0, pos0 + T);
  }
  ops::AttentionOptions opt;
  opt.causal = cfg_.causal;
  opt.key_mask = key_mask;
  if (packed != nullptr && packed->segments.defined()) opt.segments = packed->segments;
  if (cfg_.pos == PosEncoding::Alibi) opt.bias = alibi_bias(NH, T, pos0 + T, pos0, x.dtype());
  Tensor y = ops::scaled_dot_product_attention(q, k, v, opt);  // [B, NH, T, HS]
  y = y.transpose(1, 2).reshape({B, T, C});
  return resid_dropout_->forward((c_proj ? c_proj : o_proj)->forward(y));
}

}  // namespace llmkit::nn
