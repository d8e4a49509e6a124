// Retrieval-augmented generation (9.x RAG, 검색 증강 생성): instead of answering from what its
// weights remember (and inventing what they do not: hallucination), the model is given the
// passages of a trusted knowledge base that best match the question, numbered, and told to answer
// from them and cite them as [1], [2]. This file builds that prompt within a token budget, decides
// when nothing relevant was found (the best passage's cosine with the question below a threshold:
// then the answer is "I don't know from these sources" and the model is not asked), and reads
// the citations back out of an answer.
// Not here: retrieval itself (search.h), generation (infer/chat.h, which the CLI calls).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "llmkit/retrieval/search.h"

namespace llmkit::retrieval {

// What `rag` answers when no retrieved passage is relevant enough.
inline constexpr const char* kNoAnswer = "I don't know from these sources.";

struct RagOptions {
  SearchOptions search;           // k = passages offered to the model (default 4 below)
  double min_cosine = 0.35;       // the best passage's cosine must reach this (docs/rag.md)
  int64_t context_tokens = 1200;  // budget for the numbered sources in the prompt
  RagOptions() { search.k = 4; }
};

struct RagSource {
  int number = 0;  // 1-based, as cited
  SearchHit hit;
};

struct RagPrompt {
  std::vector<RagSource> sources;  // those that fit the budget, best first
  std::string system;              // the instruction
  std::string user;                // the numbered sources, then the question
  bool answerable = false;         // the best cosine reached min_cosine
  double best_cosine = 0;
};

// Searches `store` and builds the prompt. Each source is "[n] (path § heading)\ntext"; a source
// that does not fit the remaining budget is cut at a line or sentence end (a source is never
// left out for a shorter later one). `query_vector`: the question's embedding (the store's model);
// `count_tokens`: the generating model's tokenizer, since the budget is in its tokens.
RagPrompt build_rag_prompt(Store& store, std::string_view question,
                           std::span<const float> query_vector, const CountTokens& count_tokens,
                           const RagOptions& options = {});

// The distinct source numbers cited in `answer` as [n] or [n, m] or [n][m], in order of first
// citation; numbers outside 1..n_sources are left out.
std::vector<int> cited_sources(std::string_view answer, int n_sources);

// Attribution: which sources an answer's sentences draw on, when the model does not say (a small
// model seldom writes [n]). Each answer sentence is compared with every sentence of every source
// by the embedder's cosine; it is attributed to the source holding its nearest sentence when that
// cosine reaches `min_cosine`, else to none. A check of support, not proof: a sentence that
// paraphrases a source closely is attributed, an invented one on another topic is not, and an
// invented one that reuses a source's words can be.
struct SentenceAttribution {
  size_t begin = 0, end = 0;  // the sentence's byte range in the answer
  int source = 0;             // 1-based source number; 0: none reached min_cosine
  double cosine = 0;          // with the nearest source sentence
};
// Embeds texts as unit vectors (the index's embedder).
using EmbedTexts = std::function<std::vector<std::vector<float>>(std::span<const std::string>)>;
std::vector<SentenceAttribution> attribute_answer(std::string_view answer,
                                                  std::span<const RagSource> sources,
                                                  const EmbedTexts& embed,
                                                  double min_cosine = 0.65);
// The distinct sources attributed, in order of first use.
std::vector<int> attributed_sources(std::span<const SentenceAttribution> attribution);

// The sentences of `text` as byte ranges: a sentence ends where the chunker's sentence_end says
// (chunker.h) or at a line break; ranges are trimmed, and pieces under 3 words are left out.
std::vector<std::pair<size_t, size_t>> split_sentences(std::string_view text);

// "path:first-last § heading" of a source, the form in which citations are listed.
std::string source_label(const ChunkRecord& chunk);

}  // namespace llmkit::retrieval
