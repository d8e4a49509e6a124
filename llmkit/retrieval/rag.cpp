// The RAG prompt, the "don't know" threshold and citations (rag.h).
#include "llmkit/retrieval/rag.h"

#include <algorithm>

#include "llmkit/core/error.h"
#include "llmkit/infer/embed.h"
#include "llmkit/retrieval/chunker.h"
#include "llmkit/retrieval/extract_internal.h"

namespace llmkit::retrieval {
namespace {

// The longest prefix of `text` within `budget` tokens (chunker.h's token_prefix_end), cut after a
// newline or a sentence end when one exists in its second half.
std::string fit_text(const std::string& text, int64_t budget, const CountTokens& count) {
  if (budget <= 0) return "";
  if (count(text) <= budget) return text;
  const std::string_view fit =
      std::string_view(text).substr(0, token_prefix_end(text, budget, count, 256));
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
                           std::span<const float> query_vector, const CountTokens& count_tokens,
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

std::vector<std::pair<size_t, size_t>> split_sentences(std::string_view text) {
  std::vector<std::pair<size_t, size_t>> out;
  auto emit = [&](size_t b, size_t e) {
    while (b < e && detail::is_blank(text[b])) ++b;
    while (e > b && detail::is_blank(text[e - 1])) --e;
    int words = 0;
    bool in = false;
    for (size_t i = b; i < e; ++i) {
      const bool space = detail::is_blank(text[i]);
      if (!space && !in) ++words;
      in = !space;
    }
    if (words >= 3) out.emplace_back(b, e);
  };
  size_t start = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    const size_t stop = text[i] == '\n' ? i + 1 : sentence_end(text, i, text.size());
    if (stop == std::string_view::npos) continue;
    emit(start, stop);
    start = stop;
    i = stop - 1;
  }
  emit(start, text.size());
  return out;
}

std::vector<SentenceAttribution> attribute_answer(std::string_view answer,
                                                  std::span<const RagSource> sources,
                                                  const EmbedTexts& embed, double min_cosine) {
  std::vector<SentenceAttribution> out;
  const auto answer_sentences = split_sentences(answer);
  if (answer_sentences.empty() || sources.empty()) return out;
  std::vector<std::string> texts;
  for (const auto& [b, e] : answer_sentences) texts.emplace_back(answer.substr(b, e - b));
  std::vector<int> owner;  // source number of each source sentence
  for (const auto& src : sources) {
    const std::string& t = src.hit.chunk.text;
    for (const auto& [b, e] : split_sentences(t)) {
      texts.push_back(t.substr(b, e - b));
      owner.push_back(src.number);
    }
  }
  const auto vecs = embed(texts);
  LLMKIT_CHECK(vecs.size() == texts.size(), "rag: the embedder returned ", vecs.size(),
               " vectors for ", texts.size(), " sentences");
  const size_t n = answer_sentences.size();
  for (size_t i = 0; i < n; ++i) {
    SentenceAttribution a;
    a.begin = answer_sentences[i].first;
    a.end = answer_sentences[i].second;
    int best_source = 0;
    double best = -2;
    for (size_t j = 0; j < owner.size(); ++j) {
      const double c = infer::cosine_similarity(vecs[i], vecs[n + j]);
      if (c > best) {
        best = c;
        best_source = owner[j];
      }
    }
    a.cosine = owner.empty() ? 0 : best;
    a.source = best >= min_cosine ? best_source : 0;
    out.push_back(a);
  }
  return out;
}

std::vector<int> attributed_sources(std::span<const SentenceAttribution> attribution) {
  std::vector<int> out;
  for (const auto& a : attribution)
    if (a.source > 0 && std::find(out.begin(), out.end(), a.source) == out.end())
      out.push_back(a.source);
  return out;
}

}  // namespace llmkit::retrieval
