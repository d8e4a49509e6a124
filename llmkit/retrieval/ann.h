// Approximate nearest-neighbour search over unit vectors (9.x 벡터 데이터베이스): a FAISS
// IndexHNSWFlat with inner-product metric (the cosine for unit vectors) whose rows carry our
// labels (chunk ids), and exact (flat) search as the reference. Why FAISS and not hnswlib:
// Debian 12's hnswlib (0.6.2) has no filtered search (filter functors arrived in 0.7), so a
// metadata filter could only be applied to a top-k that may then be too small; FAISS 1.7.3's
// HNSW takes an IDSelector that the graph search consults, so filters apply during search. HNSW
// cannot remove a vector: a deleted label stays in the graph and `allow` leaves it out; the
// owner rebuilds the index when too much of it is dead.
// Serialised form (what store.h writes atomically): magic "LLMKANN1", a little-endian header
// (dim, generation, rows, FAISS byte count: int64 each), the row -> label table (int64 each),
// FAISS's own index bytes, and a CRC-32 (zlib) of all that; a truncated or foreign file is a
// clear Error, never a crash.
// Determinism: add() runs FAISS's insertion with one OpenMP thread (its parallel insertion makes
// the graph depend on thread timing), so the same vectors added in the same batches give the same
// graph and the same serialised bytes whatever the thread count; search() also uses one thread
// (one query per call). Concurrent search() calls are safe; add() needs exclusive access.
// Not here: the SQLite document store, chunking, hybrid search.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace llmkit::retrieval {

struct AnnHit {
  int64_t label = 0;
  float score = 0;  // inner product (cosine for unit vectors); higher is nearer
};

// Which labels a search may return (metadata filters, deleted chunks); null: all.
using LabelFilter = std::function<bool(int64_t label)>;

struct AnnOptions {
  int m = 32;                 // HNSW neighbours per node (FAISS's M)
  int ef_construction = 128;  // candidate list while building
  int ef_search = 64;         // candidate list while searching (raised to k when smaller)
};

class AnnIndex {
 public:
  AnnIndex(int64_t dim, const AnnOptions& options = {});
  ~AnnIndex();
  AnnIndex(AnnIndex&&) noexcept;
  AnnIndex& operator=(AnnIndex&&) noexcept;

  int64_t dim() const;
  int64_t rows() const;                        // vectors added, dead ones included
  const std::vector<int64_t>& labels() const;  // row -> label, in the order added
  // A number the owner keeps with the index (store.h: the last chunk id it covers).
  int64_t generation() const;
  void set_generation(int64_t g);
  void set_ef_search(int ef);

  // Adds n = labels.size() vectors (vectors.size() == n * dim), row-major. Labels need not be
  // sorted but must be new; vectors must be finite.
  void add(std::span<const float> vectors, std::span<const int64_t> labels);

  // The k nearest rows whose label passes `filter`, best first (ties: smaller label first).
  // Fewer than k when fewer pass. The query must have dim() finite values.
  std::vector<AnnHit> search(std::span<const float> query, int64_t k,
                             const LabelFilter& filter = nullptr) const;

  std::string serialize() const;
  // Errors name `name`: bad magic, truncated, CRC mismatch, FAISS refusing the bytes.
  static AnnIndex deserialize(std::string_view bytes, std::string_view name = "ann index");

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Exact search: the k best of n = labels.size() rows of `vectors` (row-major, n * dim) by inner
// product with `query`, passing `filter`, best first (ties: smaller label first). The reference
// that ANN recall is measured against.
std::vector<AnnHit> exact_search(std::span<const float> vectors, std::span<const int64_t> labels,
                                 std::span<const float> query, int64_t k,
                                 const LabelFilter& filter = nullptr);

}  // namespace llmkit::retrieval
