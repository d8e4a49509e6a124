// BERT: the encoder-only transformer (2.1 인코더; Devlin et al. 2019), pretrained by masked-token
// prediction with optional next-sentence prediction, as Hugging Face's BertForPreTraining:
//   x = LN(word[ids] + position[t] + token_type[seg])        embeddings, then dropout
//   for each layer (post-LN, bidirectional, padding keys masked):
//     x = LN(x + attn(x));  x = LN(x + W_2 gelu(W_1 x))
//   mlm logits = LN(gelu(dense(x))) word^T + bias            decoder tied to the word embeddings
//   pooled = tanh(dense(x[:, 0]));  nsp logits = W pooled    [CLS] -> is B the next segment?
// Parameter names are BertForPreTraining's, with its "bert." prefix on the encoder
// ("bert.embeddings.word_embeddings.weight", "bert.encoder.layer.0.attention.self.query.weight",
// "cls.predictions.transform.dense.weight", "cls.predictions.bias", "cls.seq_relationship.weight"),
// stored [out, in]: a Hugging Face checkpoint loads by name. The tied decoder has no tensor of
// its own (Hugging Face's "cls.predictions.decoder.weight" is the word embedding table).
// Not here: dropout on the attention probabilities (the fused attention kernel has none; with
// dropout = 0 the two agree), fine-tuning heads (classification lives with the fine-tuning code).
// With config.pretraining_heads = false the cls.* members are null (BertModel; see hf_bert.h).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "llmkit/nn/layers.h"

namespace llmkit::models {

struct BertConfig {
  std::string arch = "bert";
  int64_t vocab_size = 256, n_layer = 2, n_head = 2, n_embd = 64;
  int64_t block_size = 128;     // max_position_embeddings
  int64_t type_vocab_size = 2;  // segments A and B
  int64_t ffn_hidden = 0;       // intermediate_size; 0: 4 n_embd
  double dropout = 0.0;         // hidden_dropout_prob (embeddings, attention and FFN outputs)
  double norm_eps = 1e-12;      // layer_norm_eps
  int64_t pad_id = 0;           // [PAD]; its attention is masked when no mask is given
  // The MLM and NSP heads (cls.*), as BertForPreTraining. false: the encoder and pooler only,
  // as Hugging Face's BertModel (sentence encoders such as all-MiniLM-L6-v2 ship no heads).
  bool pretraining_heads = true;

  int64_t hidden() const { return ffn_hidden > 0 ? ffn_hidden : 4 * n_embd; }
  void validate() const;  // Error naming the field
  static BertConfig from_json(const nlohmann::json& j);
  nlohmann::json to_json() const;
};

// How a sentence vector is read off the encoder output.
enum class Pooling { Cls, Mean };
Pooling parse_pooling(const std::string& name);  // "cls" | "mean"

// Embeddings: word + position + token type, LayerNorm, dropout. Registered under BERT's names.
class BertEmbeddings : public nn::Module {
 public:
  BertEmbeddings(const BertConfig& c, Generator* gen, DType dt);
  // ids, token_type_ids i32 [B, T] (token types undefined: all segment 0) -> [B, T, C].
  Tensor forward(const Tensor& ids, const Tensor& token_type_ids);

  std::shared_ptr<nn::Embedding> word_embeddings;        // [V, C]
  std::shared_ptr<nn::Embedding> position_embeddings;    // [block_size, C]
  std::shared_ptr<nn::Embedding> token_type_embeddings;  // [type_vocab_size, C]
  std::shared_ptr<nn::LayerNorm> norm;                   // LayerNorm

 private:
  std::shared_ptr<nn::Dropout> dropout_;
  Tensor positions_;  // i32 [block_size]: 0, 1, ...
};

// One post-LN encoder layer. Members are named by role; registered names are BERT's.
class BertLayer : public nn::Module {
 public:
  BertLayer(const BertConfig& c, Generator* gen, DType dt);
  // x [B, T, C], key_mask u8 [B, T] (1 = real token) or undefined -> [B, T, C].
  Tensor forward(const Tensor& x, const Tensor& key_mask);

  std::shared_ptr<nn::Linear> query, key, value;  // attention.self.{query,key,value}  [C, C]
  std::shared_ptr<nn::Linear> attn_out;           // attention.output.dense             [C, C]
  std::shared_ptr<nn::LayerNorm> attn_norm;       // attention.output.LayerNorm
  std::shared_ptr<nn::Linear> intermediate;       // intermediate.dense                 [H, C]
  std::shared_ptr<nn::Linear> output;             // output.dense                       [C, H]
  std::shared_ptr<nn::LayerNorm> output_norm;     // output.LayerNorm

 private:
  int64_t n_head_;
  std::shared_ptr<nn::Dropout> dropout_;
};

// What one pass of the pretraining model gives.
struct BertOutput {
  Tensor hidden;      // [B, T, C] last encoder layer
  Tensor mlm_logits;  // [B, T, V] (or [M, V] at the positions asked for)
  Tensor nsp_logits;  // [B, 2]: 0 = B follows A, 1 = B is random (Hugging Face's convention)
};

class Bert : public nn::Module {
 public:
  // Builds the model and initialises it as BERT does (seeded): N(0, 0.02) weights and
  // embeddings, the [PAD] row of the word embeddings zero, zero biases, unit LayerNorms.
  // dt: F32 for training and inference; F64 for gradient checks. initialise = false leaves
  // every parameter zero, for a caller that loads all of them next (a checkpoint): drawing
  // 22 M normals is most of the time it takes to load all-MiniLM-L6-v2.
  explicit Bert(const BertConfig& config, uint64_t seed = 0, DType dt = DType::F32,
                bool initialise = true);

  // The encoder. ids i32 [B, T]; token_type_ids i32 [B, T] or undefined (all 0);
  // attention_mask u8 [B, T] (1 = attend) or undefined (ids != pad_id; everything when
  // pad_id < 0). Returns the last hidden states [B, T, C].
  Tensor encode(const Tensor& ids, const Tensor& token_type_ids = Tensor(),
                const Tensor& attention_mask = Tensor());
  // MLM head on hidden states [..., C] -> logits [..., V]. The MLM and NSP heads, forward() and
  // pretraining_loss() raise an Error when the model has no pretraining heads.
  Tensor mlm_head(const Tensor& hidden);
  // Pooler + NSP head on hidden [B, T, C] -> [B, 2].
  Tensor nsp_head(const Tensor& hidden);
  // The pooler alone: tanh(dense(hidden[:, 0])) -> [B, C].
  Tensor pooled(const Tensor& hidden);
  // Everything at once (MLM logits at every position), as BertForPreTraining.forward.
  BertOutput forward(const Tensor& ids, const Tensor& token_type_ids = Tensor(),
                     const Tensor& attention_mask = Tensor());

  // The pretraining loss: mean MLM cross-entropy over the positions whose label is not -100
  // (the decoder runs at those positions only), plus, when nsp_labels (i32 [B]) is defined,
  // the NSP cross-entropy. labels i32 [B, T]; an Error when every label is -100. With `out`,
  // fills out->hidden, out->mlm_logits ([M, V], the labelled positions in row-major order) and,
  // with NSP, out->nsp_logits.
  Tensor pretraining_loss(const Tensor& ids, const Tensor& token_type_ids,
                          const Tensor& attention_mask, const Tensor& labels,
                          const Tensor& nsp_labels = Tensor(), BertOutput* out = nullptr);

  // Sentence vectors [B, C]: the [CLS] hidden state, or the mean over non-padding tokens.
  Tensor sentence_embedding(const Tensor& ids, Pooling pooling,
                            const Tensor& token_type_ids = Tensor(),
                            const Tensor& attention_mask = Tensor());
  // The same from hidden states already computed; attention_mask u8 [B, T] (undefined: all).
  static Tensor pool(const Tensor& hidden, const Tensor& attention_mask, Pooling pooling);

  // u8 [B, T]: 1 where ids != pad_id (all ones when pad_id < 0).
  Tensor padding_mask(const Tensor& ids) const;

  const BertConfig& config() const { return cfg_; }
  Generator& dropout_generator() { return gen_; }
  const Generator& dropout_generator() const { return gen_; }
  void init_weights(uint64_t seed);

  // bert.*
  std::shared_ptr<BertEmbeddings> embeddings;
  std::vector<std::shared_ptr<BertLayer>> layer;  // bert.encoder.layer.{i}
  std::shared_ptr<nn::Linear> pooler;             // bert.pooler.dense          [C, C]
  // cls.* (null / undefined without pretraining heads)
  std::shared_ptr<nn::Linear> transform;          // cls.predictions.transform.dense [C, C]
  std::shared_ptr<nn::LayerNorm> transform_norm;  // cls.predictions.transform.LayerNorm
  Tensor decoder_bias;                            // cls.predictions.bias       [V]
  std::shared_ptr<nn::Linear> seq_relationship;   // cls.seq_relationship       [2, C]

 private:
  void require_heads(const char* what) const;  // Error when there are none
  BertConfig cfg_;
  Generator gen_;
};

}  // namespace llmkit::models
