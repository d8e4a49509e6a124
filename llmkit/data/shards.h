// Token shards: a corpus tokenized once and kept on disk, so training reads ids, not text.
// Format (little-endian): a 64-byte header -- magic "LLMKTOKS", u32 version (1), u32 bytes per
// token (2 when the vocabulary fits in uint16, else 4), u64 token count, u32 vocab_size, zeros --
// then the ids. Files are memory-mapped for reading and written atomically.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "llmkit/tokenizer/tokenizer.h"

namespace llmkit::data {

void write_shard(const std::string& path, std::span<const int32_t> tokens, int32_t vocab_size);

class TokenShard {
 public:
  // Maps and validates the file (magic, version, size, and every id < vocab_size).
  static TokenShard open(const std::string& path);
  int64_t size() const { return count_; }
  int32_t vocab_size() const { return vocab_; }
  int32_t at(int64_t i) const;
  // Copies ids [start, start + n) to out.
  void read(int64_t start, int64_t n, int32_t* out) const;
  const std::string& path() const { return path_; }

 private:
  std::shared_ptr<const void> map_;  // the mapping; unmapped with the last copy
  const unsigned char* data_ = nullptr;
  int64_t count_ = 0;
  int32_t vocab_ = 0, width_ = 0;
  std::string path_;
};

struct ShardSet {
  std::string train, val;
  int64_t train_tokens = 0, val_tokens = 0;
  bool reused = false;  // true when existing shards matched the inputs
};

// Tokenizes the files (each file one document, followed by <|endoftext|> when the tokenizer has
// it; large files in chunks split at line ends, encoded in parallel) into out_dir/train.bin and
// out_dir/val.bin -- the last val_fraction of the token stream is validation -- and records the
// inputs (paths, sizes, mtimes, tokenizer fingerprint) in out_dir/shards.json. Called again with
// the same inputs, it reuses the shards without tokenizing.
ShardSet prepare_shards(std::span<const std::string> files, const tokenizer::Tokenizer& tok,
                        const std::string& out_dir, double val_fraction = 0.05);

}  // namespace llmkit::data
