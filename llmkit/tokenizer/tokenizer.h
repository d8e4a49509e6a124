// Tokenizer: text <-> token ids. One class for the models llmkit has:
//   - byte-level BPE as GPT-2 defines it (pre-tokenize with the GPT-2 pattern, then merge bytes
//     by rank): any byte string encodes without unknown tokens; loads GPT-2's encoder.json +
//     vocab.bpe and Hugging Face tokenizer.json, trains on files of any size;
//   - a character (syllable) tokenizer, str2idx / idx2str over the characters of a text, for
//     teaching and small models.
//   - any tokenizer.json of the Hugging Face pipeline llmkit implements (hf_pipeline.h:
//     normalizers, pre-tokenizers, BPE / WordPiece / Unigram, post-processors, decoders; see
//     docs/tokenizers-hf.md), and GGUF's embedded vocabularies (gguf_vocab.h).
// GPT-2-style files take the original fast path. Either built-in model can first decompose Hangul
// syllables into jamo. Special tokens (<|endoftext|>, [PAD] ...) are matched in text only when
// EncodeOptions asks. All const methods are thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace llmkit::tokenizer {

// kWordPiece and kUnigram exist only with a Hugging Face pipeline (TokenizerParts::pipeline).
enum class Model { kBpe, kChar, kWordPiece, kUnigram };

struct GgufVocab;

// Common special-token sets (any strings work).
inline const std::vector<std::string> kGptSpecialTokens = {"<|endoftext|>"};
inline const std::vector<std::string> kBertSpecialTokens = {"[PAD]", "[UNK]", "[CLS]", "[SEP]",
                                                            "[MASK]"};
inline const std::vector<std::string> kChatSpecialTokens = {"<|im_start|>", "<|im_end|>"};

// Where training is: stage "read" counts input bytes, "merge" counts merges, "char" bytes.
struct TrainProgress {
  std::string_view stage;
  int64_t done = 0, total = 0;
};

struct TrainOptions {
  Model model = Model::kBpe;
  int32_t vocab_size = 8000;  // special tokens + 256 bytes + merges (BPE), or characters
  int64_t min_frequency = 2;  // BPE stops when the best pair occurs fewer times
  std::vector<std::string> special_tokens = kGptSpecialTokens;  // get ids 0, 1, ...
  bool hangul_to_jamo = false;  // decompose Hangul syllables to jamo (NFD) before everything
  std::function<void(const TrainProgress&)> on_progress;  // called from the calling thread
  std::function<void(const std::string&)> on_warning;     // e.g. invalid UTF-8 at a byte offset
};

struct EncodeOptions {
  bool allow_special = false;                // recognise every special token in the text
  std::vector<std::string> allowed_special;  // or only these; each must be a special token
  // Run the tokenizer.json post-processor ([CLS] ... [SEP], <s> ...). No effect without one.
  bool add_special_tokens = false;
};

// Everything a tokenizer is made of; what the file readers and the trainer produce.
struct TokenizerParts {
  Model model = Model::kBpe;
  std::vector<std::string> tokens;  // id -> token text (byte-level text for BPE: "Ġthe")
  std::vector<std::pair<int32_t, int32_t>> merges;  // BPE: token ids of each merge, rank order
  std::vector<int32_t> special_ids;  // ids of the added tokens ("special" in tokenizer.json)
  int32_t unk_id = -1;               // char model: id for characters it does not know
  bool hangul_to_jamo = false;
  std::vector<double> scores;  // Unigram: log-probability of each token
  // A Hugging Face pipeline, as JSON text: tokenizer.json's normalizer, pre_tokenizer, model
  // (without vocab and merges), post_processor, decoder, added_tokens, truncation, padding.
  // Empty: the built-in GPT-2 byte-level BPE or char pipeline. With a pipeline, special_ids
  // are the added tokens marked special; other added tokens always match in text.
  std::string pipeline;
};

class Tokenizer {
 public:
  // Builds a tokenizer; throws llmkit::Error naming what is inconsistent.
  explicit Tokenizer(TokenizerParts parts);
  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;
  ~Tokenizer();

  // Reads a Hugging Face tokenizer.json, or GPT-2's files: `path` may be encoder.json (with
  // vocab.bpe beside it) or a directory holding both.
  static Tokenizer load(const std::string& path);
  static Tokenizer load_gpt2(const std::string& encoder_json, const std::string& vocab_bpe);
  // Trains on the files (streamed; memory grows with distinct pre-tokens, not file size).
  static Tokenizer train(std::span<const std::string> files, const TrainOptions& options);
  static Tokenizer train_from_text(std::string_view text, const TrainOptions& options);
  // Writes tokenizer.json (Hugging Face format).
  void save(const std::string& path) const;
  std::string to_json() const;
  // `name` is used in error messages (a file name).
  static Tokenizer from_json(std::string_view json, const std::string& name = "tokenizer.json");
  // The tokenizer GGUF files embed (tokenizer.ggml.*), from the already-read arrays.
  static Tokenizer from_gguf_vocab(const GgufVocab& vocab);

  std::vector<int32_t> encode(std::string_view text, const EncodeOptions& options = {}) const;
  // Encodes many texts, in parallel over num_threads().
  std::vector<std::vector<int32_t>> encode_batch(std::span<const std::string> texts,
                                                 const EncodeOptions& options = {}) const;
  // ids -> text. Bytes that do not form valid UTF-8 become U+FFFD; an id outside the
  // vocabulary throws llmkit::Error.
  std::string decode(std::span<const int32_t> ids, bool skip_special = false) const;

  int32_t vocab_size() const;
  // The id of a token text ("<|endoftext|>", "Ġthe"); throws llmkit::Error when absent.
  int32_t token_to_id(std::string_view token) const;
  std::optional<int32_t> find_token(std::string_view token) const;
  const std::string& id_to_token(int32_t id) const;
  bool is_special(int32_t id) const;
  // The special tokens' texts, in id order.
  std::vector<std::string> special_tokens() const;
  const TokenizerParts& parts() const;
  Model model() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace llmkit::tokenizer
