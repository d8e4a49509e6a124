#include "llmkit/data/batches.h"

namespace llmkit::data {

BatchSampler::BatchSampler(const TokenShard& shard, int64_t batch, int64_t block, uint64_t seed)
    : shard_(shard), batch_(batch), block_(block), gen_(seed) {
  LLMKIT_CHECK(batch > 0 && block > 0, "batches: batch and block must be positive");
  LLMKIT_CHECK(shard.size() >= block + 1, shard.path(), ": ", shard.size(),
               " tokens; need at least block_size + 1 = ", block + 1);
  ids_ = Tensor::empty({batch, block}, DType::I32);
  targets_ = Tensor::empty({batch, block}, DType::I32);
}

void BatchSampler::next(int32_t* ids, int32_t* targets) {
  const uint64_t windows = static_cast<uint64_t>(shard_.size() - block_);  // valid start offsets
  std::vector<int32_t> w(block_ + 1);
  for (int64_t b = 0; b < batch_; ++b) {
    const int64_t start = static_cast<int64_t>(gen_.randint(windows));
    shard_.read(start, block_ + 1, w.data());
    std::copy(w.begin(), w.end() - 1, ids + b * block_);
    std::copy(w.begin() + 1, w.end(), targets + b * block_);
  }
}

std::pair<Tensor, Tensor> BatchSampler::next_tensors() {
  next(ids_.data<int32_t>(), targets_.data<int32_t>());
  return {ids_, targets_};
}

}  // namespace llmkit::data
