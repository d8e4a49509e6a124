// Training batches: random windows of block_size + 1 tokens from a shard; the model reads the
// first block_size and predicts the next token at every position (targets = ids shifted by one).
// Offsets come from a counter-based generator, so (seed, position) restores the exact stream of
// batches for --resume.
#pragma once

#include <utility>

#include "llmkit/core/random.h"
#include "llmkit/core/tensor.h"
#include "llmkit/data/shards.h"

namespace llmkit::data {

class BatchSampler {
 public:
  BatchSampler(const TokenShard& shard, int64_t batch, int64_t block, uint64_t seed);
  // Fills ids and targets, each [batch, block].
  void next(int32_t* ids, int32_t* targets);
  // The same into two i32 [batch, block] tensors allocated once: every call returns the same
  // tensors with new contents (use them before the next call).
  std::pair<Tensor, Tensor> next_tensors();
  uint64_t position() const { return gen_.offset(); }
  void set_position(uint64_t p) { gen_.set_state(gen_.seed(), p); }

 private:
  const TokenShard& shard_;
  int64_t batch_, block_;
  Generator gen_;
  Tensor ids_, targets_;
};

}  // namespace llmkit::data
