// Hybrid search (9.x 하이브리드 검색): a keyword ranking (BM25 over FTS5, terms.h) and a meaning
// ranking (cosine of embeddings, the ANN index) fused by reciprocal-rank fusion (RRF, Cormack et
// al. 2009): score = sum over the rankings of 1 / (rrf_k + rank). RRF needs no calibration
// between BM25's unbounded scores and cosines, which is why it is the usual way to combine them.
// Keywords find exact names (a package, an option, an error message) that embeddings blur;
// embeddings find paraphrases that share no word with the text. Metadata filters restrict both
// rankings during the search (store.h), not a top-k afterwards.
// Not here: storage (store.h), embedding the query (the caller passes its vector).
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "llmkit/retrieval/store.h"

namespace llmkit::retrieval {

enum class SearchMode { Bm25, Dense, Hybrid };
// "bm25" | "dense" | "hybrid"; an Error for anything else.
SearchMode parse_search_mode(std::string_view s);
const char* search_mode_name(SearchMode m);

struct SearchOptions {
  int64_t k = 5;
  SearchMode mode = SearchMode::Hybrid;
  std::vector<Condition> filters;
  int64_t candidates = 50;  // depth of each ranking before fusion (at least k)
  int rrf_k = 60;           // RRF's constant (60 in the paper and in most systems)
  bool exact = false;       // dense ranking by exact search instead of the ANN index
  int ef_search = 0;        // the ANN's candidate list (0: the index's setting)
  // Re-ranking by maximal marginal relevance (Carbonell and Goldstein 1998): the k hits are picked
  // one at a time from the ranked candidates, each maximising
  //   lambda * cosine(query, hit) - (1 - lambda) * max cosine(hit, hits already picked),
  // so that overlapping chunks of one passage do not fill every place. Needs the query vector.
  bool mmr = false;
  double mmr_lambda = 0.7;
  // Weight of the dense ranking in the fusion (BM25's is 1): score = dense_weight / (rrf_k +
  // dense rank) + 1 / (rrf_k + BM25 rank). 0 ranks by BM25 alone. Negative: automatic, 1 unless
  // the query's language (guess_language) is not one the store's embedder knows
  // (StoreConfig::embedder_languages), then 0: an English-only embedder places a Korean question
  // almost at random (docs/rag.md: dense recall@10 0.1 on Korean questions, BM25 0.8).
  double dense_weight = -1;
};

// The dense weight `search` uses for this query (see SearchOptions::dense_weight).
double effective_dense_weight(const Store& store, std::string_view query_text,
                              const SearchOptions& options);
// True when a hybrid search left to choose its dense weight (negative) ranks this query by BM25
// alone because the embedder does not know its language: what the commands warn about.
bool bm25_alone_for_language(const Store& store, std::string_view query_text,
                             const SearchOptions& options);

struct SearchHit {
  ChunkRecord chunk;
  double score = 0;   // what the hits are sorted by: RRF (hybrid), cosine (dense), BM25 (bm25)
  double cosine = 0;  // the query's cosine with the chunk (computed for every hit)
  double bm25 = 0;    // BM25 score (0 when the chunk has none of the query's terms)
  int64_t dense_rank = 0, bm25_rank = 0;  // 1-based place in each ranking, 0 = not in it
};

// The k best chunks for a query given as text (BM25) and as a unit vector (dense; may be empty
// for mode Bm25 without mmr). Ties: smaller chunk id first. With mmr the order is MMR's pick
// order and `score` is each hit's MMR value when picked.
std::vector<SearchHit> search(Store& store, std::string_view query_text,
                              std::span<const float> query_vector, const SearchOptions& options);

}  // namespace llmkit::retrieval
