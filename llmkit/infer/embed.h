// Sentence embeddings from a BERT encoder (7.x 임베딩), as sentence-transformers computes them:
// tokenise "[CLS] text [SEP]" truncated to max_len tokens, run the encoder on padded batches
// with an attention mask, pool the last hidden states (the mean over real tokens, or [CLS]) and
// optionally scale each vector to unit L2 norm, so that a dot product is the cosine similarity.
// Texts are sorted by length before batching (as sentence-transformers does), which keeps
// padding small; the result comes back in input order. Inference only (no autograd).
// Not here: vector search and storage (retrieval/), models other than BERT-style encoders.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "llmkit/models/bert.h"
#include "llmkit/tokenizer/tokenizer.h"

namespace llmkit::infer {

using Pooling = models::Pooling;  // Mean (over unmasked tokens) or Cls

// How a sentence-transformers directory says to embed (modules.json, 1_Pooling/config.json,
// sentence_bert_config.json); what `llmkit embed --model DIR` uses when no flag overrides it.
struct EmbedDefaults {
  Pooling pooling = Pooling::Mean;
  bool normalize = false;  // a sentence_transformers.models.Normalize module follows the pooling
  int64_t max_len = 0;     // max_seq_length; 0: the model's max_position_embeddings
  bool found = false;      // modules.json was there (a sentence-transformers model)
};
// A directory without modules.json gives the defaults above (found = false). An Error names
// the file and the field for what sentence-transformers would do and we cannot: a pooling mode
// other than exactly one of mean / cls (max, mean_sqrt_len, several at once), a module other
// than Transformer, Pooling, Normalize (Dense, ...).
EmbedDefaults read_sentence_transformers_config(const std::string& dir);

// A loaded sentence encoder: the model (eval mode), its tokenizer and the directory's defaults.
struct Embedder {
  std::unique_ptr<models::Bert> model;
  std::unique_ptr<tokenizer::Tokenizer> tokenizer;
  EmbedDefaults defaults;
};
// `dir`: a BERT model directory (models::load_hf_bert_dir: Hugging Face or llmkit) with
// tokenizer.json. Errors: not a directory, a decoder or other model, no tokenizer.json.
Embedder load_embedder(const std::string& dir);

// "[CLS] tokens [SEP]" for one text, the tokens cut so that the whole is at most max_len ids
// (sentence-transformers' truncation of a single text). The tokenizer must know [CLS] and
// [SEP]; its own truncation/padding settings are not used. max_len >= 2.
std::vector<int32_t> bert_input_ids(const tokenizer::Tokenizer& tok, std::string_view text,
                                    int64_t max_len);

// Embeddings [N][C] of N id sequences (specials included, each 1..block_size long): batches of
// up to `batch` sequences of similar length, padded with the model's pad id (0 when it has
// none) and masked. Runs the model in eval mode (restoring its mode) without autograd.
std::vector<std::vector<float>> embed_ids(models::Bert& model,
                                          std::span<const std::vector<int32_t>> ids,
                                          Pooling pooling, bool normalize, int64_t batch = 32);

// bert_input_ids for every text (tokenised in parallel), then embed_ids. max_len 0, or more
// than the model's block_size (max_position_embeddings): block_size. all-MiniLM-L6-v2 was
// trained at 256, which its sentence_bert_config.json says (read_sentence_transformers_config).
std::vector<std::vector<float>> embed_texts(models::Bert& model, const tokenizer::Tokenizer& tok,
                                            std::span<const std::string> texts, Pooling pooling,
                                            bool normalize, int64_t max_len = 0,
                                            int64_t batch = 32);

// a . b / (|a| |b|); 0 when either is the zero vector. Sizes must match.
double cosine_similarity(std::span<const float> a, std::span<const float> b);

}  // namespace llmkit::infer
