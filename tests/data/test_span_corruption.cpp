// T5 span corruption and BART text infilling: the noise fraction and mean span length over many
// draws, inputs + targets reconstruct the text, the input-length rule, and determinism.
#include <gtest/gtest.h>

#include <map>
#include <numeric>

#include "llmkit/core/error.h"
#include "llmkit/data/pairs.h"
#include "llmkit/data/span_corruption.h"

using namespace llmkit;
using namespace llmkit::data;

namespace {

constexpr int32_t kEos = 1, kMask = 2;
std::vector<int32_t> sentinels() {
  std::vector<int32_t> s(100);
  for (int i = 0; i < 100; ++i) s[i] = 1000 + i;
  return s;
}
std::vector<int32_t> text(int64_t n) {
  std::vector<int32_t> t(n);
  for (int64_t i = 0; i < n; ++i) t[i] = 10 + static_cast<int32_t>(i % 500);
  return t;
}
bool is_sentinel(int32_t id) {
  return id >= 1000 && id < 1100;
}

}  // namespace

TEST(SpanCorruption, NoiseFractionAndMeanSpan) {
  Generator gen(1);
  int64_t noise = 0, total = 0, spans = 0;
  for (int rep = 0; rep < 200; ++rep) {
    const int64_t n = 50 + rep % 80;
    const auto mask = random_spans_noise_mask(n, 0.15, 3.0, gen);
    ASSERT_EQ(static_cast<int64_t>(mask.size()), n);
    EXPECT_FALSE(mask[0]);  // starts with kept text, as T5
    for (int64_t i = 0; i < n; ++i) {
      noise += mask[i];
      spans += mask[i] && (i == 0 || !mask[i - 1]);
    }
    total += n;
  }
  const double frac = double(noise) / total, mean_span = double(noise) / spans;
  std::printf("  noise fraction %.4f, mean span %.3f\n", frac, mean_span);
  EXPECT_NEAR(frac, 0.15, 0.005);
  EXPECT_NEAR(mean_span, 3.0, 0.35);
}

TEST(SpanCorruption, RoundTripAndFormat) {
  Generator gen(7);
  const auto s = sentinels();
  for (int rep = 0; rep < 50; ++rep) {
    const auto t = text(20 + rep);
    const Seq2SeqExample ex = span_corruption(t, 0.15, 3.0, s, kEos, gen);
    ASSERT_EQ(ex.input.back(), kEos);
    ASSERT_EQ(ex.target.back(), kEos);
    ASSERT_TRUE(is_sentinel(ex.target[0]));
    // Rebuild: each sentinel of the input is replaced by the tokens after it in the target.
    std::map<int32_t, std::vector<int32_t>> span;
    int32_t cur = -1;
    for (size_t i = 0; i + 1 < ex.target.size(); ++i) {
      if (is_sentinel(ex.target[i]))
        cur = ex.target[i];
      else
        span[cur].push_back(ex.target[i]);
    }
    std::vector<int32_t> back;
    int32_t expect_sentinel = 1000;
    for (size_t i = 0; i + 1 < ex.input.size(); ++i) {
      if (is_sentinel(ex.input[i])) {
        EXPECT_EQ(ex.input[i], expect_sentinel++);  // in order <extra_id_0>, <extra_id_1>, ...
        back.insert(back.end(), span[ex.input[i]].begin(), span[ex.input[i]].end());
      } else {
        back.push_back(ex.input[i]);
      }
    }
    EXPECT_EQ(back, t);
  }
}

TEST(SpanCorruption, LengthsRuleAndDeterminism) {
  const SpanLengths l = span_corruption_lengths(64, 0.15, 3.0);
  EXPECT_LE(l.input, 64);
  EXPECT_GT(l.tokens, 64);  // corruption shortens the text, so more raw tokens fit
  Generator g(3);
  const auto ex = span_corruption(text(l.tokens), 0.15, 3.0, sentinels(), kEos, g);
  EXPECT_EQ(static_cast<int64_t>(ex.input.size()), l.input);
  EXPECT_EQ(static_cast<int64_t>(ex.target.size()), l.target);
  Generator a(42), b(42);
  const auto t = text(100);
  EXPECT_EQ(span_corruption(t, 0.15, 3.0, sentinels(), kEos, a).input,
            span_corruption(t, 0.15, 3.0, sentinels(), kEos, b).input);
  EXPECT_EQ(a.offset(), b.offset());
  std::vector<int32_t> two = {1000, 1001};
  EXPECT_THROW(span_corruption(text(200), 0.15, 1.0, two, kEos, a), Error);  // too few sentinels
  EXPECT_THROW(span_corruption(text(1), 0.15, 3.0, two, kEos, a), Error);
}

TEST(TextInfilling, NoiseFractionSpansAndRoundTrip) {
  Generator gen(5);
  int64_t masked = 0, total = 0, masks = 0;
  for (int rep = 0; rep < 200; ++rep) {
    const auto t = text(100);
    const Seq2SeqExample ex = text_infilling(t, 0.15, 3.0, kMask, kEos, gen);
    std::vector<int32_t> want = t;
    want.push_back(kEos);
    ASSERT_EQ(ex.target, want);
    ASSERT_EQ(ex.input.back(), kEos);
    // The kept tokens appear in order; what the masks stand for is the rest.
    int64_t kept = 0, m = 0;
    size_t j = 0;
    for (size_t i = 0; i + 1 < ex.input.size(); ++i) {
      if (ex.input[i] == kMask) {
        ++m;
        continue;
      }
      while (j < t.size() && t[j] != ex.input[i]) ++j;
      ASSERT_LT(j, t.size()) << "input token not in order";
      ++j;
      ++kept;
    }
    masked += 100 - kept;
    masks += m;
    total += 100;
  }
  const double frac = double(masked) / total;
  std::printf("  masked fraction %.4f, tokens per <mask> %.3f\n", frac, double(masked) / masks);
  EXPECT_NEAR(frac, 0.15, 0.001);  // exactly round(100 * 0.15) per text
  // Poisson(3) lengths, the last one cut to the budget: a little under 3 tokens per mask.
  EXPECT_GT(double(masked) / masks, 2.0);
  EXPECT_LT(double(masked) / masks, 3.5);
}

// The parallel-corpus reader used by the translate objective (data/pairs.h).
TEST(PairsFile, EscapesErrorsAndHeldOutSplit) {
  const std::string msg = "a\tb\\c\nd";
  EXPECT_EQ(escape_tsv(msg), "a\\tb\\\\c\\nd");
  EXPECT_EQ(unescape_tsv(escape_tsv(msg)), msg);
  TextPair p;
  std::string err;
  ASSERT_TRUE(parse_pair_line("Open\\tfile\t파일 열기\\n", p, &err)) << err;
  EXPECT_EQ(p.source, "Open\tfile");
  EXPECT_EQ(p.target, "파일 열기\n");
  EXPECT_FALSE(parse_pair_line("no tab", p, &err));
  EXPECT_NE(err.find("no tab"), std::string::npos);
  EXPECT_FALSE(parse_pair_line("a\tb\tc", p, &err));
  EXPECT_FALSE(parse_pair_line("\tkorean only", p, &err));
  std::vector<TextPair> all, train, held;
  for (int i = 0; i < 4000; ++i) all.push_back({"message " + std::to_string(i), "메시지"});
  split_pairs(all, 0.05, train, held);
  EXPECT_EQ(train.size() + held.size(), all.size());
  EXPECT_NEAR(double(held.size()) / all.size(), 0.05, 0.01);
  for (const auto& h : held) EXPECT_TRUE(is_held_out(h, 0.05));
  EXPECT_TRUE(is_held_out(held[0], 0.10));  // a larger fraction keeps what a smaller one held out
  EXPECT_THROW(read_pairs("/nonexistent/pairs.tsv"), Error);
}
