// The llama family (Llama, SmolLM2, Mistral, Qwen2) as Hugging Face and llama.cpp write it, mapped
// to models::GPT with arch "llama" (whose parameter names already are Hugging Face's):
//   - config.json (model_type llama | smollm | mistral | qwen2) <-> GPTConfig;
//   - GGUF (general.architecture llama): llama.* metadata -> GPTConfig, and tensor names
//     (token_embd, blk.N.attn_q, ...) -> Hugging Face names, undoing llama.cpp's q/k row
//     permutation (gguf_llama.cpp, built when io/gguf.h is present).
// Not here: reading files (models/load.h), tokenizers, GPT-2 and BERT (hf_gpt2.h, hf_bert.h).
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "llmkit/io/safetensors.h"
#include "llmkit/models/gpt.h"

namespace llmkit::io {
class GgufFile;
}

namespace llmkit::models {

// Whether config.json's model_type is one llama_config_from_hf takes.
bool is_llama_model_type(const std::string& model_type);

// The fixed part of every llama-family config: arch "llama", rope, rmsnorm, swiglu, no biases
// (the readers below fill in the sizes and the options).
GPTConfig llama_base_config();
// A Hugging Face config.json -> GPTConfig (arch "llama"). Errors name the field: an unknown
// model_type, hidden_act other than silu, mlp_bias, a head_dim other than hidden / heads, a
// Mistral sliding_window shorter than the context, unsupported rope_scaling types.
GPTConfig llama_config_from_hf(const nlohmann::json& hf);
// GPTConfig (arch "llama", rmsnorm, swiglu, rope, no norm biases) -> config.json that
// transformers loads: model_type "qwen2" when only q/k/v carry biases, else "llama".
nlohmann::json llama_config_to_hf(const GPTConfig& c);

// Reverses llama.cpp's convert_hf_to_gguf.py permute(w, n_head, n_head_kv) of q_proj / k_proj
// rows (it interleaves each head's two rotate_half halves for GGML's adjacent-pair RoPE):
// w [n_head * HS, ...] with rows (h, i, j) for i < HS/2, j < 2 goes back to rows (h, j, i).
Tensor unpermute_rope_rows(const Tensor& w, int64_t n_head);
// The permutation itself, for writing GGUF (gguf_export.h): Hugging Face rows (h, j, i) -> GGUF
// rows (h, i, j); unpermute_rope_rows(permute_rope_rows(w, n), n) == w.
Tensor permute_rope_rows(const Tensor& w, int64_t n_head);

// GGUF metadata (general.architecture llama; llama.* keys, tokenizer.ggml.bos/eos_token_id)
// -> GPTConfig; tied when the file has no output.weight.
GPTConfig llama_config_from_gguf(const io::GgufFile& f);
// The GGUF tensors under Hugging Face names, dequantised to f32, q/k rows un-permuted.
io::NamedTensors llama_weights_from_gguf(const io::GgufFile& f, const GPTConfig& c);

}  // namespace llmkit::models
