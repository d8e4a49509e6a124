// Corpus BLEU and chrF against figures from elsewhere: sacreBLEU's own test suite and README
// (test/test_bleu.py, test/test_chrf.py of github.com/mjpost/sacrebleu), Papineni et al. (2002),
// and NLTK 3.8 via tests/fixtures/bleu/make_figures.py (numbers in figures.txt beside it).
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "llmkit/core/error.h"
#include "llmkit/infer/bleu.h"

using namespace llmkit;
using infer::ChrfOptions;
using infer::corpus_bleu;
using infer::corpus_bleu_multi;
using infer::corpus_chrf;
using Strings = std::vector<std::string>;

constexpr double kTol = 1e-8;

TEST(Bleu, PerfectMatchIs100) {
  const auto s = corpus_bleu({"this is a test", "the cat sat on the mat ."},
                             {"this is a test", "the cat sat on the mat ."});
  EXPECT_NEAR(s.bleu, 100.0, kTol);
  for (double p : s.precisions) EXPECT_NEAR(p, 100.0, kTol);
  EXPECT_EQ(s.brevity_penalty, 1.0);
  EXPECT_EQ(s.hyp_len, 11);
  EXPECT_EQ(s.ref_len, 11);
}

TEST(Bleu, NoOverlapIsZero) {
  const auto s = corpus_bleu({"alpha beta gamma delta"}, {"one two three four"});
  EXPECT_EQ(s.bleu, 0.0);
  EXPECT_EQ(s.precisions[0], 0.0);
}

// sacreBLEU test_bleu.py test_case_statistics: counts [4, 2, 1, 0] of totals [6, 5, 4, 3]; no
// smoothing, so the zero 4-gram precision makes BLEU 0.
TEST(Bleu, SacrebleuStatisticsCase) {
  const auto s =
      corpus_bleu({"am I am a character sequence"}, {"I am a symbol string sequence a a"});
  EXPECT_NEAR(s.precisions[0], 100.0 * 4 / 6, kTol);
  EXPECT_NEAR(s.precisions[1], 100.0 * 2 / 5, kTol);
  EXPECT_NEAR(s.precisions[2], 100.0 * 1 / 4, kTol);
  EXPECT_EQ(s.precisions[3], 0.0);
  EXPECT_EQ(s.bleu, 0.0);
  EXPECT_EQ(s.hyp_len, 6);
  EXPECT_EQ(s.ref_len, 8);
  EXPECT_NEAR(s.brevity_penalty, std::exp(1.0 - 8.0 / 6.0), 1e-15);
}

// sacreBLEU README / test_bleu.py test_corpus_bleu_cases: two reference streams, default 13a
// tokenization; 48.530827 both with sacreBLEU's default smoothing and with none.
TEST(Bleu, SacrebleuReadmeExample) {
  const Strings hyps = {"The dog bit the man.", "It wasn't surprising.",
                        "The man had just bitten him."};
  const std::vector<Strings> refs = {
      {"The dog bit the man.", "It was not unexpected.", "The man bit him first."},
      {"The dog had bit the man.", "No one was surprised.", "The man had bitten the dog."}};
  EXPECT_NEAR(corpus_bleu_multi(hyps, refs).bleu, 48.530827, 1e-6);
  // "ensure that empty hypotheses are not removed": all-empty output scores 0.
  const auto empty = corpus_bleu_multi({"", "", ""}, refs);
  EXPECT_EQ(empty.bleu, 0.0);
  EXPECT_EQ(empty.hyp_len, 0);
  EXPECT_EQ(empty.brevity_penalty, 0.0);
}

// Papineni et al. (2002) section 2.1: "the the the the the the the" has modified unigram
// precision 2/7 against "the cat is on the mat" / "there is a cat on the mat".
TEST(Bleu, PapineniClippedUnigramPrecision) {
  const auto s = corpus_bleu_multi({"the the the the the the the"},
                                   {{"the cat is on the mat"}, {"there is a cat on the mat"}});
  EXPECT_NEAR(s.precisions[0], 100.0 * 2 / 7, kTol);
  EXPECT_EQ(s.bleu, 0.0);
}

// NLTK figures (make_figures.py): Papineni's candidate 1 against his three references.
TEST(Bleu, NltkPapineniThreeReferences) {
  const auto s = corpus_bleu_multi(
      {"it is a guide to action which ensures that the military always obeys the commands of the "
       "party"},
      {{"it is a guide to action that ensures that the military will forever heed party commands"},
       {"it is the guiding principle which guarantees the military forces always being under the "
        "command of the party"},
       {"it is the practical guide for the army always to heed the directions of the party"}});
  EXPECT_NEAR(s.bleu, 50.4566684006, kTol);
  EXPECT_NEAR(s.precisions[0], 94.4444444444, kTol);
  EXPECT_NEAR(s.precisions[1], 58.8235294118, kTol);
  EXPECT_NEAR(s.precisions[2], 43.75, kTol);
  EXPECT_NEAR(s.precisions[3], 26.6666666667, kTol);
  EXPECT_EQ(s.hyp_len, 18);
  EXPECT_EQ(s.ref_len, 18);
}

TEST(Bleu, NltkTwoSegmentCorpus) {
  const std::string ref =
      "it is a guide to action that ensures that the military will forever heed party commands";
  const auto s = corpus_bleu(
      {"it is a guide to action which ensures that the military always obeys the commands of the "
       "party",
       "it is to insure the troops forever hearing the activity guidebook that party direct"},
      {ref, ref});
  EXPECT_NEAR(s.bleu, 27.6822371544, kTol);
  EXPECT_NEAR(s.precisions[0], 59.375, kTol);
  EXPECT_NEAR(s.precisions[1], 30.0, kTol);
  EXPECT_NEAR(s.precisions[2], 21.4285714286, kTol);
  EXPECT_NEAR(s.precisions[3], 15.3846153846, kTol);
  EXPECT_EQ(s.hyp_len, 32);
  EXPECT_EQ(s.ref_len, 32);
}

TEST(Bleu, NltkBrevityPenalty) {
  const auto s =
      corpus_bleu({"the cat sat on the mat"}, {"the cat sat on the mat by the door today"});
  EXPECT_NEAR(s.brevity_penalty, 0.513417119033, 1e-11);
  EXPECT_NEAR(s.bleu, 51.3417119033, kTol);
  EXPECT_EQ(s.hyp_len, 6);
  EXPECT_EQ(s.ref_len, 10);
}

TEST(Bleu, NltkKoreanWords) {
  const auto s = corpus_bleu(
      {"파일 을 열 수 없습니다", "디렉터리 가 비어 있지 않습니다", "알 수 없는 옵션 입니다"},
      {"파일 을 열 수 없습니다", "디렉터리 가 비어 있지 않음", "알 수 없는 옵션"});
  EXPECT_NEAR(s.bleu, 78.2273790327, kTol);
  EXPECT_NEAR(s.precisions[0], 86.6666666667, kTol);
  EXPECT_NEAR(s.precisions[3], 66.6666666667, kTol);
  EXPECT_EQ(s.hyp_len, 15);
  EXPECT_EQ(s.ref_len, 14);
}

// Outputs of sacreBLEU's 13a regexes (transcribed in make_figures.py, run by Python's re).
TEST(Bleu, Tokenize13a) {
  using infer::tokenize_13a;
  EXPECT_EQ(tokenize_13a("The dog bit the man."), "The dog bit the man .");
  EXPECT_EQ(tokenize_13a("It wasn't surprising."), "It wasn't surprising .");
  EXPECT_EQ(tokenize_13a("Pi is 3.14, or 1,000/318-ish; 5-3=2."),
            "Pi is 3.14 , or 1,000 / 318 - ish ; 5 - 3 = 2 .");
  EXPECT_EQ(tokenize_13a("&quot;e.g.&quot; &lt;a&gt; &amp; (b) [c] {d} $5 @x #1 ~y ^z|w`"),
            "\" e . g . \" < a > & ( b ) [ c ] { d } $ 5 @ x # 1 ~ y ^ z | w `");
  EXPECT_EQ(tokenize_13a("파일을 열 수 없습니다: %s. 다시 시도하세요,지금!"),
            "파일을 열 수 없습니다 : % s . 다시 시도하세요 , 지금 !");
  EXPECT_EQ(tokenize_13a("a..b,,c .5 ,7 x-y 1-2\u3000end\u00a0."),
            "a . . b , , c . 5 , 7 x-y 1 - 2 end .");
}

TEST(Bleu, BadInput) {
  EXPECT_THROW(corpus_bleu({"a", "b"}, {"a"}), Error);
  EXPECT_THROW(corpus_bleu({"a"}, {""}), Error);  // sacreBLEU: no valid reference
  EXPECT_THROW(corpus_bleu_multi({"a"}, {}), Error);
  try {
    corpus_bleu({"a", "b"}, {"a"});
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("2 hypotheses but 1 references"), std::string::npos);
  }
}

TEST(Chrf, PerfectAndNoOverlap) {
  EXPECT_NEAR(corpus_chrf({"Niemand hat die Absicht"}, {"Niemand hat die Absicht"}), 100.0, kTol);
  EXPECT_EQ(corpus_chrf({"abcdefg"}, {"hijklmnop"}), 0.0);
}

TEST(Chrf, EmptyHypothesis) {
  EXPECT_EQ(corpus_chrf({""}, {"reference"}), 0.0);
  EXPECT_EQ(corpus_chrf({""}, {""}), 0.0);
  // An empty segment adds the reference's n-grams to the recall denominators only.
  EXPECT_LT(corpus_chrf({"abc", ""}, {"abc", "def"}), corpus_chrf({"abc"}, {"abc"}));
}

// sacreBLEU test_chrf.py test_cases (char_order 6, beta 3, eps smoothing).
TEST(Chrf, SacrebleuEpsSmoothingCases) {
  const ChrfOptions o{.char_order = 6, .beta = 3, .eps_smoothing = true};
  EXPECT_NEAR(corpus_chrf({"abcdefg"}, {"hijklmnop"}, o), 0.0, 1e-4);
  EXPECT_NEAR(corpus_chrf({"a"}, {"b"}, o), 0.0, 1e-4);
  EXPECT_NEAR(corpus_chrf({""}, {"reference"}, o), 0.0, 1e-4);
  EXPECT_NEAR(corpus_chrf({"aa"}, {"ab"}, o), 8.3333, 1e-4);
  EXPECT_NEAR(corpus_chrf({"a", "b"}, {"a", "c"}, o), 8.3333, 1e-4);
  EXPECT_NEAR(corpus_chrf({"a"}, {"a"}, o), 16.6667, 1e-4);
  EXPECT_NEAR(corpus_chrf({"a b c"}, {"a b c"}, o), 50.0, 1e-4);
  EXPECT_NEAR(corpus_chrf({"a b c"}, {"abc"}, o), 50.0, 1e-4);
  EXPECT_NEAR(corpus_chrf({" risk assessment must be made of those who are qualified and expertise "
                           "in the sector - these are the scientists ."},
                          {"risk assessment has to be undertaken by those who are qualified and "
                           "expert in that area - that is the scientists ."},
                          o),
              63.361730, 1e-4);
  EXPECT_NEAR(corpus_chrf({" Die    Beziehung zwischen  Obama und Netanjahu ist nicht gerade  "
                           "freundlich. "},
                          {"Das Verhältnis zwischen Obama und Netanyahu ist nicht gerade "
                           "freundschaftlich."},
                          o),
              64.1302698, 1e-4);
}

// sacreBLEU test_chrf.py test_cases_effective_order (beta 3, no eps smoothing: the default mode).
TEST(Chrf, SacrebleuEffectiveOrderCases) {
  const ChrfOptions o{.char_order = 6, .beta = 3, .eps_smoothing = false};
  EXPECT_NEAR(corpus_chrf({"a"}, {"a"}, o), 100.0, 1e-4);
  EXPECT_NEAR(corpus_chrf({""}, {"reference"}, o), 0.0, 1e-4);
  EXPECT_NEAR(corpus_chrf({"a b c"}, {"a b c"}, o), 100.0, 1e-4);
  EXPECT_NEAR(corpus_chrf({"a b c"}, {"abc"}, o), 100.0, 1e-4);
  EXPECT_NEAR(corpus_chrf({""}, {"c"}, o), 0.0, 1e-4);
  EXPECT_NEAR(corpus_chrf({"a", "b"}, {"a", "c"}, o), 50.0, 1e-4);
  EXPECT_NEAR(corpus_chrf({"aa"}, {"ab"}, o), 25.0, 1e-4);
}

// sacreBLEU test_chrf.py test_sentence_level_chrf (chrF2, eps smoothing): Czech, multi-byte.
TEST(Chrf, SacrebleuCzechSentences) {
  const ChrfOptions o{.char_order = 6, .beta = 2, .eps_smoothing = true};
  EXPECT_NEAR(
      corpus_chrf({"Co nás nejvíc trápí, protože lékaři si vybírají, kdo bude žít a kdo zemře."},
                  {"Nejvíce smutní jsme z toho, že musíme rozhodovat o tom, kdo bude žít a kdo "
                   "zemře."},
                  o),
      39.14078509, 1e-4);
  EXPECT_NEAR(corpus_chrf({"Nebo prostě nemají vybavení, které by jim pomohlo, uvedli lékaři."},
                          {"A někdy nemáme ani potřebný materiál, abychom jim pomohli, popsali "
                           "lékaři."},
                          o),
              31.22557079, 1e-4);
  EXPECT_NEAR(corpus_chrf({"Lapali po dechu, jejich životy skončily dřív, než skutečně začaly."},
                          {"Lapali po dechu a pak jejich život skončil - dřív, než skutečně mohl "
                           "začít, připomněli."},
                          o),
              57.15704367, 1e-4);
}

// Korean: NLTK n-gram counts on Python code points (make_figures.py), sacreBLEU's default chrF2.
TEST(Chrf, NltkKorean) {
  const Strings hyps = {"파일을 열 수 없습니다", "디렉터리가 비어있지 않습니다",
                        "알 수 없는 옵션입니다 '-x'"};
  const Strings refs = {"파일을 열 수 없음", "디렉터리가 비어 있지 않음", "알 수 없는 옵션 '-x'"};
  EXPECT_NEAR(corpus_chrf(hyps, refs), 70.6253701271, kTol);
  EXPECT_NEAR(corpus_chrf({hyps[0]}, {refs[0]}), 67.2312947311, kTol);
  // NLTK's own sentence_chrf(beta=2) is the eps-smoothed variant.
  const ChrfOptions eps{.char_order = 6, .beta = 2, .eps_smoothing = true};
  EXPECT_NEAR(corpus_chrf({hyps[0]}, {refs[0]}, eps), 66.9920282359, 1e-8);
  EXPECT_NEAR(corpus_chrf({"it is a guide to action which ensures that the military always obeys "
                           "the commands of the party"},
                          {"it is a guide to action that ensures that the military will forever "
                           "heed party commands"}),
              64.2247963079, kTol);
}

// Characters, not bytes: one shared syllable of two gives 25 (unigram P = R = 1/2, bigram 0);
// counting UTF-8 bytes would share 4 of 6 bytes instead.
TEST(Chrf, CountsCodePointsNotBytes) {
  EXPECT_NEAR(corpus_chrf({"가나"}, {"가다"}), 25.0, kTol);
  // Invalid UTF-8 is scored byte by byte rather than rejected.
  EXPECT_NEAR(corpus_chrf({"\xff\xfe"}, {"\xff\xfe"}), 100.0, kTol);
}

TEST(Chrf, BadInput) {
  EXPECT_THROW(corpus_chrf({"a"}, {"a", "b"}), Error);
  EXPECT_THROW(corpus_chrf({"a"}, {"a"}, ChrfOptions{.char_order = 7}), Error);
  EXPECT_THROW(corpus_chrf({"a"}, {"a"}, ChrfOptions{.beta = 0}), Error);
}
