#include "llmkit/infer/sampler.h"

#include <algorithm>
#include <cmath>

#include "llmkit/core/error.h"
#include "llmkit/core/random.h"

namespace llmkit::infer {

int32_t argmax(std::span<const float> v) {
  LLMKIT_CHECK(!v.empty(), "argmax: empty logits");
  for (float x : v) LLMKIT_CHECK(!std::isnan(x), "sampler: NaN in logits");
  return static_cast<int32_t>(std::max_element(v.begin(), v.end()) - v.begin());
}

Sampler::Sampler(SamplerOptions opt) : opt_(opt) {
  LLMKIT_CHECK(opt.temperature >= 0 && std::isfinite(opt.temperature), "sampler: temperature ",
               opt.temperature, " must be >= 0");
  LLMKIT_CHECK(opt.top_k >= 0, "sampler: top_k ", opt.top_k, " must be >= 0");
  LLMKIT_CHECK(opt.top_p > 0 && opt.top_p <= 1, "sampler: top_p ", opt.top_p, " must be in (0, 1]");
  LLMKIT_CHECK(opt.repetition_penalty > 0, "sampler: repetition_penalty ", opt.repetition_penalty,
               " must be > 0");
  LLMKIT_CHECK(std::isfinite(opt.frequency_penalty) && std::isfinite(opt.presence_penalty),
               "sampler: frequency and presence penalties must be finite");
}

bool Sampler::penalised() const {
  return opt_.repetition_penalty != 1.0 || opt_.frequency_penalty != 0 ||
         opt_.presence_penalty != 0;
}

void Sampler::candidates(std::span<const float> logits, std::span<const int32_t> history) {
  const int64_t V = static_cast<int64_t>(logits.size());
  LLMKIT_CHECK(V > 0, "sampler: empty logits");
  work_.assign(logits.begin(), logits.end());
  for (float x : work_) LLMKIT_CHECK(!std::isnan(x), "sampler: NaN in logits");
  if (opt_.repetition_penalty != 1.0)
    for (int32_t id : history)
      if (id >= 0 && id < V) {
        float& x = work_[id];
        // Applied once per distinct id: mark by checking against the original logit.
        if (x == logits[id]) x = x > 0 ? x / opt_.repetition_penalty : x * opt_.repetition_penalty;
      }
  for (const auto& [id, c] : drawn_)
    if (id < V) work_[id] -= static_cast<float>(c * opt_.frequency_penalty + opt_.presence_penalty);
  // Scaled as (x - max) / T in double: x / T alone overflows float for a tiny temperature
  // (1e-39 turned logits into inf, then the softmax into NaN); this way the largest logit is
  // exactly 0, the rest tend to -inf, so a tiny T tends to greedy as it should. The max itself
  // maps to 0 directly, which also covers x = +inf and T so small that 1 / T is inf.
  const float mx_logit = *std::max_element(work_.begin(), work_.end());
  const double inv_t = 1.0 / opt_.temperature;
  cand_.clear();
  for (int32_t i = 0; i < V; ++i) {
    const float x = work_[i];
    cand_.emplace_back(x == mx_logit ? 0.0f : static_cast<float>((double(x) - mx_logit) * inv_t),
                       i);
  }
  auto by_logit = [](const auto& a, const auto& b) {
    return a.first > b.first || (a.first == b.first && a.second < b.second);
  };
  int64_t keep = V;
  if (opt_.top_k > 0 && opt_.top_k < V) keep = opt_.top_k;
  if (opt_.top_p < 1.0) {
    std::sort(cand_.begin(), cand_.end(), by_logit);  // nucleus needs the full order
  } else if (keep < V) {
    std::nth_element(cand_.begin(), cand_.begin() + keep, cand_.end(), by_logit);
    std::sort(cand_.begin(), cand_.begin() + keep, by_logit);
  }
  cand_.resize(keep);
  // Softmax over the kept logits (max first when sorted; else find it).
  float mx = -INFINITY;
  for (auto& c : cand_) mx = std::max(mx, c.first);
  double sum = 0;
  for (auto& c : cand_) sum += (c.first = std::exp(c.first - mx));
  for (auto& c : cand_) c.first = static_cast<float>(c.first / sum);
  if (opt_.top_p < 1.0) {
    double mass = 0;
    size_t n = 0;
    while (n < cand_.size() && mass < opt_.top_p) mass += cand_[n++].first;
    cand_.resize(std::max<size_t>(n, 1));
    for (auto& c : cand_) c.first = static_cast<float>(c.first / mass);
  }
}

int32_t Sampler::sample(std::span<const float> logits, std::span<const int32_t> history) {
  const int32_t id = pick(logits, history);
  if (opt_.frequency_penalty != 0 || opt_.presence_penalty != 0) ++drawn_[id];
  return id;
}

int32_t Sampler::pick(std::span<const float> logits, std::span<const int32_t> history) {
  if (opt_.temperature == 0) {
    if (!penalised()) return argmax(logits);
    const double t = opt_.temperature;
    opt_.temperature = 1.0;  // penalise, then take the maximum
    candidates(logits, history);
    opt_.temperature = t;
    return std::max_element(cand_.begin(), cand_.end(),
                            [](auto& a, auto& b) {
                              return a.first < b.first ||
                                     (a.first == b.first && a.second > b.second);
                            })
        ->second;
  }
  candidates(logits, history);
  const double u = uniform_at(opt_.seed, draws_++);
  double acc = 0;
  for (const auto& c : cand_) {
    acc += c.first;
    if (u < acc) return c.second;
  }
  return cand_.back().second;
}

void Sampler::probabilities(std::span<const float> logits, std::span<const int32_t> history,
                            std::span<float> out) {
  LLMKIT_CHECK(out.size() == logits.size(), "sampler: output size differs from logits");
  std::fill(out.begin(), out.end(), 0.0f);
  if (opt_.temperature == 0) {
    out[pick(logits, history)] = 1.0f;
    return;
  }
  candidates(logits, history);
  for (const auto& c : cand_) out[c.second] = c.first;
}

}  // namespace llmkit::infer
