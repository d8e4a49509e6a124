// Positional encodings the concept notes name (2.2.3 위치 인코딩), selectable by config:
//   learned     absolute: a trained table of block_size vectors added to token embeddings (GPT-2)
//   sinusoidal  absolute, fixed: sin/cos of position at geometric frequencies (the original
//               transformer, "Attention Is All You Need" 3.5)
//   rope        relative: rotates q and k by position inside attention (ops/rope.h; llama)
//   alibi       relative: a per-head linear penalty on distance added to attention scores (Press
//               et al. 2022), no parameters
#pragma once

#include <string>

#include "llmkit/core/tensor.h"

namespace llmkit::nn {

enum class PosEncoding { Learned, Sinusoidal, Rope, Alibi };
PosEncoding parse_pos_encoding(const std::string& name);  // Error lists the valid names
const char* pos_encoding_name(PosEncoding p);

// [T, C] table: pe[t, 2i] = sin(t / 10000^(2i/C)), pe[t, 2i+1] = cos(same).
Tensor sinusoidal_table(int64_t T, int64_t C, DType dt = DType::F32);

// ALiBi slopes for n_head heads: the geometric sequence 2^(-8/n), 2^(-16/n), ... (for a power of
// two; otherwise the paper's interleaving rule).
std::vector<double> alibi_slopes(int64_t n_head);
// Score bias [NH, Tq, Tk]: -slope_h * (i + pos0 - j) for query i at absolute position i + pos0
// and key j (future keys are masked by causality anyway; they get the same formula).
Tensor alibi_bias(int64_t n_head, int64_t Tq, int64_t Tk, int64_t pos0, DType dt);

}  // namespace llmkit::nn
