// Learning-rate schedules. Cosine with linear warm-up (GPT-2/3, nanoGPT): step s < warmup gives
// max_lr * (s + 1) / warmup; then max_lr decays along half a cosine to min_lr at `total`; min_lr
// after. Linear decays in a straight line instead; constant keeps max_lr after the warm-up.
#pragma once

#include <cstdint>

namespace llmkit::train {

struct LrSchedule {
  enum class Kind { Cosine, Linear, Constant };
  Kind kind = Kind::Cosine;
  int64_t warmup = 0, total = 1;
  double max_lr = 3e-4, min_lr = 3e-5;
  double at(int64_t step) const;
};

}  // namespace llmkit::train
