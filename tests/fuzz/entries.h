// Fuzz entry points: one function per parser of outside input, fed arbitrary bytes. Each calls
// the same library function the tools call on a file of those bytes, then checks what a parse
// that succeeded must satisfy (everything it returns can be read; text formats read back what
// they write). Shared by the libFuzzer targets (targets/*.cpp, the LLMKIT_FUZZ build) and by
// test_fuzz_corpus, which replays the committed corpora and crashers in the normal build.
// Contract: bad input may throw llmkit::Error and nothing else; a broken check throws
// InvariantBroken; anything else escaping (or a sanitizer report) is a bug in the parser.
#pragma once

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace llmkit::fuzz {

struct InvariantBroken : std::logic_error {
  using std::logic_error::logic_error;
};

using Entry = void (*)(const uint8_t* data, size_t size);

void safetensors(const uint8_t* data, size_t size);      // header + data, in memory and mapped
void tokenizer_json(const uint8_t* data, size_t size);   // tokenizer.json, then encode/decode
void token_shard(const uint8_t* data, size_t size);      // a token shard file (train.bin)
void config_json(const uint8_t* data, size_t size);      // model config + train config
void pairs_tsv(const uint8_t* data, size_t size);        // translation pairs
void chat_transcript(const uint8_t* data, size_t size);  // transcript, trimming, stop matcher
void gguf(const uint8_t* data, size_t size);             // GGUF, in memory and mapped; to_f32

struct Target {
  const char* name;  // the corpus folder: tests/fuzz/corpus/<name>
  Entry entry;
};
const std::vector<Target>& targets();

}  // namespace llmkit::fuzz
