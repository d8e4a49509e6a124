// Translation with a trained encoder-decoder (the notes' example: the encoder reads English, the
// decoder writes Korean through cross-attention): load a run directory, translate texts in
// batches with the cached greedy decoder, and score a held-out set with corpus BLEU and chrF
// (llmkit/infer/bleu.h). What `llmkit translate` calls; the translate objective of task_t5.cpp
// encodes pairs with the same function, so training and translation see the same ids.
#pragma once

#include <memory>
#include <span>
#include <string>
#include <vector>

#include "llmkit/data/pairs.h"
#include "llmkit/infer/bleu.h"
#include "llmkit/models/t5.h"
#include "llmkit/tokenizer/tokenizer.h"

namespace llmkit::train {

// config.json (arch t5 or bart) + model.safetensors of a run directory, in eval mode.
std::unique_ptr<models::T5> load_t5(const std::string& dir);

// Text -> ids ending with eos, cut to max_len tokens (eos kept).
std::vector<int32_t> encode_with_eos(const tokenizer::Tokenizer& tok, const std::string& text,
                                     int32_t eos_id, int64_t max_len);

struct TranslateOptions {
  int64_t batch_size = 16;     // sources decoded together (sorted by length, so little padding)
  int64_t max_new_tokens = 0;  // 0: block_size
  // Never repeat an n-gram of this many tokens within a translation (Hugging Face's
  // no_repeat_ngram_size): stops the loops ("이름 이름 이름 ...") a small greedy model falls into.
  // 0: off.
  int64_t no_repeat_ngram = 3;
};

// Greedy choice that bans every token which would complete an n-gram already in `history`, then
// appends the choice to history (T5GenerateOptions::pick calls it once per row and step).
int32_t pick_no_repeat(std::span<const float> logits, std::vector<int32_t>& history, int64_t n);

// One translation per source, in order (greedy decoding with the decoder caches).
std::vector<std::string> translate(models::T5& model, const tokenizer::Tokenizer& tok,
                                   const std::vector<std::string>& sources,
                                   const TranslateOptions& opt = {});

struct TranslationReport {
  infer::BleuScore bleu{};
  double chrf = 0;
  int64_t pairs = 0;
  double seconds = 0;
  std::vector<std::string> hypotheses;  // in the order of the pairs
};

// Translates the sources of `pairs` and scores them against their targets.
TranslationReport evaluate_translation(models::T5& model, const tokenizer::Tokenizer& tok,
                                       const std::vector<data::TextPair>& pairs,
                                       const TranslateOptions& opt = {});

}  // namespace llmkit::train
