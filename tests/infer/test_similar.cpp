// Nearest texts, clusters and outliers on vectors (infer/similar.h), on synthetic data whose answer
// is known: top-k order by cosine with ties in input order and scale not mattering; k-means on
// well-separated groups recovering exactly the groups for every seed tried, the most central
// member first, the same seed giving the same clusters and different seeds different local
// optima on structureless data, ten restarts never worse than one and sometimes better; the outlier
// score equal to a brute-force mean cosine to the others and the odd vector out found first;
// one-line errors for bad k / n / sizes.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <set>

#include "common/error_of.h"
#include "llmkit/infer/embed.h"
#include "llmkit/infer/similar.h"

using namespace llmkit;
using llmkit::testing::error_of;

namespace {

using Vectors = std::vector<std::vector<float>>;

std::vector<size_t> indices(const std::vector<infer::ScoredIndex>& r) {
  std::vector<size_t> out;
  for (const auto& s : r) out.push_back(s.index);
  return out;
}

// `per_group` noisy copies of each of `groups` axis directions in C = 3 groups dimensions,
// interleaved (input i belongs to group i % groups) so that no group is contiguous.
Vectors separated(int groups, int per_group, std::mt19937& rng) {
  std::normal_distribution<float> noise(0.0f, 0.05f);
  const int C = 3 * groups;
  Vectors v;
  for (int i = 0; i < groups * per_group; ++i) {
    std::vector<float> x(C);
    for (float& e : x) e = noise(rng);
    x[3 * (i % groups)] += 1.0f;
    x[3 * (i % groups) + 1] += 0.5f;
    for (float& e : x) e *= 0.5f + static_cast<float>(i % 7);  // scale must not matter
    v.push_back(x);
  }
  return v;
}

Vectors gaussian(int n, int C, std::mt19937& rng) {
  std::normal_distribution<float> g;
  Vectors v(n, std::vector<float>(C));
  for (auto& x : v)
    for (float& e : x) e = g(rng);
  return v;
}

}  // namespace

TEST(Similar, NearestOrdersByCosineTiesInInputOrder) {
  const std::vector<float> q = {1, 0};
  const Vectors c = {{1, 0}, {0, 1}, {3, 0}, {1, 1}, {-1, 0}, {2, 2}};
  const auto top = infer::nearest_by_cosine(q, c, 4);
  // cosines 1, 0, 1, 0.707, -1, 0.707: the two 1s in input order, then the two 0.707s.
  EXPECT_EQ(indices(top), (std::vector<size_t>{0, 2, 3, 5}));
  EXPECT_DOUBLE_EQ(top[0].score, 1.0);
  EXPECT_NEAR(top[2].score, std::sqrt(0.5), 1e-12);
  for (size_t i = 0; i < top.size(); ++i)
    EXPECT_NEAR(top[i].score, infer::cosine_similarity(q, c[top[i].index]), 1e-7);
  // k past the end: everything, the most dissimilar last.
  const auto all = infer::nearest_by_cosine(q, c, 100);
  EXPECT_EQ(indices(all), (std::vector<size_t>{0, 2, 3, 5, 1, 4}));
  EXPECT_DOUBLE_EQ(all.back().score, -1.0);
  // A zero candidate scores 0, like cosine_similarity.
  const Vectors with_zero = {{0, 0}, {-1, 0}};
  EXPECT_EQ(indices(infer::nearest_by_cosine(q, with_zero, 1)), std::vector<size_t>{0});
}

TEST(Similar, NearestRefusesBadInput) {
  const std::vector<float> q = {1, 0};
  const Vectors c = {{1, 0}};
  EXPECT_NE(error_of([&] { infer::nearest_by_cosine(q, c, 0); }).find("k must be >= 1, got 0"),
            std::string::npos);
  EXPECT_NE(error_of([&] { infer::nearest_by_cosine(q, Vectors{}, 1); }).find("no candidates"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              infer::nearest_by_cosine(q, Vectors{{1, 0, 0}}, 1);
            }).find("candidate 0 has 3 numbers, the query 2"),
            std::string::npos);
}

TEST(Similar, KMeansRecoversWellSeparatedGroups) {
  std::mt19937 rng(7);
  const int groups = 4, per_group = 12;
  const Vectors v = separated(groups, per_group, rng);
  for (uint64_t seed : {0u, 1u, 2u, 3u, 42u, 1234u}) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    const auto r = infer::kmeans_cosine(v, groups, seed);
    ASSERT_EQ(r.members.size(), static_cast<size_t>(groups));
    ASSERT_EQ(r.cluster_of.size(), v.size());
    // Clusters numbered by first member: input g is the first of group g, so cluster g.
    for (size_t i = 0; i < v.size(); ++i)
      EXPECT_EQ(r.cluster_of[i], static_cast<int64_t>(i % groups)) << "input " << i;
    for (int g = 0; g < groups; ++g) {
      const auto& m = r.members[g];
      ASSERT_EQ(m.size(), static_cast<size_t>(per_group));
      for (size_t j = 1; j < m.size(); ++j) EXPECT_GE(m[j - 1].score, m[j].score);
      EXPECT_GT(m.back().score, 0.95);  // noise 0.05 around one direction
    }
    EXPECT_GT(r.mean_cosine, 0.95);
    EXPECT_GE(r.iterations, 1);
  }
}

TEST(Similar, KMeansIsDeterministicBySeed) {
  std::mt19937 rng(3);
  const Vectors v = gaussian(60, 8, rng);  // no structure: the result depends on the seeding
  std::set<std::vector<int64_t>> partitions;
  for (uint64_t seed = 0; seed < 12; ++seed) {
    const auto a = infer::kmeans_cosine(v, 5, seed), b = infer::kmeans_cosine(v, 5, seed);
    EXPECT_EQ(a.cluster_of, b.cluster_of) << "seed " << seed;
    EXPECT_EQ(a.mean_cosine, b.mean_cosine) << "seed " << seed;
    EXPECT_EQ(a.iterations, b.iterations) << "seed " << seed;
    partitions.insert(a.cluster_of);
  }
  EXPECT_GT(partitions.size(), 1u) << "twelve seeds gave one partition: is the seed used?";
}

TEST(Similar, KMeansRestartsKeepTheBestRun) {
  std::mt19937 rng(5);
  const Vectors v = gaussian(60, 8, rng);
  bool improved = false;
  for (uint64_t seed = 0; seed < 8; ++seed) {
    // The first of ten restarts is the single run: the best of ten can only be as good or better.
    const auto one = infer::kmeans_cosine(v, 5, seed, 1),
               ten = infer::kmeans_cosine(v, 5, seed, 10);
    EXPECT_GE(ten.mean_cosine, one.mean_cosine) << "seed " << seed;
    improved |= ten.mean_cosine > one.mean_cosine;
  }
  EXPECT_TRUE(improved) << "ten restarts never beat one on structureless data";
}

TEST(Similar, KMeansKeepsEveryClusterOnDuplicates) {
  // Two distinct directions, three clusters: the third takes a duplicate rather than staying empty.
  const Vectors v = {{1, 0}, {1, 0}, {0, 1}, {0, 1}, {1, 0}};
  const auto r = infer::kmeans_cosine(v, 3, 5);
  ASSERT_EQ(r.members.size(), 3u);
  for (const auto& m : r.members) EXPECT_FALSE(m.empty());
  // Every input is its own cluster when K = N.
  const auto each = infer::kmeans_cosine(v, 5, 5);
  for (const auto& m : each.members) EXPECT_EQ(m.size(), 1u);
}

TEST(Similar, KMeansRefusesBadK) {
  const Vectors v = {{1, 0}, {0, 1}};
  EXPECT_NE(error_of([&] { infer::kmeans_cosine(v, 0, 0); }).find("must be >= 1, got 0"),
            std::string::npos);
  EXPECT_NE(error_of([&] { infer::kmeans_cosine(v, 3, 0); }).find("3 clusters asked for 2 texts"),
            std::string::npos);
  EXPECT_NE(error_of([&] { infer::kmeans_cosine(v, 1, 0, 0); }).find("restarts must be >= 1"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              infer::kmeans_cosine(Vectors{{1, 0}, {1}}, 1, 0);
            }).find("vector 1 has 1 numbers"),
            std::string::npos);
}

TEST(Similar, OutliersAreLeastSimilarToTheRest) {
  std::mt19937 rng(11);
  Vectors v = separated(1, 15, rng);  // 15 vectors around one direction (dims 0, 1)
  v.insert(v.begin() + 6, std::vector<float>{0, 0, 2});      // the odd one out
  v.insert(v.begin() + 11, std::vector<float>{0.3f, 0, 1});  // half-way
  const auto r = infer::outliers_by_mean_cosine(v, 3);
  ASSERT_EQ(r.size(), 3u);
  EXPECT_EQ(r[0].index, 6u);
  EXPECT_EQ(r[1].index, 11u);
  // The score is the brute-force mean cosine to every other input.
  for (const auto& s : infer::outliers_by_mean_cosine(v, static_cast<int64_t>(v.size()))) {
    double sum = 0;
    for (size_t j = 0; j < v.size(); ++j)
      if (j != s.index) sum += infer::cosine_similarity(v[s.index], v[j]);
    EXPECT_NEAR(s.score, sum / static_cast<double>(v.size() - 1), 1e-9) << "input " << s.index;
  }
  // Ties in input order: three identical vectors.
  const Vectors same = {{1, 1}, {1, 1}, {1, 1}};
  EXPECT_EQ(indices(infer::outliers_by_mean_cosine(same, 3)), (std::vector<size_t>{0, 1, 2}));
}

TEST(Similar, OutliersRefuseBadN) {
  const Vectors v = {{1, 0}, {0, 1}};
  EXPECT_NE(error_of([&] {
              infer::outliers_by_mean_cosine(Vectors{{1, 0}}, 1);
            }).find("at least 2 texts"),
            std::string::npos);
  EXPECT_NE(error_of([&] { infer::outliers_by_mean_cosine(v, 3); }).find("asked for 3 of 2"),
            std::string::npos);
  EXPECT_NE(error_of([&] { infer::outliers_by_mean_cosine(v, 0); }).find("asked for 0 of 2"),
            std::string::npos);
}
