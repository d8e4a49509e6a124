// Nearest texts, clusters and outliers from sentence vectors (see similar.h). N inputs, C channels,
// K clusters. Everything is computed in double on unit-length copies of the inputs.
#include "llmkit/infer/similar.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>

#include "llmkit/core/error.h"

namespace llmkit::infer {

namespace {

using Unit = std::vector<double>;  // [C], length 1 (or 0 for a zero input)

template <typename T>
Unit unit(std::span<const T> v) {
  Unit u(v.begin(), v.end());
  double ss = 0;
  for (double x : u) ss += x * x;
  if (ss > 0) {
    const double inv = 1.0 / std::sqrt(ss);
    for (double& x : u) x *= inv;
  }
  return u;
}

double dot(const Unit& a, const Unit& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

// [N][C] unit copies; every input the same size (Error naming `what` and the first that differs).
std::vector<Unit> units(std::span<const std::vector<float>> vectors, const char* what) {
  std::vector<Unit> out;
  out.reserve(vectors.size());
  for (size_t i = 0; i < vectors.size(); ++i) {
    LLMKIT_CHECK(vectors[i].size() == vectors[0].size(), what, ": vector ", i, " has ",
                 vectors[i].size(), " numbers, vector 0 has ", vectors[0].size());
    out.push_back(unit<float>(vectors[i]));
  }
  return out;
}

// Highest score first; equal scores in input order.
bool higher(const ScoredIndex& a, const ScoredIndex& b) {
  return a.score != b.score ? a.score > b.score : a.index < b.index;
}

// A uniform double in [0, 1) from the top 53 bits: mt19937_64's output sequence is fixed by the
// standard, std::uniform_real_distribution's is not.
double uniform01(std::mt19937_64& rng) {
  return static_cast<double>(rng() >> 11) * 0x1.0p-53;
}

// k-means++: the first centre uniformly, each next one with probability proportional to its
// squared distance 2 - 2 cos to the nearest centre so far. When every remaining distance is 0
// (duplicates), the lowest index not yet a centre.
std::vector<Unit> kmeans_pp(const std::vector<Unit>& u, int64_t K, std::mt19937_64& rng) {
  const size_t N = u.size();
  std::vector<Unit> centres;
  std::vector<bool> chosen(N, false);
  auto take = [&](size_t i) {
    chosen[i] = true;
    centres.push_back(u[i]);
  };
  take(std::min(N - 1, static_cast<size_t>(uniform01(rng) * static_cast<double>(N))));
  std::vector<double> d2(N, std::numeric_limits<double>::infinity());
  while (static_cast<int64_t>(centres.size()) < K) {
    double total = 0;
    for (size_t i = 0; i < N; ++i) {
      d2[i] = std::min(d2[i], std::max(0.0, 2.0 - 2.0 * dot(u[i], centres.back())));
      if (chosen[i]) d2[i] = 0;
      total += d2[i];
    }
    size_t pick = N;
    if (total > 0) {
      double r = uniform01(rng) * total;
      for (size_t i = 0; i < N && pick == N; ++i) {
        if (d2[i] > 0 && (r < d2[i] || i == N - 1)) pick = i;
        r -= d2[i];
      }
      // Rounding can walk past the last positive weight: take the last one then.
      for (size_t i = N; pick == N && i-- > 0;)
        if (d2[i] > 0) pick = i;
    } else {
      pick = static_cast<size_t>(std::find(chosen.begin(), chosen.end(), false) - chosen.begin());
    }
    take(pick);
  }
  return centres;
}

}  // namespace

std::vector<ScoredIndex> nearest_by_cosine(std::span<const float> query,
                                           std::span<const std::vector<float>> candidates,
                                           int64_t k) {
  LLMKIT_CHECK(k >= 1, "nearest: k must be >= 1, got ", k);
  LLMKIT_CHECK(!candidates.empty(), "nearest: no candidates");
  const Unit q = unit<float>(query);
  std::vector<ScoredIndex> scored;
  scored.reserve(candidates.size());
  for (size_t i = 0; i < candidates.size(); ++i) {
    LLMKIT_CHECK(candidates[i].size() == query.size(), "nearest: candidate ", i, " has ",
                 candidates[i].size(), " numbers, the query ", query.size());
    scored.push_back({i, dot(q, unit<float>(candidates[i]))});
  }
  const size_t keep = std::min(scored.size(), static_cast<size_t>(k));
  std::partial_sort(scored.begin(), scored.begin() + static_cast<std::ptrdiff_t>(keep),
                    scored.end(), higher);
  scored.resize(keep);
  return scored;
}

namespace {

// One k-means++ seeding and Lloyd's iterations from it.
Clustering kmeans_once(const std::vector<Unit>& u, int64_t k, std::mt19937_64& rng,
                       int64_t max_iterations) {
  const int64_t N = static_cast<int64_t>(u.size());
  std::vector<Unit> centres = kmeans_pp(u, k, rng);  // [K][C]
  std::vector<int64_t> assign(N, -1);
  std::vector<double> cos_to_centre(N, 0);
  Clustering out;
  for (int64_t it = 0; it < max_iterations; ++it) {
    // Assignment: the centre of highest cosine, the lowest cluster index on a tie.
    bool changed = false;
    for (int64_t i = 0; i < N; ++i) {
      int64_t best = 0;
      double best_cos = -std::numeric_limits<double>::infinity();
      for (int64_t c = 0; c < k; ++c) {
        const double s = dot(u[i], centres[c]);
        if (s > best_cos) best_cos = s, best = c;
      }
      changed |= assign[i] != best;
      assign[i] = best;
      cos_to_centre[i] = best_cos;
    }
    // An empty cluster takes the input least like its own centre, from a cluster that keeps at
    // least one member, so that K clusters come back.
    std::vector<int64_t> size(k, 0);
    for (int64_t c : assign) ++size[c];
    for (int64_t c = 0; c < k; ++c) {
      if (size[c] > 0) continue;
      int64_t worst = -1;
      for (int64_t i = 0; i < N; ++i)
        if (size[assign[i]] > 1 && (worst < 0 || cos_to_centre[i] < cos_to_centre[worst]))
          worst = i;
      --size[assign[worst]];
      assign[worst] = c;
      ++size[c];
      changed = true;
    }
    out.iterations = it + 1;
    if (!changed) break;
    // Update: each centre the normalised mean direction of its members.
    for (auto& c : centres) std::fill(c.begin(), c.end(), 0.0);
    for (int64_t i = 0; i < N; ++i)
      for (size_t j = 0; j < u[i].size(); ++j) centres[assign[i]][j] += u[i][j];
    for (auto& c : centres) c = unit<double>(c);
  }
  // Number clusters by their first member in input order; members by centrality.
  std::vector<int64_t> label(k, -1);
  int64_t next = 0;
  for (int64_t i = 0; i < N; ++i)
    if (label[assign[i]] < 0) label[assign[i]] = next++;
  out.members.assign(k, {});
  out.cluster_of.resize(N);
  double total = 0;
  for (int64_t i = 0; i < N; ++i) {
    const double s = dot(u[i], centres[assign[i]]);
    out.cluster_of[i] = label[assign[i]];
    out.members[label[assign[i]]].push_back({static_cast<size_t>(i), s});
    total += s;
  }
  for (auto& m : out.members) std::sort(m.begin(), m.end(), higher);
  out.mean_cosine = total / static_cast<double>(N);
  return out;
}

}  // namespace

Clustering kmeans_cosine(std::span<const std::vector<float>> vectors, int64_t k, uint64_t seed,
                         int64_t restarts, int64_t max_iterations) {
  const int64_t N = static_cast<int64_t>(vectors.size());
  LLMKIT_CHECK(k >= 1, "kmeans: the number of clusters must be >= 1, got ", k);
  LLMKIT_CHECK(k <= N, "kmeans: ", k, " clusters asked for ", N, " texts (at most one per text)");
  LLMKIT_CHECK(restarts >= 1, "kmeans: restarts must be >= 1, got ", restarts);
  LLMKIT_CHECK(max_iterations >= 1, "kmeans: max_iterations must be >= 1, got ", max_iterations);
  const std::vector<Unit> u = units(vectors, "kmeans");
  std::mt19937_64 rng(seed);  // one stream for all restarts: run r starts where run r-1 stopped
  Clustering best;
  for (int64_t r = 0; r < restarts; ++r) {
    Clustering c = kmeans_once(u, k, rng, max_iterations);
    if (r == 0 || c.mean_cosine > best.mean_cosine) best = std::move(c);  // first best on a tie
  }
  return best;
}

std::vector<ScoredIndex> outliers_by_mean_cosine(std::span<const std::vector<float>> vectors,
                                                 int64_t n) {
  const int64_t N = static_cast<int64_t>(vectors.size());
  LLMKIT_CHECK(N >= 2, "outliers: need at least 2 texts to compare, got ", N);
  LLMKIT_CHECK(n >= 1 && n <= N, "outliers: asked for ", n, " of ", N, " texts (1 to ", N, ")");
  const std::vector<Unit> u = units(vectors, "outliers");
  Unit sum(u[0].size(), 0.0);  // S = sum_i v_i
  for (const auto& v : u)
    for (size_t j = 0; j < v.size(); ++j) sum[j] += v[j];
  std::vector<ScoredIndex> scored;
  scored.reserve(N);
  for (int64_t i = 0; i < N; ++i)  // (v_i . S - v_i . v_i) / (N - 1): v_i's own term left out
    scored.push_back(
        {static_cast<size_t>(i), (dot(u[i], sum) - dot(u[i], u[i])) / static_cast<double>(N - 1)});
  std::sort(scored.begin(), scored.end(), [](const ScoredIndex& a, const ScoredIndex& b) {
    return a.score != b.score ? a.score < b.score : a.index < b.index;
  });
  scored.resize(n);
  return scored;
}

}  // namespace llmkit::infer
