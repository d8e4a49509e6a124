// A loaded decoder (models::load: an llmkit run, a Hugging Face directory or a .gguf) written as a
// GGUF v3 file that llama.cpp loads: `llmkit quantize`. The llama layout becomes
// general.architecture "llama" (q/k rows permuted back for ggml's adjacent-pair RoPE), the GPT-2
// layout "gpt2" (fused attn_qkv); the tokenizer (tokenizer.ggml.*: gpt2-style byte-level BPE with
// its merges, or llama's SentencePiece vocabulary), bos/eos and the chat template go with it.
// Matrices are quantised to the file's type by kernels::quantize_row with llama.cpp's rules for
// which tensors keep more bits (norms and biases f32, the output head q6_k or q8_0, K-quants fall
// back to q5_0 / q5_1 / q8_0 on rows that are not a multiple of 256).
// Not here: reading GGUF (io/gguf.h, models/load.h), the quantisation kernels.
#pragma once

#include <string>

#include "llmkit/kernels/cpu/quant.h"
#include "llmkit/models/load.h"

namespace llmkit::models {

struct GgufExportOptions {
  // The file's type (llama.cpp's "ftype"): F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K,
  // Q5_K, Q6_K.
  kernels::GgmlType type = kernels::GgmlType::F16;
  // Progress lines on stderr (one per tensor group) when true.
  bool verbose = false;
};

// What the type names on the command line mean: "q4_k" -> Q4_K, ...; an Error listing the
// names for anything else.
kernels::GgmlType parse_file_type(const std::string& name);

// Writes `m` (a gpt or llama model with its weights: load() without options) to `path`
// atomically. An Error naming the problem for models llama.cpp could not run as written (post-LN,
// ALiBi or sinusoidal positions on the GPT-2 layout, no tokenizer).
void export_gguf(const LoadedModel& m, const std::string& path, const GgufExportOptions& options);

}  // namespace llmkit::models
