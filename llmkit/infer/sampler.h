// Choosing the next token from the model's logits. In the order of Hugging Face transformers'
// logits processors: repetition penalty -> temperature -> top-k -> top-p -> softmax -> draw.
//   greedy (temperature 0): the most likely token
//   temperature: divides the logits; < 1 sharpens, > 1 flattens
//   top-k: keep the k most likely tokens
//   top-p (nucleus): keep the smallest set of most likely tokens whose mass reaches p
//   repetition penalty (CTRL): seen tokens' logits divided by it when positive, multiplied when
//   negative
//   frequency and presence penalties (OpenAI): a token this sampler has already drawn c times
//   loses c * frequency_penalty + presence_penalty from its logit (after the repetition penalty)
// Seeded: the i-th draw uses the i-th value of the seed's Philox stream.
#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <vector>

namespace llmkit::infer {

struct SamplerOptions {
  double temperature = 1.0;  // 0 = greedy
  int top_k = 0;             // 0 = off
  double top_p = 1.0;        // 1 = off
  double repetition_penalty = 1.0;
  double frequency_penalty = 0;  // OpenAI's range: [-2, 2]; over the tokens drawn so far
  double presence_penalty = 0;
  uint64_t seed = 0;
};

// Index of the largest value (the first on ties).
int32_t argmax(std::span<const float> v);

class Sampler {
 public:
  explicit Sampler(SamplerOptions opt);  // Error for out-of-range options
  // Picks the next id from logits [V]; `history` holds the ids so far (for the repetition
  // penalty). The id is counted for the frequency and presence penalties.
  int32_t sample(std::span<const float> logits, std::span<const int32_t> history);
  // The distribution sample() draws from (zeros outside the kept set); out has size V.
  void probabilities(std::span<const float> logits, std::span<const int32_t> history,
                     std::span<float> out);
  const SamplerOptions& options() const { return opt_; }

 private:
  // Fills cand_ with the kept (id, probability) pairs, most likely first.
  void candidates(std::span<const float> logits, std::span<const int32_t> history);
  int32_t pick(std::span<const float> logits, std::span<const int32_t> history);
  bool penalised() const;

  SamplerOptions opt_;
  uint64_t draws_ = 0;
  std::vector<float> work_;                      // penalised, scaled logits [V]
  std::vector<std::pair<float, int32_t>> cand_;  // (probability, id)
  std::map<int32_t, int> drawn_;  // id -> times drawn (only with frequency/presence penalties)
};

}  // namespace llmkit::infer
