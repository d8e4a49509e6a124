// Batching of id sequences: see batching.h.
#include "llmkit/infer/batching.h"

#include <algorithm>
#include <numeric>

#include "llmkit/core/error.h"

namespace llmkit::infer {

std::vector<size_t> longest_first(std::span<const std::vector<int32_t>> ids) {
  std::vector<size_t> order(ids.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return ids[a].size() > ids[b].size(); });
  return order;
}

PaddedBatch pad_batch(std::span<const std::vector<int32_t>> rows, int32_t pad_id) {
  LLMKIT_CHECK(!rows.empty(), "pad_batch: no rows");
  size_t T = 0;
  for (const auto& r : rows) {
    LLMKIT_CHECK(!r.empty(), "pad_batch: an empty row");
    T = std::max(T, r.size());
  }
  const auto B = static_cast<int64_t>(rows.size());
  PaddedBatch p;
  p.ids = Tensor::full({B, static_cast<int64_t>(T)}, pad_id, DType::I32);
  p.mask = Tensor::zeros({B, static_cast<int64_t>(T)}, DType::U8);
  for (int64_t b = 0; b < B; ++b) {
    const auto& row = rows[static_cast<size_t>(b)];
    std::copy(row.begin(), row.end(), p.ids.data<int32_t>() + b * static_cast<int64_t>(T));
    std::fill_n(p.mask.data<uint8_t>() + b * static_cast<int64_t>(T), row.size(), uint8_t{1});
  }
  return p;
}

}  // namespace llmkit::infer
