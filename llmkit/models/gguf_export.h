// A loaded decoder (models::load: an llmkit run, a Hugging Face directory or a .gguf) written as a
// GGUF v3 file that llama.cpp loads: `llmkit quantize`. The llama layout becomes
// general.architecture "llama" (q/k rows permuted back for ggml's adjacent-pair RoPE), the GPT-2
// layout "gpt2" (fused attn_qkv); the tokenizer (tokenizer.ggml.*: gpt2-style byte-level BPE with
// its merges, copied unchanged from a .gguf source), bos/eos and the chat template go with it.
// Matrices are quantised to the file's type by kernels::quantize_row with llama.cpp's rules for
// which tensors keep more bits (gguf_tensor_type below; docs/quantize.md has the table).
// Not here: reading GGUF (io/gguf.h, models/load.h), the quantisation kernels.
#pragma once

#include <cstdint>
#include <string>

#include "llmkit/kernels/cpu/quant.h"
#include "llmkit/models/load.h"

namespace llmkit::models {

struct GgufExportOptions {
  // The file's type (llama.cpp's "ftype"): F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K,
  // Q5_K, Q6_K.
  kernels::GgmlType type = kernels::GgmlType::F16;
  // Progress lines on stderr (one per layer) when true.
  bool verbose = false;
};

// What the type names on the command line mean: "q4_k" -> Q4_K, ...; an Error listing the
// names for anything else.
kernels::GgmlType parse_file_type(const std::string& name);
// The names parse_file_type takes, for --help: "f32|f16|bf16|q8_0|...".
const char* file_type_names();

// What a tensor is, for the type policy.
enum class GgufTensorRole {
  Vector,     // 1-D: norms and biases
  Positions,  // GPT-2's learned position table (position_embd)
  Output,     // the output head: output.weight, or token_embd.weight when tied
  Matrix,     // every other matrix (token_embd when untied included)
};

// The ggml type a tensor of `role` with rows of `row_len` elements gets in a file of type `file`.
// llama.cpp's llama_tensor_get_type for a plain type (no --pure, no imatrix), simplified:
//   Vector                          F32 always
//   Positions                       F16 / BF16 in those files, else F32 (llama.cpp never
//                                   quantises position_embd: it keeps the input's type)
//   Output                          F32 / F16 / BF16 files: that type; Q8_0: Q8_0; every other
//                                   quantised type: Q6_K
//   Matrix                          the file's type
// then, as llama.cpp's tensor_type_fallback: rows that are not a multiple of the type's block
// (256 for the K-quants) fall back Q4_K -> Q5_0, Q5_K -> Q5_1, Q6_K -> Q8_0, and to F16 when
// even that does not divide (llama.cpp refuses Q4_0 ... Q8_0 on such rows; we write F16).
// What llama.cpp does and this does not: the *_K_S / *_K_M mixtures (attn_v, ffn_down and
// attn_qkv of some layers one K-type up); our q4_k and q5_k are "pure" K files plus the output
// rule (general.file_type says Q4_K_S / Q5_K_S, the closest llama.cpp names).
kernels::GgmlType gguf_tensor_type(kernels::GgmlType file, GgufTensorRole role, int64_t row_len);

// llama.cpp's llama_ftype number for a file of type `file` (general.file_type): F32 0, F16 1,
// Q4_0 2, Q4_1 3, Q8_0 7, Q5_0 8, Q5_1 9, Q4_K 14 (Q4_K_S), Q5_K 16 (Q5_K_S), Q6_K 18, BF16 32.
uint32_t gguf_file_type_number(kernels::GgmlType file);

// Writes `m` (a gpt or llama model with its weights and tokenizer: load() without options) to
// `path` atomically. An Error naming the field for models llama.cpp could not run as written:
// the GPT-2 layout with post_ln, positions other than learned, rmsnorm, swiglu or no biases; the
// llama layout with attention biases, norm/activation/positions other than rmsnorm/swiglu/rope,
// or rope_scaling other than linear; no tokenizer, or one GGUF cannot describe (WordPiece,
// Unigram, Hangul-to-jamo, a pre-tokenizer llama.cpp has no name for).
void export_gguf(const LoadedModel& m, const std::string& path, const GgufExportOptions& options);

}  // namespace llmkit::models
