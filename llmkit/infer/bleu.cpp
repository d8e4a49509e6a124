// Corpus BLEU and chrF, following sacreBLEU 2.x (metrics/bleu.py, metrics/chrf.py,
// tokenizers/tokenizer_13a.py) step for step, so the figures match its to rounding.
#include "llmkit/infer/bleu.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdlib>
#include <unordered_map>

#include "llmkit/core/error.h"

namespace llmkit::infer {
namespace {

constexpr int kMaxNgramOrder = 4;  // BLEU
constexpr int kMaxCharOrder = 6;   // chrF: 6 code points of 21 bits pack into two 64-bit words

// Decodes one UTF-8 sequence at s[i], advancing i. A byte that does not start a valid sequence
// decodes to 0x110000 + byte (outside Unicode), so it counts as one character that matches only
// itself, as Python's surrogateescape would.
char32_t next_code_point(std::string_view s, size_t& i) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  int len = b0 < 0x80 ? 1 : (b0 >> 5) == 0x6 ? 2 : (b0 >> 4) == 0xE ? 3 : (b0 >> 3) == 0x1E ? 4 : 0;
  if (len == 1) {
    ++i;
    return b0;
  }
  char32_t cp = len == 2 ? b0 & 0x1F : len == 3 ? b0 & 0x0F : b0 & 0x07;
  bool ok = len > 0 && i + len <= s.size();
  for (int k = 1; ok && k < len; ++k) {
    const auto b = static_cast<unsigned char>(s[i + k]);
    ok = (b >> 6) == 0x2;
    cp = (cp << 6) | (b & 0x3F);
  }
  static constexpr char32_t kMin[5] = {0, 0, 0x80, 0x800, 0x10000};
  if (!ok || cp < kMin[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
    ++i;
    return 0x110000 + b0;
  }
  i += len;
  return cp;
}

// Python's str.isspace(), which str.split() uses (sacreBLEU splits tokens and strips whitespace
// for chrF with it).
bool is_space(char32_t c) {
  if (c < 0x80) return c == ' ' || (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x1F);
  return c == 0x85 || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 ||
         c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

// Splits on Unicode whitespace, like Python's str.split(); appends the pieces to out.
void split_whitespace(std::string_view s, std::vector<std::string_view>& out) {
  size_t start = std::string_view::npos;
  for (size_t i = 0; i < s.size();) {
    const size_t at = i;
    const bool space = is_space(next_code_point(s, i));
    if (space && start != std::string_view::npos) {
      out.push_back(s.substr(start, at - start));
      start = std::string_view::npos;
    } else if (!space && start == std::string_view::npos) {
      start = at;
    }
  }
  if (start != std::string_view::npos) out.push_back(s.substr(start));
}

void replace_all(std::string& s, std::string_view from, std::string_view to) {
  for (size_t pos = s.find(from); pos != std::string::npos; pos = s.find(from, pos + to.size()))
    s.replace(pos, from.size(), to);
}

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}
bool is_period_comma(char c) {
  return c == '.' || c == ',';
}
// 13a's symbol class [\{-\~\[-\` -\&\(-\+\:-\@\/]: ASCII symbols except ' , - . (UTF-8 keeps
// every non-ASCII byte >= 0x80, so working on bytes gives the same result as on code points).
bool is_13a_symbol(char c) {
  return (c >= '{' && c <= '~') || (c >= '[' && c <= '`') || (c >= ' ' && c <= '&') ||
         (c >= '(' && c <= '+') || (c >= ':' && c <= '@') || c == '/';
}

// mteval-v13a's four regex substitutions, each a left-to-right scan with non-overlapping
// matches as re.sub makes them. Bytes stand in for code points: all the classes are ASCII, and
// [^0-9] matching a lone continuation byte inserts the space at the same place.
std::string regex_13a(const std::string& in) {
  std::string a;
  a.reserve(in.size() * 2);
  for (char c : in) {  // ([\{-\~\[-\` -\&\(-\+\:-\@\/]) -> ' \1 '
    if (is_13a_symbol(c)) {
      a += ' ';
      a += c;
      a += ' ';
    } else {
      a += c;
    }
  }
  std::string b;  // ([^0-9])([\.,]) -> '\1 \2 '
  b.reserve(a.size() * 2);
  for (size_t i = 0; i < a.size();) {
    if (i + 1 < a.size() && !is_digit(a[i]) && is_period_comma(a[i + 1])) {
      b += a[i];
      b += ' ';
      b += a[i + 1];
      b += ' ';
      i += 2;
    } else {
      b += a[i++];
    }
  }
  a.clear();  // ([\.,])([^0-9]) -> ' \1 \2'
  for (size_t i = 0; i < b.size();) {
    if (i + 1 < b.size() && is_period_comma(b[i]) && !is_digit(b[i + 1])) {
      a += ' ';
      a += b[i];
      a += ' ';
      a += b[i + 1];
      i += 2;
    } else {
      a += b[i++];
    }
  }
  b.clear();  // ([0-9])(-) -> '\1 \2 '
  for (size_t i = 0; i < a.size();) {
    if (i + 1 < a.size() && is_digit(a[i]) && a[i + 1] == '-') {
      b += a[i];
      b += ' ';
      b += '-';
      b += ' ';
      i += 2;
    } else {
      b += a[i++];
    }
  }
  return b;
}

// Python's str.rstrip(): drops trailing Unicode whitespace.
std::string_view rstrip(std::string_view s) {
  size_t end = 0;
  for (size_t i = 0; i < s.size();)
    if (!is_space(next_code_point(s, i))) end = i;
  return s.substr(0, end);
}

// ---- BLEU ----

// Word n-grams as token ids, padded with -1; tokens are interned per call.
using Ngram = std::array<int32_t, kMaxNgramOrder>;
struct NgramHash {
  size_t operator()(const Ngram& g) const {
    uint64_t h = 1469598103934665603ull;
    for (int32_t v : g) h = (h ^ static_cast<uint32_t>(v)) * 1099511628211ull;
    return h;
  }
};
using NgramCounts = std::unordered_map<Ngram, int64_t, NgramHash>;

class Vocab {
 public:
  // Tokenizes with 13a and maps the tokens to ids in `ids`.
  void encode(std::string_view text, std::vector<int32_t>& ids) {
    const std::string tok = tokenize_13a(rstrip(text));
    words_.clear();
    split_whitespace(tok, words_);
    ids.clear();
    for (std::string_view w : words_) {
      auto [it, added] = ids_.try_emplace(std::string(w), static_cast<int32_t>(ids_.size()));
      ids.push_back(it->second);
    }
  }

 private:
  std::unordered_map<std::string, int32_t> ids_;
  std::vector<std::string_view> words_;
};

void count_ngrams(const std::vector<int32_t>& ids, NgramCounts& counts) {
  counts.clear();
  for (int n = 1; n <= kMaxNgramOrder; ++n) {
    for (size_t i = 0; i + n <= ids.size(); ++i) {
      Ngram g;
      g.fill(-1);
      std::copy_n(ids.begin() + i, n, g.begin());
      ++counts[g];
    }
  }
}

BleuScore bleu_from_stats(const int64_t (&correct)[4], const int64_t (&total)[4], int64_t hyp_len,
                          int64_t ref_len) {
  BleuScore s{};
  s.hyp_len = hyp_len;
  s.ref_len = ref_len;
  // sacreBLEU compute_bleu(smooth_method='none'): log of 0 is its -9999999999, so any zero
  // precision makes the score 0.
  bool zero = false;
  double log_sum = 0;
  for (int n = 0; n < kMaxNgramOrder; ++n) {
    s.precisions[n] = total[n] > 0 ? 100.0 * static_cast<double>(correct[n]) / total[n] : 0.0;
    if (s.precisions[n] == 0)
      zero = true;
    else
      log_sum += std::log(s.precisions[n]);
  }
  s.brevity_penalty = 1.0;
  if (hyp_len < ref_len)
    s.brevity_penalty = hyp_len > 0 ? std::exp(1.0 - static_cast<double>(ref_len) / hyp_len) : 0.0;
  s.bleu = zero ? 0.0 : s.brevity_penalty * std::exp(log_sum / kMaxNgramOrder);
  return s;
}

// ---- chrF ----

// Character n-grams of up to 6 code points, 3 code points of 21 bits per word.
struct CharNgram {
  uint64_t lo = 0, hi = 0;
  bool operator==(const CharNgram&) const = default;
};
struct CharNgramHash {
  size_t operator()(const CharNgram& g) const {
    return static_cast<size_t>(g.lo * 0x9E3779B97F4A7C15ull ^ (g.hi + 0x632BE59BD9B4E019ull));
  }
};
using CharCounts = std::unordered_map<CharNgram, int64_t, CharNgramHash>;

// Code points of s without whitespace (sacreBLEU: ''.join(line.split())).
void chars_without_space(std::string_view s, std::vector<char32_t>& out) {
  out.clear();
  for (size_t i = 0; i < s.size();) {
    const char32_t c = next_code_point(s, i);
    if (!is_space(c)) out.push_back(c);
  }
}

void count_char_ngrams(const std::vector<char32_t>& cs, int n, CharCounts& counts) {
  counts.clear();
  for (size_t i = 0; i + n <= cs.size(); ++i) {
    CharNgram g;
    for (int k = 0; k < n; ++k) {
      uint64_t& word = k < 3 ? g.lo : g.hi;
      word = (word << 21) | cs[i + k];
    }
    ++counts[g];
  }
}

double chrf_from_stats(const std::vector<int64_t>& stats, const ChrfOptions& opt) {
  // sacreBLEU CHRF._compute_f_score; stats holds [hyp, ref, match] per order.
  constexpr double kEps = 1e-16;
  const double factor = opt.beta * opt.beta;
  double score = 0, avg_prec = 0, avg_rec = 0;
  int effective_order = 0;
  for (int i = 0; i < opt.char_order; ++i) {
    const int64_t n_hyp = stats[3 * i], n_ref = stats[3 * i + 1], n_match = stats[3 * i + 2];
    const double prec = n_hyp > 0 ? static_cast<double>(n_match) / n_hyp : kEps;
    const double rec = n_ref > 0 ? static_cast<double>(n_match) / n_ref : kEps;
    const double denom = factor * prec + rec;
    score += denom > 0 ? (1 + factor) * prec * rec / denom : kEps;
    if (n_hyp > 0 && n_ref > 0) {
      avg_prec += prec;
      avg_rec += rec;
      ++effective_order;
    }
  }
  if (opt.eps_smoothing) return 100 * score / opt.char_order;
  if (effective_order == 0) return 0.0;
  avg_prec /= effective_order;
  avg_rec /= effective_order;
  if (avg_prec + avg_rec == 0) return 0.0;
  return 100 * (1 + factor) * avg_prec * avg_rec / (factor * avg_prec + avg_rec);
}

}  // namespace

std::string tokenize_13a(std::string_view line) {
  std::string s(line);
  replace_all(s, "<skipped>", "");
  replace_all(s, "-\n", "");
  replace_all(s, "\n", " ");
  replace_all(s, "&quot;", "\"");
  replace_all(s, "&amp;", "&");
  replace_all(s, "&lt;", "<");
  replace_all(s, "&gt;", ">");
  const std::string spaced = regex_13a(" " + s + " ");
  std::vector<std::string_view> words;
  split_whitespace(spaced, words);
  std::string out;
  out.reserve(spaced.size());
  for (std::string_view w : words) {
    if (!out.empty()) out += ' ';
    out += w;
  }
  return out;
}

namespace {

// Both public entry points; streams point at the reference streams (not copied).
BleuScore bleu_streams(const std::vector<std::string>& hyps,
                       const std::vector<const std::vector<std::string>*>& ref_streams) {
  LLMKIT_CHECK(!ref_streams.empty(), "corpus_bleu: no reference stream");
  for (size_t r = 0; r < ref_streams.size(); ++r)
    LLMKIT_CHECK(ref_streams[r]->size() == hyps.size(), "corpus_bleu: ", hyps.size(),
                 " hypotheses but ", ref_streams[r]->size(), " references",
                 ref_streams.size() > 1 ? " in stream " + std::to_string(r) : std::string());
  Vocab vocab;
  std::vector<int32_t> hyp_ids, ref_ids;
  NgramCounts hyp_counts, ref_counts, ref_max;
  int64_t correct[4] = {}, total[4] = {}, hyp_len = 0, ref_len = 0;
  for (size_t i = 0; i < hyps.size(); ++i) {
    vocab.encode(hyps[i], hyp_ids);
    count_ngrams(hyp_ids, hyp_counts);
    ref_max.clear();
    int64_t closest_len = -1, closest_diff = 0;
    const int64_t len = static_cast<int64_t>(hyp_ids.size());
    for (const auto* stream : ref_streams) {
      if ((*stream)[i].empty()) continue;
      vocab.encode((*stream)[i], ref_ids);
      const int64_t rlen = static_cast<int64_t>(ref_ids.size()), diff = std::llabs(len - rlen);
      if (closest_len < 0 || diff < closest_diff || (diff == closest_diff && rlen < closest_len)) {
        closest_len = rlen;
        closest_diff = diff;
      }
      count_ngrams(ref_ids, ref_counts);
      for (const auto& [g, c] : ref_counts) ref_max[g] = std::max(ref_max[g], c);
    }
    LLMKIT_CHECK(closest_len >= 0, "corpus_bleu: hypothesis ", i, " has no non-empty reference");
    for (const auto& [g, c] : hyp_counts) {
      const int n =
          static_cast<int>(std::count_if(g.begin(), g.end(), [](int32_t v) { return v >= 0; }));
      auto it = ref_max.find(g);
      correct[n - 1] += it == ref_max.end() ? 0 : std::min(c, it->second);
      total[n - 1] += c;
    }
    hyp_len += len;
    ref_len += closest_len;
  }
  return bleu_from_stats(correct, total, hyp_len, ref_len);
}

}  // namespace

BleuScore corpus_bleu_multi(const std::vector<std::string>& hyps,
                            const std::vector<std::vector<std::string>>& ref_streams) {
  std::vector<const std::vector<std::string>*> streams;
  for (const auto& s : ref_streams) streams.push_back(&s);
  return bleu_streams(hyps, streams);
}

BleuScore corpus_bleu(const std::vector<std::string>& hyps, const std::vector<std::string>& refs) {
  return bleu_streams(hyps, {&refs});
}

double corpus_chrf(const std::vector<std::string>& hyps, const std::vector<std::string>& refs,
                   const ChrfOptions& opt) {
  LLMKIT_CHECK(hyps.size() == refs.size(), "corpus_chrf: ", hyps.size(), " hypotheses but ",
               refs.size(), " references");
  LLMKIT_CHECK(opt.char_order >= 1 && opt.char_order <= kMaxCharOrder,
               "corpus_chrf: char_order must be in 1..", kMaxCharOrder, ", got ", opt.char_order);
  LLMKIT_CHECK(opt.beta > 0, "corpus_chrf: beta must be positive, got ", opt.beta);
  std::vector<int64_t> stats(3 * opt.char_order, 0);
  std::vector<char32_t> hyp_chars, ref_chars;
  CharCounts hyp_counts, ref_counts;
  for (size_t i = 0; i < hyps.size(); ++i) {
    chars_without_space(hyps[i], hyp_chars);
    chars_without_space(refs[i], ref_chars);
    for (int n = 1; n <= opt.char_order; ++n) {
      count_char_ngrams(hyp_chars, n, hyp_counts);
      count_char_ngrams(ref_chars, n, ref_counts);
      int64_t hyp_count = 0, ref_count = 0, match = 0;
      for (const auto& [g, c] : hyp_counts) {
        hyp_count += c;
        auto it = ref_counts.find(g);
        if (it != ref_counts.end()) match += std::min(c, it->second);
      }
      for (const auto& [g, c] : ref_counts) ref_count += c;
      // sacreBLEU counts no hypothesis n-grams of an order the reference is too short to have.
      stats[3 * (n - 1)] += ref_counts.empty() ? 0 : hyp_count;
      stats[3 * (n - 1) + 1] += ref_count;
      stats[3 * (n - 1) + 2] += match;
    }
  }
  return chrf_from_stats(stats, opt);
}

double corpus_chrf(const std::vector<std::string>& hyps, const std::vector<std::string>& refs) {
  return corpus_chrf(hyps, refs, ChrfOptions{});
}

}  // namespace llmkit::infer
