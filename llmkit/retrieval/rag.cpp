// The RAG prompt, the "don't know" threshold and citations (rag.h).
#include "llmkit/retrieval/rag.h"

#include <algorithm>

#include "llmkit/core/error.h"

namespace llmkit::retrieval {
namespace {

// The longest prefix of `text` within `budget` tokens, cut after a newline or a sentence end when
// one exists in its second half (else at the longest fitting character boundary). Binary search
// over cut points: the tokenizer runs O(log n) times.
std::string fit_text(const std::string& text, int64_t budget, const TokenCounter& count) {
  if (budget <= 0) return "";
  if (count(text) <= budget) return text;
  size_t lo = 0, hi = text.size();  // count(text[0, lo)) <= budget < count(text[0, hi))
  while (hi - lo > 1) {
    size_t mid = lo + (hi - lo) / 2;
    while (mid > lo && (static_cast<unsigned char>(text[mid]) & 0xC0) == 0x80) --mid;
    if (mid == lo) break;
    if (count(std::string_view(text).substr(0, mid)) <= budget)
      lo = mid;
    else
      hi = mid;
  }
  const std::string_view fit = std::string_view(text).substr(0, lo);
  for (size_t i = fit.size(); i > fit.size() / 2; --i) {
    const char c = fit[i - 1];
    if (c == '\n' || ((c == '.' || c == '?' || c == '!') && (i == fit.size() || fit[i] == ' ')))
      return std::string(fit.substr(0, i));
  }
  return std::string(fit);
}

}  // namespace

std::string source_label(const ChunkRecord& c) {
  std::string s = c.path + ":" + std::to_string(c.first_line) + "-" + std::to_string(c.last_line);
  if (!c.heading.empty()) s += " § " + c.heading;
  return s;
}

RagPrompt build_rag_prompt(Store& store, std::string_view question,
                           std::span<const float> query_vector, const TokenCounter& count_tokens,
                           const RagOptions& o) {
  LLMKIT_CHECK(!question.empty(), "rag: the question is empty");
  LLMKIT_CHECK(o.context_tokens > 0, "rag: the context budget must be > 0 tokens");
  RagPrompt p;
  p.system =
      "You answer questions using only the numbered sources given with the question. Cite the "
      "sources you use by their numbers in square brackets, like [1]. If the sources do not "
      "contain the answer, say \"" +
      std::string(kNoAnswer) + "\"";
  const auto hits = search(store, question, query_vector, o.search);
  for (const auto& h : hits) p.best_cosine = std::max(p.best_cosine, h.cosine);
  p.answerable = !hits.empty() && p.best_cosine >= o.min_cosine;
  int64_t left = o.context_tokens;
  std::string sources;
  // The labels are appended piece by piece: GCC 12 warns (-Wrestrict, a false positive) on
  // "literal" + std::string here.
  for (const auto& h : hits) {
    if (left <= 0) break;
    const int n = static_cast<int>(p.sources.size()) + 1;
    std::string head = "[";
    head += std::to_string(n);
    head += "] (";
    head += h.chunk.title.empty() ? h.chunk.path : h.chunk.title;
    if (!h.chunk.heading.empty()) {
      head += " § ";
      head += h.chunk.heading;
    }
    head += ")\n";
    const int64_t head_tokens = count_tokens(head);
    const std::string body = fit_text(h.chunk.text, left - head_tokens, count_tokens);
    if (body.empty()) break;
    sources += head + body + "\n\n";
    left -= head_tokens + count_tokens(body);
    p.sources.push_back({n, h});
  }
  p.user = "Sources:\n\n" + sources + "Question: " + std::string(question);
  return p;
}

std::vector<int> cited_sources(std::string_view answer, int n_sources) {
  std::vector<int> out;
  for (size_t i = 0; i < answer.size(); ++i) {
    if (answer[i] != '[') continue;
    // [n] or [n, m, ...]
    size_t j = i + 1;
    std::vector<int> nums;
    bool ok = false;
    while (j < answer.size()) {
      int v = 0, digits = 0;
      while (j < answer.size() && answer[j] >= '0' && answer[j] <= '9' && digits < 6) {
        v = v * 10 + (answer[j] - '0');
        ++j;
        ++digits;
      }
      if (digits == 0) break;
      nums.push_back(v);
      while (j < answer.size() && answer[j] == ' ') ++j;
      if (j < answer.size() && answer[j] == ']') {
        ok = true;
        break;
      }
      if (j < answer.size() && answer[j] == ',') {
        ++j;
        while (j < answer.size() && answer[j] == ' ') ++j;
        continue;
      }
      break;
    }
    if (!ok) continue;
    for (int v : nums)
      if (v >= 1 && v <= n_sources && std::find(out.begin(), out.end(), v) == out.end())
        out.push_back(v);
    i = j;
  }
  return out;
}

}  // namespace llmkit::retrieval
