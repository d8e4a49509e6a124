// Translation metrics, computed as sacreBLEU computes them so our figures compare with papers'.
// BLEU (Papineni et al. 2002) measures how many of the hypothesis' word n-grams (n = 1..4) appear
// in the reference, as a geometric mean of the clipped n-gram precisions over the whole corpus.
// A brevity penalty keeps a system from scoring high by writing short, safe output; 100 = the
// references word for word. chrF (Popovic 2015) measures the overlap of character n-grams
// (n = 1..6, whitespace removed) as an F-score that weights recall beta = 2 times as much as
// precision. Counting characters, not words, rewards right stems with wrong endings, which suits
// agglutinative languages such as Korean, where one word carries many particles.
// Concept notes: encoder-decoder models and translation (issue #5). Scores are 0-100.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace llmkit::infer {

struct BleuScore {
  double bleu;               // 0-100
  double precisions[4];      // clipped n-gram precisions in percent, n = 1..4
  double brevity_penalty;    // exp(1 - ref_len / hyp_len) when hyp_len < ref_len, else 1
  int64_t hyp_len, ref_len;  // tokens in the hypotheses / closest reference lengths, summed
};

// sacreBLEU's default corpus BLEU: 13a tokenization, 4-grams, uniform weights, brevity penalty,
// no smoothing (0 when any precision is 0). hyps[i] is scored against refs[i]; Error when the
// sizes differ or a reference is empty. Cost: linear in the text; a pure function, safe to call
// from several threads.
BleuScore corpus_bleu(const std::vector<std::string>& hyps, const std::vector<std::string>& refs);

// The same with several references per hypothesis: ref_streams[r][i] is the r-th reference of
// hyps[i] (sacreBLEU's layout). N-gram counts are clipped by their maximum over the references;
// the reference length is the closest to the hypothesis' (the shorter on ties). Empty strings in
// a stream mean "no reference"; each hypothesis needs at least one.
BleuScore corpus_bleu_multi(const std::vector<std::string>& hyps,
                            const std::vector<std::vector<std::string>>& ref_streams);

// chrF2 as sacreBLEU's default CHRF(): character 1..6-grams over Unicode code points (UTF-8 is
// decoded; invalid bytes count as one character each), whitespace removed, n-gram counts summed
// over the corpus, precision and recall averaged over the orders both sides have, F-beta with
// beta = 2. Error when the sizes differ.
double corpus_chrf(const std::vector<std::string>& hyps, const std::vector<std::string>& refs);

struct ChrfOptions {
  int char_order = 6;          // 1..6
  double beta = 2.0;           // recall weighs beta times as much as precision
  bool eps_smoothing = false;  // true: mean of the per-order F-scores (chrF++.py, NLTK, Moses)
};
double corpus_chrf(const std::vector<std::string>& hyps, const std::vector<std::string>& refs,
                   const ChrfOptions& options);

// mteval-v13a tokenization as in sacreBLEU: splits punctuation and symbols off words, periods and
// commas unless inside a number, dashes after a digit; tokens joined by single spaces.
std::string tokenize_13a(std::string_view line);

}  // namespace llmkit::infer
