// Rotary position embedding (RoPE, Su et al. 2021): rotates each pair of channels of q and k by an
// angle proportional to the token's position, so q.k depends on the relative offset only. Pairs
// are (i, i + HS/2), the "rotate_half" layout of GPT-NeoX and Hugging Face's llama; the angle of
// pair i at position t is t * theta^(-2i / HS). The backward is the rotation by the opposite
// angle (a rotation's transpose is its inverse).
#pragma once

#include "llmkit/core/tensor.h"

namespace llmkit::ops {

// x [B, NH, T, HS] (HS even); positions start at `pos0` (the KV-cache offset while generating).
Tensor rope(const Tensor& x, int64_t pos0 = 0, double theta = 10000.0);

}  // namespace llmkit::ops
