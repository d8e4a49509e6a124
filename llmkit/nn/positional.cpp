#include "llmkit/nn/positional.h"

#include <cmath>
#include <vector>

namespace llmkit::nn {

PosEncoding parse_pos_encoding(const std::string& name) {
  if (name == "learned") return PosEncoding::Learned;
  if (name == "sinusoidal") return PosEncoding::Sinusoidal;
  if (name == "rope") return PosEncoding::Rope;
  if (name == "alibi") return PosEncoding::Alibi;
  fail("pos_encoding '", name, "' is not one of learned, sinusoidal, rope, alibi");
}

const char* pos_encoding_name(PosEncoding p) {
  switch (p) {
    case PosEncoding::Learned:
      return "learned";
    case PosEncoding::Sinusoidal:
      return "sinusoidal";
    case PosEncoding::Rope:
      return "rope";
    case PosEncoding::Alibi:
      return "alibi";
  }
  return "?";
}

Tensor sinusoidal_table(int64_t T, int64_t C, DType dt) {
  std::vector<double> pe(T * C);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t i = 0; i < C; i += 2) {
      const double angle = t / std::pow(10000.0, static_cast<double>(i) / C);
      pe[t * C + i] = std::sin(angle);
      if (i + 1 < C) pe[t * C + i + 1] = std::cos(angle);
    }
  return Tensor::from_vector(pe, {T, C}).to(dt);
}

static std::vector<double> slopes_pow2(int64_t n) {
  std::vector<double> s(n);
  const double start = std::pow(2.0, -8.0 / n);
  for (int64_t i = 0; i < n; ++i) s[i] = std::pow(start, i + 1);
  return s;
}

std::vector<double> alibi_slopes(int64_t n) {
  int64_t p = 1;
  while (p * 2 <= n) p *= 2;
  std::vector<double> s = slopes_pow2(p);
  if (p == n) return s;
  const std::vector<double> extra = slopes_pow2(2 * p);  // every other slope of the next power
  for (int64_t i = 0; static_cast<int64_t>(s.size()) < n; i += 2) s.push_back(extra[i]);
  return s;
}

Tensor alibi_bias(int64_t n_head, int64_t Tq, int64_t Tk, int64_t pos0, DType dt) {
  const std::vector<double> slopes = alibi_slopes(n_head);
  std::vector<double> b(n_head * Tq * Tk);
  for (int64_t h = 0; h < n_head; ++h)
    for (int64_t i = 0; i < Tq; ++i)
      for (int64_t j = 0; j < Tk; ++j)
        b[(h * Tq + i) * Tk + j] = -slopes[h] * static_cast<double>(std::abs(i + pos0 - j));
  return Tensor::from_vector(b, {n_head, Tq, Tk}).to(dt);
}

}  // namespace llmkit::nn
