// Hugging Face GPT-2 <-> models::GPT (arch "gpt", GPT-2 layout): config.json translation and the
// tensor map. Our names are GPT-2's already (wte, wpe, h.{i}.attn.c_attn, ...); what differs is
// the optional "transformer." prefix of GPT2LMHeadModel files and the layout: Hugging Face's
// GPT-2 stores its four projections as Conv1D, [in, out], where ours are [out, in] like
// nn.Linear, so those weights are transposed both ways.
// Not here: the byte-level BPE tokenizer (tokenizer/), the one loader (models/load.h), llama.
#pragma once

#include <memory>
#include <string>

#include <nlohmann/json_fwd.hpp>

#include "llmkit/io/safetensors.h"
#include "llmkit/models/gpt.h"

namespace llmkit::io {
class GgufFile;
}

namespace llmkit::models {

// Hugging Face GPT2Config JSON -> ours (Hugging Face defaults where a field is absent):
// n_embd, n_layer, n_head, n_positions (or n_ctx), vocab_size, n_inner, layer_norm_epsilon,
// resid_pdrop, tie_word_embeddings. activation_function must be a tanh GELU (gelu_new,
// gelu_pytorch_tanh, gelu_fast: the same function, which is our "gelu"); the exact erf "gelu",
// relu and the rest are an Error naming the field, as are scale_attn_weights false,
// scale_attn_by_inverse_layer_idx and add_cross_attention. reorder_and_upcast_attn (an fp16
// trick, the same attention in fp32) is ignored.
GPTConfig gpt2_config_from_hf(const nlohmann::json& hf);
// Ours -> config.json for transformers' GPT2LMHeadModel. An Error when the config is not the
// GPT-2 layout (learned positions, LayerNorm, tanh GELU, biases, pre-LN, arch gpt).
nlohmann::json gpt2_config_to_hf(const GPTConfig& c);

// Copies a Hugging Face GPT-2 checkpoint into `model` (any float dtype): names with or without
// "transformer.", the Conv1D weights (attn.c_attn, attn.c_proj, mlp.c_fc, mlp.c_proj)
// transposed. Ignored: the attention buffers "h.{i}.attn.bias" / "h.{i}.attn.masked_bias" and,
// for a tied model, "lm_head.weight" (the word embeddings). Anything else unknown, a missing
// tensor or a wrong shape is an Error naming the tensor and both shapes ([in, out] for Conv1D).
void gpt2_load_hf_weights(GPT& model, const io::NamedTensors& tensors);
// The model's tensors under GPT2LMHeadModel's names ("transformer." prefix, Conv1D [in, out]
// copies; the rest share storage with the model), lm_head.weight only when untied.
io::NamedTensors gpt2_hf_weights(const GPT& model);

// A Hugging Face GPT-2 directory (config.json + model.safetensors) -> a model in eval mode.
std::unique_ptr<GPT> load_hf_gpt2_dir(const std::string& dir);
// Writes config.json + model.safetensors that transformers' GPT2LMHeadModel loads.
void save_hf_gpt2_dir(const GPT& model, const std::string& dir);

// GGUF (general.architecture "gpt2", as llama.cpp and `llmkit quantize` write it): gpt2.* keys ->
// GPTConfig (arch gpt: learned positions, LayerNorm, tanh GELU, biases, pre-LN; tied when the
// file has no output.weight), and the tensors under our names (token_embd -> wte,
// blk.N.attn_qkv -> h.N.attn.c_attn, ...), dequantised to f32. Same [out, in] layout: ggml's
// ne[0] is the row length.
GPTConfig gpt2_config_from_gguf(const io::GgufFile& f);
io::NamedTensors gpt2_weights_from_gguf(const io::GgufFile& f, const GPTConfig& c);

}  // namespace llmkit::models
