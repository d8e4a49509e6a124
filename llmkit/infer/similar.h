// What sentence vectors are for once computed (7.x 임베딩의 활용): the nearest texts to a query by
// cosine similarity, clusters by spherical k-means (k-means++ seeding), and outliers, the texts
// least similar to the rest. Everything works on the directions of the vectors: each input is
// scaled to unit length first (a copy), so a dot product is a cosine and the results do not
// depend on whether the embedder normalised. Plain loops in double: the sizes are those of a
// word list or a few thousand sentences, not an index (retrieval/ holds the ANN index).
// Not here: computing the embeddings (embed.h), storage, approximate search.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace llmkit::infer {

// One scored text: its position in the input and a cosine-based score.
struct ScoredIndex {
  size_t index = 0;
  double score = 0;
};

// The k candidates most cosine-similar to `query`, best first; ties keep input order (the lower
// index first), so the result is deterministic. k larger than the number of candidates gives
// all of them. Errors: k < 1, no candidates, a size that differs from the query's. A zero
// vector has cosine 0 with everything (as cosine_similarity).
std::vector<ScoredIndex> nearest_by_cosine(std::span<const float> query,
                                           std::span<const std::vector<float>> candidates,
                                           int64_t k);

struct Clustering {
  // Clusters ordered by their first member in input order (so the numbering does not depend on
  // which seed found them); members sorted by cosine to their cluster's mean direction, highest
  // first: members[c][0] is the most central text of cluster c.
  std::vector<std::vector<ScoredIndex>> members;
  std::vector<int64_t> cluster_of;  // [N]: the cluster of each input, an index into members
  double mean_cosine = 0;           // mean over inputs of the cosine to their centroid
  int64_t iterations = 0;           // Lloyd iterations of the kept run
};

// Spherical k-means: unit vectors, each assigned to the centroid of highest cosine (the nearest
// in Euclidean distance on the unit sphere), each centroid the normalised mean of its members.
// Seeding is k-means++ (Arthur & Vassilvitskii 2007) on the squared distance 2 - 2 cos, drawn
// from a std::mt19937_64 seeded with `seed`: the same seed and inputs give the same clusters on
// every platform (no std:: distribution, whose output the standard leaves open). A cluster that
// empties takes the input farthest from its own centroid. Lloyd's iterations stop at a local
// optimum that depends on the seeding (8 single words in 2 clusters: one seeding in three ended
// 7 + 1; 10 MiniLM sentences in 3 clusters: 8% of seedings reach the best of all 3^10
// partitions), so, as scikit-learn's n_init, the best of `restarts` seedings is kept: the
// highest mean cosine to the centroids (the lowest inertia, since |u - c|^2 = 2 - 2 cos). More
// restarts, better odds. Cost O(restarts iterations N K C). Errors: k < 1, k > N, ragged sizes.
Clustering kmeans_cosine(std::span<const std::vector<float>> vectors, int64_t k, uint64_t seed,
                         int64_t restarts = 10, int64_t max_iterations = 100);

// The n inputs least similar to the rest, least similar first; score = the mean cosine to all
// the other inputs. For unit vectors v_i with sum S that mean is (v_i . S - 1) / (N - 1), so the
// order is also that of the cosine to the centroid S / N: the two usual definitions agree, and
// it costs O(N C), not O(N^2 C). Ties keep input order. Errors: fewer than 2 inputs, n < 1,
// n > N, ragged sizes.
std::vector<ScoredIndex> outliers_by_mean_cosine(std::span<const std::vector<float>> vectors,
                                                 int64_t n);

}  // namespace llmkit::infer
