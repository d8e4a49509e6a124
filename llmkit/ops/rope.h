// Rotary position embedding (RoPE, Su et al. 2021): rotates each pair of channels of q and k by an
// angle proportional to the token's position, so q.k depends on the relative offset only. Pairs
// are (i, i + HS/2), the "rotate_half" layout of GPT-NeoX and Hugging Face's llama; the angle of
// pair i at position t is t * inv_freq[i], inv_freq[i] = theta^(-2i / HS) unless a RopeScaling
// changes it (Hugging Face's rope_scaling: "linear" and "llama3"). The backward is the rotation
// by the opposite angle (a rotation's transpose is its inverse).
#pragma once

#include <string>
#include <vector>

#include "llmkit/core/tensor.h"

namespace llmkit::ops {

// Hugging Face's rope_scaling. type "" or "default": none; "linear": inv_freq / factor;
// "llama3": Llama 3.1's frequency-dependent scaling (low-frequency pairs divided by factor,
// high-frequency pairs kept, a smooth blend between).
struct RopeScaling {
  std::string type;
  double factor = 1.0;
  double low_freq_factor = 1.0, high_freq_factor = 4.0;
  double original_max_position_embeddings = 8192;
};

// The HS/2 inverse frequencies of a head of size HS; an Error for an unknown scaling type.
std::vector<double> rope_inv_freq(int64_t HS, double theta, const RopeScaling& scaling = {});

// x [B, NH, T, HS] (HS even); positions start at `pos0` (the KV-cache offset while generating).
Tensor rope(const Tensor& x, int64_t pos0 = 0, double theta = 10000.0);
// The same with explicit inverse frequencies (rope_inv_freq; size HS/2).
Tensor rope(const Tensor& x, int64_t pos0, const std::vector<double>& inv_freq);
// A position per token instead of pos0 + t: positions i32 [B, T] (packed rows, where each
// example's positions restart at 0; GPT::forward_packed). Cost: B T HS/2 angles instead of T HS/2.
Tensor rope(const Tensor& x, const Tensor& positions, double theta = 10000.0);
Tensor rope(const Tensor& x, const Tensor& positions, const std::vector<double>& inv_freq);

}  // namespace llmkit::ops
