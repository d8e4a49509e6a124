// The tokenizer a GGUF file embeds (tokenizer.ggml.*), as plain arrays: the GGUF reader (llmkit/io)
// fills a GgufVocab and Tokenizer::from_gguf_vocab turns it into the equivalent Hugging Face
// pipeline, so a GGUF model and its tokenizer.json encode the same way:
//   "gpt2":  byte-level BPE; `pre` (llama.cpp's tokenizer.ggml.pre) picks the pre-tokenizer;
//   "llama": SentencePiece BPE with byte fallback; merges come from the scores the way
//            transformers' LlamaConverter derives them (higher score merges first).
//   "bert":  WordPiece behind BERT's normalizer (lowercase) and pre-tokenizer; llama.cpp's "▁"
//            phantom spaces become "##" continuations again. Pass [CLS] as bos, [SEP] as eos.
// Not here: reading the GGUF file itself, "t5" and other vocabularies (refused with an Error).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace llmkit::tokenizer {

struct GgufVocab {
  std::string model;  // tokenizer.ggml.model: "gpt2" | "llama" | "bert"
  std::string pre;    // tokenizer.ggml.pre ("default", "smollm", "llama-bpe", "qwen2", ...)
  std::vector<std::string> tokens;
  std::vector<float> scores;  // "llama": one per token
  std::vector<int32_t>
      token_types;  // 1 normal, 2 unknown, 3 control, 4 user defined, 5 unused, 6 byte
  std::vector<std::string> merges;  // "gpt2": "a b", rank order
  int32_t bos = -1, eos = -1, unk = -1, pad = -1;
  bool add_bos = false, add_eos = false, add_space_prefix = false;
};

// GGUF's token types (llama.cpp's llama_token_type).
inline constexpr int32_t kGgufTokenNormal = 1, kGgufTokenUnknown = 2, kGgufTokenControl = 3,
                         kGgufTokenUserDefined = 4, kGgufTokenUnused = 5, kGgufTokenByte = 6;

}  // namespace llmkit::tokenizer
