// GPT: the decoder-only transformer (2.1; the family every modern LLM descends from), as nanoGPT
// writes it, with the variants the notes and llama use selected by config.json:
//   x = wte[ids] (+ wpe[pos] | sinusoidal)            token + absolute position embeddings
//   for each block:  x = x + attn(ln_1(x))            pre-LN (default; GPT-2)
//                    x = x + mlp(ln_2(x))
//     or post-LN:    x = ln_1(x + attn(x)); x = ln_2(x + mlp(x))    (the original transformer)
//   logits = ln_f(x) W_out^T                          W_out = wte (tied) or lm_head
// Parameter names, stored [out, in]: arch "gpt" uses GPT-2's (wte.weight,
// h.{i}.attn.c_attn.weight, ...); arch "llama" uses Hugging Face llama's
// (model.embed_tokens.weight, model.layers.{i}.self_attn.q_proj.weight, ..., model.norm.weight,
// lm_head.weight) with separate q/k/v/o and gate/up/down projections. upgrade_gpt_state() maps old
// fused llama checkpoints.
#pragma once

#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "llmkit/nn/attention.h"
#include "llmkit/nn/feedforward.h"
#include "llmkit/ops/rope.h"

namespace llmkit::models {

struct GPTConfig {
  std::string arch = "gpt";
  int64_t n_layer = 4, n_head = 4, n_kv_head = 0, n_embd = 128, block_size = 128, vocab_size = 256;
  int64_t ffn_hidden = 0;  // 0: 4 n_embd (gelu) or 8/3 n_embd rounded up to 64 (swiglu)
  std::string pos_encoding = "learned";  // learned | sinusoidal | rope | alibi
  std::string norm = "layernorm";        // layernorm | rmsnorm
  std::string activation = "gelu";       // gelu | swiglu
  bool bias = true;
  bool tie_embeddings = true;
  bool post_ln = false;
  double dropout = 0.0;
  double norm_eps = 1e-5;
  double rope_theta = 10000.0;
  ops::RopeScaling rope_scaling;  // type "": none
  // Llama layout only: biases on q/k/v/o (Llama's attention_bias) or on q/k/v only (Qwen2).
  bool attention_bias = false;
  bool qkv_bias = false;
  // Special token ids of a pretrained model (-1 / empty: unknown); generation stops at eos.
  int64_t bos_token_id = -1;
  std::vector<int64_t> eos_token_ids;

  bool llama_layout() const { return arch == "llama"; }
  int64_t hidden() const;
  int64_t kv_heads() const { return n_kv_head > 0 ? n_kv_head : n_head; }
  void validate() const;  // Error naming the field
  static GPTConfig from_json(const nlohmann::json& j);
  nlohmann::json to_json() const;
  static GPTConfig load(const std::string& path);  // config.json
};

class Block : public nn::Module {
 public:
  Block(const GPTConfig& c, Generator* gen, DType dt);
  Tensor forward(const Tensor& x, nn::KVCache* cache, const Tensor& key_mask,
                 const nn::PackedRows* packed = nullptr);

  std::shared_ptr<nn::Norm> ln_1, ln_2;
  std::shared_ptr<nn::MultiHeadAttention> attn;
  std::shared_ptr<nn::FeedForward> mlp;

 private:
  bool post_ln_;
};

class GPT : public nn::Module {
 public:
  // Builds the model and initialises it as GPT-2 does (seeded): N(0, 0.02) weights, residual
  // projections N(0, 0.02 / sqrt(2 n_layer)), zero biases, unit norms.
  // dt: F32 for training and inference; F64 for gradient checks. init = false leaves the
  // weights zero (a loader fills them next).
  explicit GPT(const GPTConfig& config, uint64_t seed = 0, DType dt = DType::F32, bool init = true);

  // ids i32 [B, T] -> logits [B, T, V]. With caches (one per layer, from make_caches), ids are
  // the next T positions after what the caches hold.
  Tensor forward(const Tensor& ids, std::vector<nn::KVCache>* caches = nullptr,
                 const Tensor& key_mask = Tensor());
  // Packed rows (SFT packing): segments i32 [B, T] numbers the examples in each row (equal
  // values are one example, contiguous). Each example attends only to itself and its positions
  // restart at 0 where it starts, so the logits of every example equal those of forward() on the
  // example alone (up to float rounding). -> logits [B, T, V]. No caches. Segment id -1 marks
  // padding: position 0, attends only to padding; its logits are meaningless. An Error when an
  // example's tokens are not contiguous.
  Tensor forward_packed(const Tensor& ids, const Tensor& segments);
  // Rows of different lengths decoded together (infer::generate_batch): each row is left-padded
  // with pad[b] tokens (any id) at the front of its caches, so the rows end together and every
  // step appends one column. ids i32 [B, T] are the next T columns; the first call (empty
  // caches) holds the padding and at least one real token per row, later calls only real tokens.
  // Each row keeps its own positions (0 at its first real token) and no token attends to
  // padding, so each row's logits equal those of forward() on the row alone (up to float
  // rounding). -> the logits of the last column [B, V].
  Tensor forward_rows(const Tensor& ids, std::vector<nn::KVCache>& caches,
                      std::span<const int64_t> pad);
  // The final hidden states ln_f(x) [B, T, C] before the LM head (what a task head reads);
  // key_mask u8 [B, T] (1 = real token) or undefined. No caches.
  Tensor hidden(const Tensor& ids, const Tensor& key_mask = Tensor());
  // The LM head over hidden states [B, T, C] (hidden()'s output) -> logits [B, T, V]: PPO's
  // policy reads both from one pass (logits and its value head's input).
  Tensor lm_logits(const Tensor& hidden) const;
  // Mean next-token cross-entropy of forward(ids) against targets [B, T] (-100 = ignore).
  Tensor loss(const Tensor& ids, const Tensor& targets);
  std::vector<nn::KVCache> make_caches(int64_t batch, int64_t capacity) const;

  const GPTConfig& config() const { return cfg_; }
  Generator& dropout_generator() { return gen_; }
  const Generator& dropout_generator() const { return gen_; }
  void init_weights(uint64_t seed);

  std::shared_ptr<nn::Embedding> wte, wpe;
  std::vector<std::shared_ptr<Block>> h;
  std::shared_ptr<nn::Norm> ln_f;
  std::shared_ptr<nn::Linear> lm_head;  // null when tied

 private:
  Tensor hidden_states(const Tensor& ids, std::vector<nn::KVCache>* caches, const Tensor& key_mask,
                       const nn::PackedRows* packed = nullptr);
  GPTConfig cfg_;
  Generator gen_;
  Tensor sinusoidal_;  // [block_size, C] when pos_encoding == sinusoidal
  std::shared_ptr<nn::Dropout> drop_;
};

// A state dict written by an older llmkit for arch "llama" (GPT-2 names, fused c_attn and c_fc)
// mapped to the llama names: c_attn split into q/k/v rows, c_fc into gate/up. Any other state
// (already llama names, or arch "gpt") comes back unchanged.
std::map<std::string, Tensor> upgrade_gpt_state(const GPTConfig& c,
                                                std::map<std::string, Tensor> state);

}  // namespace llmkit::models
