// Span corruption and text infilling (span_corruption.h).
#include "llmkit/data/span_corruption.h"

#include <algorithm>
#include <cmath>

#include "llmkit/core/error.h"

namespace llmkit::data {

namespace {

double uniform01(Generator& gen) {
  return static_cast<double>(gen.next_u64() >> 11) * 0x1.0p-53;
}

// Splits n items into k non-empty segments uniformly (T5's _random_segmentation): k - 1 of the
// n - 1 gaps between items, chosen by a partial Fisher-Yates shuffle, start a new segment.
std::vector<int64_t> random_segmentation(int64_t n, int64_t k, Generator& gen) {
  std::vector<int64_t> gaps(n - 1);
  for (int64_t i = 0; i < n - 1; ++i) gaps[i] = i;
  for (int64_t i = 0; i < k - 1; ++i) {
    const int64_t j = i + static_cast<int64_t>(gen.randint(static_cast<uint64_t>(n - 1 - i)));
    std::swap(gaps[i], gaps[j]);
  }
  std::vector<int64_t> cuts(gaps.begin(), gaps.begin() + (k - 1));
  std::sort(cuts.begin(), cuts.end());
  std::vector<int64_t> lengths;
  int64_t start = 0;
  for (int64_t c : cuts) {  // a cut after item c
    lengths.push_back(c + 1 - start);
    start = c + 1;
  }
  lengths.push_back(n - start);
  return lengths;
}

// Knuth's method; fine for the small means (~3) span lengths use.
int64_t poisson(double mean, Generator& gen) {
  const double limit = std::exp(-mean);
  int64_t k = 0;
  double p = uniform01(gen);
  while (p > limit) {
    ++k;
    p *= uniform01(gen);
  }
  return k;
}

void check_args(int64_t length, double noise_density, double mean_span, const char* op) {
  LLMKIT_CHECK(length >= 2, op, ": need at least 2 tokens, got ", length);
  LLMKIT_CHECK(noise_density > 0 && noise_density < 1, op, ": noise_density ", noise_density,
               " outside (0, 1)");
  LLMKIT_CHECK(mean_span >= 1, op, ": mean_span ", mean_span, " must be >= 1");
}

}  // namespace

std::vector<bool> random_spans_noise_mask(int64_t length, double noise_density, double mean_span,
                                          Generator& gen) {
  check_args(length, noise_density, mean_span, "span corruption");
  const int64_t noise = std::clamp<int64_t>(std::llround(length * noise_density), 1, length - 1);
  const int64_t nonnoise = length - noise;
  const int64_t spans =
      std::clamp<int64_t>(std::llround(noise / mean_span), 1, std::min(noise, nonnoise));
  const std::vector<int64_t> noise_len = random_segmentation(noise, spans, gen);
  const std::vector<int64_t> keep_len = random_segmentation(nonnoise, spans, gen);
  std::vector<bool> mask;
  mask.reserve(length);
  for (int64_t s = 0; s < spans; ++s) {
    mask.insert(mask.end(), keep_len[s], false);
    mask.insert(mask.end(), noise_len[s], true);
  }
  return mask;
}

Seq2SeqExample span_corruption(std::span<const int32_t> tokens, double noise_density,
                               double mean_span, std::span<const int32_t> sentinels, int32_t eos_id,
                               Generator& gen) {
  const int64_t n = static_cast<int64_t>(tokens.size());
  const std::vector<bool> noise = random_spans_noise_mask(n, noise_density, mean_span, gen);
  Seq2SeqExample ex;
  size_t span = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (!noise[i]) {
      ex.input.push_back(tokens[i]);
      continue;
    }
    if (i == 0 || !noise[i - 1]) {  // a span starts: one sentinel in both
      LLMKIT_CHECK(span < sentinels.size(), "span corruption: more than ", sentinels.size(),
                   " spans (", n, " tokens); shorten the window or add sentinels");
      ex.input.push_back(sentinels[span]);
      ex.target.push_back(sentinels[span]);
      ++span;
    }
    ex.target.push_back(tokens[i]);
  }
  ex.input.push_back(eos_id);
  ex.target.push_back(eos_id);
  return ex;
}

SpanLengths span_corruption_lengths(int64_t max_input, double noise_density, double mean_span) {
  SpanLengths best;
  for (int64_t len = 2; len <= 4 * max_input + 8; ++len) {
    const int64_t noise = std::clamp<int64_t>(std::llround(len * noise_density), 1, len - 1);
    const int64_t spans =
        std::clamp<int64_t>(std::llround(noise / mean_span), 1, std::min(noise, len - noise));
    const int64_t input = len - noise + spans + 1, target = noise + spans + 1;
    if (input <= max_input) best = {len, input, target};
  }
  LLMKIT_CHECK(best.tokens > 0, "span corruption: max_input ", max_input, " is too short");
  return best;
}

Seq2SeqExample text_infilling(std::span<const int32_t> tokens, double noise_density,
                              double mean_span, int32_t mask_id, int32_t eos_id, Generator& gen) {
  const int64_t n = static_cast<int64_t>(tokens.size());
  check_args(n, noise_density, mean_span, "text infilling");
  const int64_t to_mask = std::clamp<int64_t>(std::llround(n * noise_density), 1, n - 1);
  std::vector<int64_t> spans;  // lengths; 0 = an inserted mask
  for (int64_t total = 0; total < to_mask;) {
    const int64_t len = std::min(poisson(mean_span, gen), to_mask - total);
    spans.push_back(len);
    total += len;
  }
  // Place the k spans among the n - to_mask kept tokens: a uniform composition of the kept
  // tokens into k + 1 gaps (stars and bars: k bars among kept + k slots).
  const int64_t k = static_cast<int64_t>(spans.size()), kept = n - to_mask;
  std::vector<int64_t> slots(kept + k);
  for (int64_t i = 0; i < kept + k; ++i) slots[i] = i;
  for (int64_t i = 0; i < k; ++i) {
    const int64_t j = i + static_cast<int64_t>(gen.randint(static_cast<uint64_t>(kept + k - i)));
    std::swap(slots[i], slots[j]);
  }
  std::vector<int64_t> bars(slots.begin(), slots.begin() + k);
  std::sort(bars.begin(), bars.end());
  Seq2SeqExample ex;
  int64_t pos = 0, prev_bar = -1;
  for (int64_t s = 0; s < k; ++s) {
    const int64_t gap = bars[s] - prev_bar - 1;  // kept tokens before span s
    prev_bar = bars[s];
    ex.input.insert(ex.input.end(), tokens.begin() + pos, tokens.begin() + pos + gap);
    pos += gap;
    ex.input.push_back(mask_id);
    pos += spans[s];
  }
  ex.input.insert(ex.input.end(), tokens.begin() + pos, tokens.end());
  ex.input.push_back(eos_id);
  ex.target.assign(tokens.begin(), tokens.end());
  ex.target.push_back(eos_id);
  return ex;
}

}  // namespace llmkit::data
