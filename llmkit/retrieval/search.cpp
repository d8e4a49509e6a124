// Hybrid search with reciprocal-rank fusion (search.h).
#include "llmkit/retrieval/search.h"

#include <algorithm>
#include <map>

#include "llmkit/core/error.h"
#include "llmkit/infer/embed.h"
#include "llmkit/retrieval/indexer.h"

namespace llmkit::retrieval {

SearchMode parse_search_mode(std::string_view s) {
  if (s == "bm25") return SearchMode::Bm25;
  if (s == "dense") return SearchMode::Dense;
  if (s == "hybrid") return SearchMode::Hybrid;
  fail("search: unknown mode '", s, "' (one of bm25, dense, hybrid)");
}

const char* search_mode_name(SearchMode m) {
  switch (m) {
    case SearchMode::Bm25:
      return "bm25";
    case SearchMode::Dense:
      return "dense";
    case SearchMode::Hybrid:
      return "hybrid";
  }
  return "?";
}

double effective_dense_weight(const Store& store, std::string_view query_text,
                              const SearchOptions& o) {
  if (o.dense_weight >= 0) return o.dense_weight;
  const auto& known = store.config().embedder_languages;
  if (known.empty()) return 1;
  const std::string lang = guess_language(query_text);
  if (lang.empty() || std::find(known.begin(), known.end(), lang) != known.end()) return 1;
  return 0;
}

bool bm25_alone_for_language(const Store& store, std::string_view query_text,
                             const SearchOptions& o) {
  return o.mode == SearchMode::Hybrid && o.dense_weight < 0 &&
         effective_dense_weight(store, query_text, o) == 0;
}

std::vector<SearchHit> search(Store& store, std::string_view query_text,
                              std::span<const float> query_vector, const SearchOptions& o) {
  LLMKIT_CHECK(o.k > 0, "search: k must be > 0, got ", o.k);
  LLMKIT_CHECK(o.rrf_k > 0, "search: the RRF constant must be > 0");
  const Store::ReadSnapshot snapshot(store);  // every statement below sees one committed state
  const bool use_dense = o.mode != SearchMode::Bm25;
  const bool use_bm25 = o.mode != SearchMode::Dense;
  LLMKIT_CHECK(!use_dense || !query_vector.empty(), "search: the ", search_mode_name(o.mode),
               " mode needs the query's embedding");
  const int64_t depth = o.mode == SearchMode::Hybrid || o.mmr ? std::max(o.candidates, o.k) : o.k;
  std::vector<int64_t> allowed;
  const bool filtered = !o.filters.empty();
  if (filtered) allowed = store.filter(o.filters);
  const std::vector<int64_t>* allow = filtered ? &allowed : nullptr;
  if (o.ef_search > 0) store.set_ef_search(o.ef_search);

  struct Entry {
    double rrf = 0, bm25 = 0;
    int64_t dense_rank = 0, bm25_rank = 0;
  };
  std::map<int64_t, Entry> fused;
  const double dense_weight = effective_dense_weight(store, query_text, o);
  if (use_dense) {
    const auto hits = store.dense_search(query_vector, depth, allow, o.exact);
    for (size_t r = 0; r < hits.size(); ++r) {
      Entry& e = fused[hits[r].label];
      e.dense_rank = static_cast<int64_t>(r + 1);
      e.rrf += dense_weight / (o.rrf_k + static_cast<double>(r + 1));
    }
  }
  if (use_bm25) {
    const auto hits = store.bm25_search(query_text, depth, allow);
    for (size_t r = 0; r < hits.size(); ++r) {
      Entry& e = fused[hits[r].label];
      e.bm25_rank = static_cast<int64_t>(r + 1);
      e.bm25 = hits[r].score;
      e.rrf += 1.0 / (o.rrf_k + static_cast<double>(r + 1));
    }
  }
  std::vector<int64_t> ids;
  for (const auto& [id, e] : fused) ids.push_back(id);
  std::vector<std::vector<float>> vecs;
  if (!query_vector.empty()) vecs = store.vectors(ids);
  std::vector<SearchHit> out;
  for (size_t i = 0; i < ids.size(); ++i) {
    const Entry& e = fused[ids[i]];
    SearchHit h;
    h.chunk.id = ids[i];
    h.bm25 = e.bm25;
    h.dense_rank = e.dense_rank;
    h.bm25_rank = e.bm25_rank;
    if (!vecs.empty()) h.cosine = infer::cosine_similarity(vecs[i], query_vector);
    h.score = o.mode == SearchMode::Hybrid  ? e.rrf
              : o.mode == SearchMode::Dense ? h.cosine
                                            : e.bm25;
    out.push_back(std::move(h));
  }
  std::vector<size_t> order(out.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return out[a].score != out[b].score ? out[a].score > out[b].score
                                        : out[a].chunk.id < out[b].chunk.id;
  });
  if (o.mmr) {
    LLMKIT_CHECK(!query_vector.empty(), "search: MMR re-ranking needs the query's embedding");
    LLMKIT_CHECK(o.mmr_lambda >= 0 && o.mmr_lambda <= 1,
                 "search: the MMR lambda must be in [0, 1]");
    // Candidates: the fused ranking's top `candidates`.
    if (static_cast<int64_t>(order.size()) > std::max(o.candidates, o.k))
      order.resize(static_cast<size_t>(std::max(o.candidates, o.k)));
    std::vector<size_t> picked;
    std::vector<bool> used(order.size(), false);
    std::vector<double> best_redundancy(order.size(), -1.0);
    while (static_cast<int64_t>(picked.size()) < o.k && picked.size() < order.size()) {
      size_t best = 0;
      double best_value = -1e300;
      for (size_t j = 0; j < order.size(); ++j) {
        if (used[j]) continue;
        const double redundancy = picked.empty() ? 0.0 : best_redundancy[j];
        const double v = o.mmr_lambda * out[order[j]].cosine - (1 - o.mmr_lambda) * redundancy;
        if (v > best_value) {
          best_value = v;
          best = j;
        }
      }
      used[best] = true;
      picked.push_back(order[best]);
      out[order[best]].score = best_value;
      for (size_t j = 0; j < order.size(); ++j)
        if (!used[j])
          best_redundancy[j] = std::max(
              best_redundancy[j],
              static_cast<double>(infer::cosine_similarity(vecs[order[j]], vecs[order[best]])));
    }
    order = picked;
  } else if (static_cast<int64_t>(order.size()) > o.k) {
    order.resize(static_cast<size_t>(o.k));
  }
  std::vector<SearchHit> ranked;
  for (size_t i : order) ranked.push_back(std::move(out[i]));
  out = std::move(ranked);
  std::vector<int64_t> keep;
  for (const auto& h : out) keep.push_back(h.chunk.id);
  auto records = store.chunks(keep);
  for (size_t i = 0; i < out.size(); ++i) out[i].chunk = std::move(records[i]);
  return out;
}

}  // namespace llmkit::retrieval
