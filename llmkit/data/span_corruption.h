// The encoder-decoder pretraining objectives (1.1.3 언어 모델링 and the notes' table of families:
// BART, T5 — the model learns to restore corrupted text):
//   T5 span corruption (Raffel et al. 2020, 3.1.4): about noise_density of the tokens, in spans of
//   mean length mean_span, are each replaced in the input by one sentinel <extra_id_k>; the target
//   lists every sentinel followed by the span it replaced, then </s>.
//     text   The cute dog walks in the park
//     input  The <extra_id_0> walks <extra_id_1> park </s>
//     target <extra_id_0> cute dog <extra_id_1> in the </s>
//   BART text infilling (Lewis et al. 2020, 2.2): spans with Poisson(mean_span) lengths (a length 0
//   span inserts a mask) are each replaced by a single <mask>; the target is the whole text.
// Both are pure functions of the tokens and a Generator, so a seed gives the same examples.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "llmkit/core/random.h"

namespace llmkit::data {

struct Seq2SeqExample {
  std::vector<int32_t> input, target;  // both end with eos
};

// Which tokens of a sequence of `length` are noise, T5's random_spans_noise_mask: round(length *
// noise_density) noise tokens (at least 1, at most length - 1) in round(noise / mean_span) spans
// (at least 1), alternating with non-noise spans, starting with non-noise. Span lengths are
// random partitions, so the mean noise span is noise / spans ~ mean_span.
std::vector<bool> random_spans_noise_mask(int64_t length, double noise_density, double mean_span,
                                          Generator& gen);

// T5 span corruption of `tokens` with sentinels[k] for span k (an Error if there are more spans
// than sentinels).
Seq2SeqExample span_corruption(std::span<const int32_t> tokens, double noise_density,
                               double mean_span, std::span<const int32_t> sentinels, int32_t eos_id,
                               Generator& gen);

// The longest token window whose span-corrupted input (with eos) fits in max_input tokens, and
// the target length that window gives (the T5 paper's inputs_length -> tokens_length rule).
struct SpanLengths {
  int64_t tokens = 0, input = 0, target = 0;
};
SpanLengths span_corruption_lengths(int64_t max_input, double noise_density, double mean_span);

// BART text infilling of `tokens`: about noise_density of the tokens masked, span lengths drawn
// from Poisson(mean_span), each span (also an empty one) replaced by one mask_id.
Seq2SeqExample text_infilling(std::span<const int32_t> tokens, double noise_density,
                              double mean_span, int32_t mask_id, int32_t eos_id, Generator& gen);

}  // namespace llmkit::data
