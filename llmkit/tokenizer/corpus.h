// Training input: files streamed in blocks cut where pre-tokenization is unaffected, and the
// parallel count of pre-tokens ("words") that BPE training starts from. Memory is the block
// buffer plus one table of distinct words per thread, whatever the corpus size. Invalid UTF-8
// is kept as bytes and reported (file and byte offset) through the warning callback.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "llmkit/tokenizer/tokenizer.h"

namespace llmkit::tokenizer {

struct CorpusBlock {
  std::string_view text;
  size_t file = 0;     // index into the file list
  int64_t offset = 0;  // byte offset of text in that file
};

// Calls fn for consecutive blocks of each file (about block_bytes each; a block ends at a
// gpt2_safe_cut or at the end of its file). Throws llmkit::Error naming a file it cannot read.
// Reports progress ("read", bytes so far, total bytes) and empty files through `options`.
void read_corpus(std::span<const std::string> files, size_t block_bytes,
                 const TrainOptions& options, const std::function<void(const CorpusBlock&)>& fn);

struct WordCounts {
  std::vector<std::string> words;  // distinct pre-tokens (raw bytes, after jamo decomposition)
  std::vector<int64_t> counts;     // occurrences of each
  int64_t n_bytes = 0;             // input bytes seen
};

// Counts the GPT-2 pre-tokens of the files, in parallel over num_threads().
WordCounts count_words(std::span<const std::string> files, const TrainOptions& options);
// The same for text in memory.
WordCounts count_words_in_text(std::string_view text, const TrainOptions& options);

// BPE training proper, from word counts (bpe_trainer.cpp).
TokenizerParts train_bpe(const WordCounts& counts, const TrainOptions& options);
// Character model training (char_model.cpp).
TokenizerParts train_chars(std::span<const std::string> files, std::string_view text,
                           const TrainOptions& options);

}  // namespace llmkit::tokenizer
