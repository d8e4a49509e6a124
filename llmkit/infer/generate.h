// Text generation (1.3 언어 모델링: predict the next token, append it, repeat) with a KV cache: the
// prompt is run once (prefill), then each new token costs one position of attention per layer
// (decode). Without the cache (use_cache = false) every step recomputes the whole sequence; both
// give the same tokens, which the tests check. The same loop drives an RNN language model, whose
// state plays the cache's part at a constant cost per token (2-1: the whole past in one vector).
#pragma once

#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "llmkit/infer/sampler.h"
#include "llmkit/models/gpt.h"
#include "llmkit/models/load.h"
#include "llmkit/models/rnn_lm.h"
#include "llmkit/tokenizer/tokenizer.h"

namespace llmkit::infer {

struct GenerateOptions {
  int64_t max_new_tokens = 128;
  SamplerOptions sampler;
  std::vector<std::string> stop_strings;  // stop when the generated text contains one (cut there)
  std::vector<int32_t> stop_ids;          // e.g. <|endoftext|>; the stop token is not emitted
  bool use_cache = true;
};

struct GenerateStats {
  int64_t prompt_tokens = 0, new_tokens = 0;
  double prefill_seconds = 0, decode_seconds = 0;
  std::string stop_reason;  // "max_new_tokens", "stop_id", "stop_string", "context"
};

// Called with each token id as it is chosen; return false to stop.
using TokenCallback = std::function<bool(int32_t id)>;

// What generation needs from a decoder: the logits of the next token after the tokens fed so
// far. Adapters for GPT (KV cache or recompute) and RNNLM (carried state) follow.
class Decoder {
 public:
  virtual ~Decoder() = default;
  // The longest sequence the model reads (0: unbounded).
  virtual int64_t context() const = 0;
  // Starts a new sequence.
  virtual void reset(bool use_cache) = 0;
  // `seq` is the whole sequence so far; its last `fresh` tokens have not been fed yet. Returns
  // the next-token logits after seq, in a buffer the decoder owns and reuses: valid until the
  // next call.
  virtual std::span<const float> next_logits(std::span<const int32_t> seq, size_t fresh) = 0;
};

class GptDecoder : public Decoder {
 public:
  explicit GptDecoder(models::GPT& model) : model_(model) {}
  int64_t context() const override { return model_.config().block_size; }
  void reset(bool use_cache) override;
  std::span<const float> next_logits(std::span<const int32_t> seq, size_t fresh) override;

 private:
  models::GPT& model_;
  bool use_cache_ = true;
  std::vector<nn::KVCache> caches_;
  std::vector<float> row_;
};

class RnnDecoder : public Decoder {
 public:
  explicit RnnDecoder(models::RNNLM& model) : model_(model) {}
  int64_t context() const override { return 0; }
  void reset(bool) override { state_ = model_.make_state(1); }
  std::span<const float> next_logits(std::span<const int32_t> seq, size_t fresh) override;

 private:
  models::RNNLM& model_;
  nn::RNNState state_;
  std::vector<float> row_;
};

// generate_text with the prompt already tokenised (a bos id first, a chat template's ids).
std::string generate_text_from_ids(Decoder& decoder, const tokenizer::Tokenizer& tok,
                                   std::span<const int32_t> prompt_ids, const GenerateOptions& opt,
                                   const std::function<void(std::string_view)>& on_text = {},
                                   GenerateStats* stats = nullptr);

// The generation adapter over a loaded decoder, which must outlive it: infer::Engine (engine.h)
// for gpt and llama (a .gguf loaded without its module runs on its stored, quantised weights),
// RnnDecoder for rnn; an Error naming the arch for encoders (bert, t5).
std::unique_ptr<Decoder> make_decoder(models::LoadedModel& loaded);

// Generation options from a loaded model: stop at its eos ids.
GenerateOptions with_model_stops(const models::LoadedModel& loaded, GenerateOptions opt);

// The prompt's ids with the loaded model's tokenizer (an Error when it has none), bos first when
// the tokenizer config says add_bos_token.
std::vector<int32_t> encode_prompt(const models::LoadedModel& loaded, std::string_view prompt);

// Generates after `prompt` (ids) with any decoder (model in eval mode). Generation stops
// ("context") when the decoder's context is full; a prompt that leaves no room is an Error.
std::vector<int32_t> generate_ids(Decoder& decoder, std::span<const int32_t> prompt,
                                  const GenerateOptions& opt, const TokenCallback& on_token = {},
                                  GenerateStats* stats = nullptr);
std::string generate_text(Decoder& decoder, const tokenizer::Tokenizer& tok,
                          std::string_view prompt, const GenerateOptions& opt,
                          const std::function<void(std::string_view)>& on_text = {},
                          GenerateStats* stats = nullptr);

// Generates after `prompt` (ids). The model must be in eval mode. The context is the model's
// block_size: generation stops ("context") when it is full; a prompt that does not leave room for
// one new token is an Error.
std::vector<int32_t> generate_ids(models::GPT& model, std::span<const int32_t> prompt,
                                  const GenerateOptions& opt, const TokenCallback& on_token = {},
                                  GenerateStats* stats = nullptr);

// Called with each row's token id as it is chosen; return false to stop that row.
using RowTokenCallback = std::function<bool(size_t row, int32_t id)>;

// Generates after every prompt at once: one batched forward per step over all rows (left-padded,
// models::GPT::forward_rows), so a batch of B prompts costs about what one costs on a machine
// that is not compute-bound -- the rollouts of PPO and the samples of an evaluation. Row i draws
// with opt.sampler and seed seeds[i]: its tokens are those of generate_ids(model, prompts[i])
// with that seed (up to float rounding). A row stops at a stop id (not emitted), when on_token
// returns false (the token is emitted), or at opt.max_new_tokens; stop strings are not supported.
// Finished rows still ride along in the batch until all are done. The batch stops when its
// longest row fills the context. Errors: no prompts, an empty prompt, one that fills the context.
std::vector<std::vector<int32_t>> generate_batch(models::GPT& model,
                                                 std::span<const std::vector<int32_t>> prompts,
                                                 const GenerateOptions& opt,
                                                 std::span<const uint64_t> seeds,
                                                 const RowTokenCallback& on_token = {});

// Text in, text out, streaming the decoded text to on_text as soon as it forms whole UTF-8
// characters. Stop strings are honoured in the streamed text too: neither a stop string, nor any
// part of one, nor text after it is ever sent (text_stream.h).
std::string generate_text(models::GPT& model, const tokenizer::Tokenizer& tok,
                          std::string_view prompt, const GenerateOptions& opt,
                          const std::function<void(std::string_view)>& on_text = {},
                          GenerateStats* stats = nullptr);

}  // namespace llmkit::infer
