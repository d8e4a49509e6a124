// Masked-language-model data (1.1.3 사전 학습, BERT's objective): which tokens to hide and what the
// model must predict, and the [CLS] A [SEP] B [SEP] inputs of next-sentence prediction.
//   masking: of the tokens that are not special, max(1, round(mask_prob * n)) are chosen (BERT's
//     exact count per sequence, so no sequence is without a target); each chosen token becomes
//     [MASK] (80%), a random non-special token (10%) or stays itself (10%); its label is the
//     original id, every other label is -100 (ignored by the loss).
//   pairs: with probability 1/2 segment B is the text that follows A (label 0, "IsNext"),
//     otherwise text from a random place in the corpus (label 1, "NotNext"); token types are 0
//     for [CLS] A [SEP] and 1 for B [SEP].
// All randomness comes from counter-based Generators (core/random.h), so a (seed, offset) pair
// restores the exact stream. Not here: whole-word masking, sentence-boundary-aware segments (the
// corpus is a token stream; segments are cut at token positions).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "llmkit/core/random.h"
#include "llmkit/core/tensor.h"
#include "llmkit/data/shards.h"

namespace llmkit::data {

struct MaskingOptions {
  double mask_prob = 0.15;           // fraction of non-special tokens to predict
  double mask_token_frac = 0.8;      // of those: replaced by [MASK]
  double random_token_frac = 0.1;    // of those: replaced by a random token (the rest are kept)
  int32_t mask_id = -1;              // [MASK]
  int32_t vocab_size = 0;            // random replacements are drawn from [0, vocab_size)
  std::vector<int32_t> special_ids;  // never chosen, never drawn as a replacement
  void validate() const;             // Error naming the field
};

// Masks one sequence in place and writes its labels (same length). Returns how many tokens were
// chosen (0 only when the sequence has no non-special token).
int64_t mask_tokens(std::span<int32_t> ids, std::span<int32_t> labels, const MaskingOptions& opt,
                    Generator& gen);

// The special token ids of BERT's inputs.
struct BertSpecialIds {
  int32_t pad = 0, cls = 2, sep = 3, mask = 4;
};

// One pretraining batch. ids, token_type_ids, labels i32 [B, T]; nsp_labels i32 [B] (undefined
// without next-sentence prediction). Windows are full, so there is no padding.
struct MlmBatch {
  Tensor ids, token_type_ids, labels, nsp_labels;
};

// Cuts windows of a token shard into BERT inputs and masks them.
//   random mode (training): each row starts at a random offset, forever;
//   sequential mode (evaluation): rows are consecutive windows from the shard's start; the last
//     batch may have fewer rows; next() returns nullopt at the end. restart() rewinds both the
//     windows and the masking stream, so every evaluation sees the same inputs.
// Training batches reuse their tensors: use a batch before asking for the next one.
class MlmBatcher {
 public:
  struct Options {
    int64_t batch = 8, block = 128;  // rows, and tokens per row including [CLS]/[SEP]
    bool nsp = false;
    bool sequential = false;
    uint64_t seed = 0;
    MaskingOptions masking;
    BertSpecialIds special;
  };
  MlmBatcher(const TokenShard& shard, Options opt);

  std::optional<MlmBatch> next();
  void restart();
  int64_t content_tokens() const { return content_; }  // text tokens per row (block - 2 or 3)
  int64_t num_windows() const;                         // sequential mode: rows in one pass

  // Generator offsets (window choice, masking) and the sequential cursor: the whole state.
  struct Position {
    uint64_t windows = 0, masking = 0;
    int64_t cursor = 0;
  };
  Position position() const { return {window_gen_.offset(), mask_gen_.offset(), cursor_}; }
  void set_position(const Position& p);

 private:
  void fill_row(int64_t r, int32_t* ids, int32_t* types, int32_t* labels, int32_t* nsp);
  int64_t next_start();

  const TokenShard& shard_;
  Options opt_;
  int64_t content_;
  Generator window_gen_, mask_gen_;
  int64_t cursor_ = 0;  // sequential mode: next window index
  MlmBatch buf_;
  std::vector<int32_t> a_, b_;
};

}  // namespace llmkit::data
