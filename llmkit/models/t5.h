// T5 and BART: the encoder-decoder transformer (2.1 트랜스포머 아키텍처란: 인코더, 디코더, 크로스
// 어텐션; "BERT, GPT, T5 등 트랜스포머를 활용한 아키텍처": 인코더-디코더). The encoder reads the
// source with bidirectional self-attention; the decoder writes the target with causal
// self-attention plus cross-attention over the encoder output, as T5ForConditionalGeneration does:
//   enc = embed(src) (+ embed_positions)                 shared token table
//   each encoder block:  x = x + SelfAttention(layer_norm(x), bias = relative positions, pad mask)
//                        x = x + DenseReluDense(layer_norm(x))
//   each decoder block:  y = y + SelfAttention(layer_norm(y), causal)
//                        y = y + EncDecAttention(layer_norm(y), keys/values = enc, pad mask)
//                        y = y + DenseReluDense(layer_norm(y))
//   logits = final_layer_norm(y) W^T                     W = shared (tied; T5 scales by C^-0.5)
// T5 ("arch": "t5"): bucketed relative position bias (computed by the first block of each stack
// and shared by all), RMSNorm, no biases, no 1/sqrt(d) attention scaling. BART ("arch": "bart"):
// the same code with learned absolute positions, LayerNorm, GELU and biases. We keep BART
// pre-LN (as mBART does) rather than BART's post-LN: one block layout for both, and pre-LN
// trains more stably at the small sizes this toolkit targets.
// Parameter names are Hugging Face's T5 names (shared.weight,
// encoder.block.{i}.layer.0.SelfAttention.q.weight,
// decoder.block.{i}.layer.1.EncDecAttention.k.weight,
// ...relative_attention_bias.weight, ...layer.1.DenseReluDense.wi.weight), stored [out, in].
#pragma once

#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "llmkit/nn/attention.h"
#include "llmkit/nn/layers.h"

namespace llmkit::models {

struct T5Config {
  std::string arch = "t5";  // t5 | bart
  int64_t vocab_size = 256;
  int64_t n_layer = 2;          // encoder blocks
  int64_t n_decoder_layer = 0;  // 0: n_layer
  int64_t n_head = 4, n_embd = 128;
  int64_t d_kv = 0;                       // head size; 0: n_embd / n_head
  int64_t ffn_hidden = 0;                 // 0: 4 n_embd
  std::string activation = "relu";        // relu | gelu (exact erf) | gated-gelu (tanh, T5 v1.1)
  std::string norm = "rmsnorm";           // rmsnorm | layernorm
  std::string pos_encoding = "relative";  // relative (T5) | learned (BART)
  int64_t num_buckets = 32, max_distance = 128;  // relative position buckets
  int64_t block_size = 128;                      // the longest source and the longest target
  bool tie_embeddings = true;
  bool bias = false;  // biases in the linear layers and LayerNorms (BART)
  double dropout = 0.0;
  double norm_eps = 1e-6;
  int64_t pad_id = 0, eos_id = 1, decoder_start_id = 0;

  int64_t decoder_layers() const { return n_decoder_layer > 0 ? n_decoder_layer : n_layer; }
  int64_t head_size() const { return d_kv > 0 ? d_kv : n_embd / n_head; }
  int64_t hidden() const { return ffn_hidden > 0 ? ffn_hidden : 4 * n_embd; }
  void validate() const;  // Error naming the field
  static T5Config from_json(const nlohmann::json& j);
  nlohmann::json to_json() const;
  static T5Config load(const std::string& path);  // config.json (or a training config's "model")
};

// T5's bucket of a relative position (key - query): exact buckets for short distances, then
// logarithmically wider ones up to max_distance; bidirectional splits the buckets between the
// two signs (encoder), otherwise only the past counts (decoder). As Hugging Face's
// _relative_position_bucket, computed in float32 as it does.
int32_t relative_position_bucket(int64_t relative_position, bool bidirectional, int64_t num_buckets,
                                 int64_t max_distance);

// q, k, v, o projections [NH * HS, C] / [C, NH * HS]; the first block of a stack also owns the
// relative_attention_bias table [num_buckets, NH].
class T5Attention : public nn::Module {
 public:
  T5Attention(const T5Config& c, bool has_relative_bias, DType dt);
  // x [B, T, C] -> [B, NH, T, HS] through q (or k, v).
  Tensor heads(const nn::Linear& proj, const Tensor& x) const;
  // Self-attention of x [B, T, C]; with a cache, x holds the positions after cache->len.
  Tensor self_attention(const Tensor& x, const Tensor& bias, const Tensor& key_mask, bool causal,
                        nn::KVCache* cache);
  // Cross-attention of x [B, T, C] over keys and values [B, NH, Ts, HS] (from heads(k/v, enc)).
  Tensor cross_attention(const Tensor& x, const Tensor& k, const Tensor& v, const Tensor& key_mask);
  // Position bias [NH, Tq, Tk] for queries at pos0 ... pos0 + Tq - 1 and keys 0 ... Tk - 1.
  Tensor position_bias(int64_t Tq, int64_t Tk, int64_t pos0, bool bidirectional) const;

  std::shared_ptr<nn::Linear> q, k, v, o;
  std::shared_ptr<nn::Embedding> relative_attention_bias;  // null except in block 0

 private:
  Tensor attend(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& bias,
                const Tensor& key_mask, bool causal);
  int64_t n_head_, head_size_, num_buckets_, max_distance_;
  double scale_;  // 1 for T5 (folded into the init), 0 (= 1/sqrt(HS)) for BART
};

// The feed-forward layer: wo(act(wi(x))), or wo(gelu(wi_0(x)) * wi_1(x)) for gated-gelu.
class T5DenseAct : public nn::Module {
 public:
  T5DenseAct(const T5Config& c, Generator* gen, DType dt);
  Tensor forward(const Tensor& x) const;
  std::shared_ptr<nn::Linear> wi, wi_0, wi_1, wo;

 private:
  std::string act_;
  std::shared_ptr<nn::Dropout> dropout_;
};

// One block. layer.0 = self-attention, then (decoder) layer.1 = cross-attention, then the
// feed-forward layer; each sub-layer is pre-norm with a residual.
class T5Block : public nn::Module {
 public:
  T5Block(const T5Config& c, bool is_decoder, bool has_relative_bias, Generator* gen, DType dt);
  // x [B, T, C]. Decoder: cross_k / cross_v [B, NH, Ts, HS] and the source mask.
  Tensor forward(const Tensor& x, const Tensor& bias, const Tensor& self_mask, nn::KVCache* cache,
                 const Tensor& cross_k, const Tensor& cross_v, const Tensor& cross_mask);

  std::shared_ptr<T5Attention> self_attn, cross_attn;  // cross_attn null in the encoder
  std::shared_ptr<nn::Norm> self_norm, cross_norm, ff_norm;
  std::shared_ptr<T5DenseAct> ff;

 private:
  bool is_decoder_;
  std::shared_ptr<nn::Dropout> dropout_;
};

class T5Stack : public nn::Module {
 public:
  T5Stack(const T5Config& c, bool is_decoder, Generator* gen, DType dt);
  std::vector<std::shared_ptr<T5Block>> block;
  std::shared_ptr<nn::Norm> final_layer_norm;
  std::shared_ptr<nn::Embedding> embed_positions;  // learned positions only
};

// What a decoder keeps while generating: each layer's self-attention keys/values, and the
// cross-attention keys/values of the encoder output, computed once.
struct T5DecodeState {
  std::vector<nn::KVCache> self;
  std::vector<Tensor> cross_k, cross_v;  // [B, NH, Ts, HS] per layer
  Tensor src_mask;                       // u8 [B, Ts]
  int64_t len() const { return self.empty() ? 0 : self[0].len; }
};

struct T5GenerateOptions {
  int64_t max_new_tokens = 64;  // capped by block_size
  bool use_cache = true;        // false: recompute the whole decoder every step (tests)
  // Picks the next id of row b from its logits [V]; default greedy (argmax).
  std::function<int32_t(std::span<const float> logits, int64_t b)> pick;
};

class T5 : public nn::Module {
 public:
  // Builds and initialises (seeded) as T5 (t5) or BART (bart) do. dt F64 for gradient checks.
  explicit T5(const T5Config& config, uint64_t seed = 0, DType dt = DType::F32);

  // src i32 [B, Ts] (pad_id = padding) -> encoder output [B, Ts, C].
  Tensor encode(const Tensor& src);
  // Decoder logits [B, Tt, V] for decoder inputs dec [B, Tt] over the encoder output.
  Tensor decode(const Tensor& dec, const Tensor& enc, const Tensor& src_mask);
  // The whole model: logits [B, Tt, V].
  Tensor forward(const Tensor& src, const Tensor& dec);
  // Mean cross-entropy of forward(src, shift_right(labels)) against labels [B, Tt] (-100 = ignore).
  Tensor loss(const Tensor& src, const Tensor& labels);
  // [decoder_start, labels[:-1]] with -100 replaced by pad_id: the teacher-forced decoder input.
  Tensor shift_right(const Tensor& labels) const;
  Tensor source_mask(const Tensor& src) const;  // u8 [B, Ts], 1 where src != pad_id

  // Generation with caches: prepares the state for `enc` (cross keys/values once), then each
  // step runs the decoder on the next token(s) only.
  T5DecodeState start_decoding(const Tensor& enc, const Tensor& src_mask, int64_t capacity);
  Tensor decode_step(const Tensor& dec, T5DecodeState& state);  // dec [B, T] -> logits [B, T, V]
  // Generates the target of every source row (eval mode, no grad); each stops at eos_id (not
  // included) or max_new_tokens.
  std::vector<std::vector<int32_t>> generate(const Tensor& src, const T5GenerateOptions& opt);

  const T5Config& config() const { return cfg_; }
  Generator& dropout_generator() { return gen_; }
  const Generator& dropout_generator() const { return gen_; }
  void init_weights(uint64_t seed);

  std::shared_ptr<nn::Embedding> shared;
  std::shared_ptr<T5Stack> encoder, decoder;
  std::shared_ptr<nn::Linear> lm_head;  // null when tied

 private:
  Tensor embed(const T5Stack& stack, const Tensor& ids, int64_t pos0);
  Tensor logits(const Tensor& y);  // final norm (done by caller) -> vocabulary
  T5Config cfg_;
  Generator gen_;
  std::shared_ptr<nn::Dropout> drop_;
};

}  // namespace llmkit::models
