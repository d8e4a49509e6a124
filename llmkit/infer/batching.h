// Batching variable-length id sequences for an encoder or a classifier: the order that keeps
// padding small (longest first, so each batch pads to a length close to all of its rows') and
// right-padding with an attention mask. Shared by sentence embeddings (embed.h) and classifiers
// (classify.h); training batches of a fine-tuning task use pad_batch too.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "llmkit/core/tensor.h"

namespace llmkit::infer {

// Indices of `ids` from the longest sequence to the shortest (stable: ties keep input order).
std::vector<size_t> longest_first(std::span<const std::vector<int32_t>> ids);

// Rows of ids right-padded with pad_id into ids i32 [B, T] and attention_mask u8 [B, T]
// (1 = real token), T the longest row. Errors: no rows, an empty row.
struct PaddedBatch {
  Tensor ids, mask;
};
PaddedBatch pad_batch(std::span<const std::vector<int32_t>> rows, int32_t pad_id);

}  // namespace llmkit::infer
