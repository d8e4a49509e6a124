#include "llmkit/train/schedule.h"

#include <algorithm>
#include <cmath>

#include "llmkit/core/error.h"

namespace llmkit::train {

double LrSchedule::at(int64_t step) const {
  LLMKIT_CHECK(warmup >= 0 && total > 0 && min_lr <= max_lr,
               "lr schedule: need warmup >= 0, total > 0, min_lr <= max_lr");
  if (step < warmup) return max_lr * static_cast<double>(step + 1) / static_cast<double>(warmup);
  if (kind == Kind::Constant) return max_lr;
  if (step >= total) return min_lr;
  const double span = static_cast<double>(std::max<int64_t>(total - warmup, 1));
  const double frac = static_cast<double>(step - warmup) / span;  // 0 -> 1
  const double k = kind == Kind::Cosine ? 0.5 * (1.0 + std::cos(M_PI * frac)) : 1.0 - frac;
  return min_lr + k * (max_lr - min_lr);
}

}  // namespace llmkit::train
