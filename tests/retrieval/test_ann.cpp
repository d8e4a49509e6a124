// AnnIndex against its oracle, exact_search: recall@10 of the HNSW graph, filters applied during
// the graph search (recall holds when only 5% of the rows pass), serialisation (round trip, the
// same bytes from two builds, truncated / corrupted / foreign bytes refused), and the input errors
// (dimensions, NaN, repeated labels). exact_search itself is checked against a double-precision
// dot product and for its tie order.
#include "llmkit/retrieval/ann.h"

#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "llmkit/core/error.h"
#include "llmkit/core/random.h"

using llmkit::Error;
using llmkit::retrieval::AnnHit;
using llmkit::retrieval::AnnIndex;
using llmkit::retrieval::AnnOptions;
using llmkit::retrieval::exact_search;
using llmkit::retrieval::LabelFilter;

namespace {

constexpr int64_t kDim = 64;

// n Gaussian vectors of `dim`, each scaled to unit length; row-major.
std::vector<float> random_unit(int64_t n, int64_t dim, uint64_t seed) {
  std::vector<float> v(n * dim);
  for (int64_t r = 0; r < n; ++r) {
    double norm2 = 0;
    for (int64_t j = 0; j < dim; ++j) {
      v[r * dim + j] = llmkit::normal_at(seed, r * dim + j);
      norm2 += double{v[r * dim + j]} * v[r * dim + j];
    }
    for (int64_t j = 0; j < dim; ++j) v[r * dim + j] /= static_cast<float>(std::sqrt(norm2));
  }
  return v;
}

// Labels that are neither the row numbers nor sorted, so a row/label mix-up shows.
std::vector<int64_t> scrambled_labels(int64_t n) {
  std::vector<int64_t> labels(n);
  for (int64_t r = 0; r < n; ++r) labels[r] = (r * 7919) % n * 3 + 1000;
  return labels;
}

std::span<const float> row(const std::vector<float>& v, int64_t r, int64_t dim) {
  return std::span<const float>(v).subspan(r * dim, dim);
}

// The share of `exact`'s labels that `approx` found too.
double overlap(const std::vector<AnnHit>& approx, const std::vector<AnnHit>& exact) {
  if (exact.empty()) return 1.0;
  std::set<int64_t> found;
  for (const AnnHit& h : approx) found.insert(h.label);
  int hits = 0;
  for (const AnnHit& h : exact) hits += found.contains(h.label);
  return static_cast<double>(hits) / exact.size();
}

// A built index over 5000 random unit vectors, shared by the tests that only search it.
struct Built {
  std::vector<float> vectors = random_unit(5000, kDim, 1);
  std::vector<int64_t> labels = scrambled_labels(5000);
  std::vector<float> queries = random_unit(200, kDim, 2);
  AnnIndex index{kDim, AnnOptions{.m = 32, .ef_construction = 128, .ef_search = 64}};
  Built() { index.add(vectors, labels); }
};

const Built& built() {
  static const Built b;
  return b;
}

// Mean recall@k of `index` against exact_search over the built set's queries.
double mean_recall(const AnnIndex& index, int64_t k, const LabelFilter& filter = nullptr) {
  const Built& b = built();
  double sum = 0;
  const int64_t n_query = static_cast<int64_t>(b.queries.size()) / kDim;
  for (int64_t q = 0; q < n_query; ++q) {
    const auto query = row(b.queries, q, kDim);
    sum += overlap(index.search(query, k, filter),
                   exact_search(b.vectors, b.labels, query, k, filter));
  }
  return sum / n_query;
}

}  // namespace

TEST(Ann, RecallAt10AgainstExactSearch) {
  const Built& b = built();
  EXPECT_EQ(b.index.rows(), 5000);
  EXPECT_EQ(b.index.labels(), b.labels);
  const double recall = mean_recall(b.index, 10);
  std::printf("recall@10 at ef 64: %.4f\n", recall);
  EXPECT_GE(recall, 0.95);
}

TEST(Ann, ScoresAreInnerProductsBestFirst) {
  const Built& b = built();
  const auto query = row(b.queries, 0, kDim);
  const std::vector<AnnHit> hits = b.index.search(query, 10);
  ASSERT_EQ(hits.size(), 10u);
  for (size_t i = 0; i < hits.size(); ++i) {
    const auto at = std::find(b.labels.begin(), b.labels.end(), hits[i].label) - b.labels.begin();
    double dot = 0;
    for (int64_t j = 0; j < kDim; ++j) dot += double{query[j]} * b.vectors[at * kDim + j];
    EXPECT_NEAR(hits[i].score, dot, 1e-5) << "hit " << i;
    if (i > 0) {
      EXPECT_GE(hits[i - 1].score, hits[i].score);
    }
  }
}

TEST(Ann, FilterIsAppliedDuringTheGraphSearch) {
  const Built& b = built();
  // 5% of the labels pass: filtering an unfiltered top-10 afterwards would leave ~0.5 hits.
  const LabelFilter one_in_twenty = [](int64_t label) { return label % 20 == 0; };
  const auto query = row(b.queries, 3, kDim);
  const std::vector<AnnHit> hits = b.index.search(query, 10, one_in_twenty);
  ASSERT_EQ(hits.size(), 10u);
  for (const AnnHit& h : hits) EXPECT_TRUE(one_in_twenty(h.label)) << h.label;
  // The beam of ef_search candidates holds rows that fail the filter too, so with 5% passing it
  // finds fewer of the filtered top 10 at a given ef than an unfiltered search does: a larger ef
  // makes up for it. (A filter applied after an unfiltered top-10 would find ~5% of them.)
  const double recall = mean_recall(b.index, 10, one_in_twenty);
  AnnIndex wide = AnnIndex::deserialize(b.index.serialize());
  wide.set_ef_search(256);
  const double wide_recall = mean_recall(wide, 10, one_in_twenty);
  std::printf("filtered (5%% pass) recall@10: ef 64 %.4f, ef 256 %.4f\n", recall, wide_recall);
  EXPECT_GE(recall, 0.85);
  EXPECT_GE(wide_recall, 0.97);
}

TEST(Ann, FilterPassingFewerThanKGivesThoseRows) {
  const Built& b = built();
  const std::set<int64_t> allowed = {b.labels[5], b.labels[4000], b.labels[123]};
  const LabelFilter only = [&](int64_t label) { return allowed.contains(label); };
  const std::vector<AnnHit> hits = b.index.search(row(b.queries, 0, kDim), 10, only);
  std::set<int64_t> got;
  for (const AnnHit& h : hits) got.insert(h.label);
  // The graph search may miss an isolated allowed row, but never returns another one.
  EXPECT_LE(got.size(), 3u);
  for (int64_t label : got) EXPECT_TRUE(allowed.contains(label));
  EXPECT_TRUE(b.index.search(row(b.queries, 0, kDim), 10, [](int64_t) { return false; }).empty());
}

TEST(Ann, FilterExceptionReachesTheCaller) {
  const Built& b = built();
  const LabelFilter throws = [](int64_t) -> bool { throw std::runtime_error("filter broke"); };
  EXPECT_THROW(b.index.search(row(b.queries, 0, kDim), 10, throws), std::runtime_error);
}

TEST(Ann, EfSearchRaisesRecallAndIsRaisedToK) {
  const Built& b = built();
  AnnIndex index = AnnIndex::deserialize(b.index.serialize());
  index.set_ef_search(1);  // raised to k = 10 inside search
  const double low = mean_recall(index, 10);
  index.set_ef_search(256);
  const double high = mean_recall(index, 10);
  std::printf("recall@10 at ef 10: %.4f, at ef 256: %.4f\n", low, high);
  EXPECT_GT(high, low);
  EXPECT_GE(high, 0.99);
  EXPECT_EQ(index.search(row(b.queries, 0, kDim), 10).size(), 10u);
}

TEST(Ann, SerializeRoundTripGivesIdenticalResults) {
  const Built& b = built();
  AnnIndex copy_of = [&] {
    AnnIndex original = AnnIndex::deserialize(b.index.serialize());
    original.set_generation(42);
    return AnnIndex::deserialize(original.serialize(), "copy");
  }();
  EXPECT_EQ(copy_of.dim(), kDim);
  EXPECT_EQ(copy_of.rows(), b.index.rows());
  EXPECT_EQ(copy_of.labels(), b.labels);
  EXPECT_EQ(copy_of.generation(), 42);
  const LabelFilter odd = [](int64_t label) { return label % 2 == 1; };
  for (int64_t q = 0; q < 20; ++q) {
    for (const LabelFilter& filter : {LabelFilter{}, odd}) {
      const auto want = b.index.search(row(b.queries, q, kDim), 10, filter);
      const auto got = copy_of.search(row(b.queries, q, kDim), 10, filter);
      ASSERT_EQ(got.size(), want.size());
      for (size_t i = 0; i < got.size(); ++i) {
        EXPECT_EQ(got[i].label, want[i].label);
        EXPECT_EQ(got[i].score, want[i].score);  // bit for bit
      }
    }
  }
}

TEST(Ann, SameInputGivesSameBytesWhateverTheThreadCount) {
  const auto vectors = random_unit(3000, 32, 7);
  const auto labels = scrambled_labels(3000);
  const std::span<const float> all(vectors);
  const std::span<const int64_t> all_labels(labels);
  auto build = [&](int threads) {
    const int saved = omp_get_max_threads();
    omp_set_num_threads(threads);
    AnnIndex index(32, AnnOptions{.m = 16, .ef_construction = 64});
    // Two batches: the second links into the first.
    index.add(all.first(2000 * 32), all_labels.first(2000));
    index.add(all.subspan(2000 * 32), all_labels.subspan(2000));
    omp_set_num_threads(saved);
    return index.serialize();
  };
  // EXPECT_TRUE, not EXPECT_EQ: a failure would print megabytes of index.
  const std::string one = build(1);
  EXPECT_TRUE(build(4) == one);
  EXPECT_TRUE(build(4) == one);

  // Adding to a deserialised index builds what adding without the round trip does.
  AnnIndex first(32, AnnOptions{.m = 16, .ef_construction = 64});
  first.add(all.first(2000 * 32), all_labels.first(2000));
  AnnIndex reread = AnnIndex::deserialize(first.serialize());
  reread.add(all.subspan(2000 * 32), all_labels.subspan(2000));
  EXPECT_TRUE(reread.serialize() == one);
}

TEST(Ann, BrokenBytesAreClearErrors) {
  AnnIndex index(8);
  const auto vectors = random_unit(50, 8, 3);
  index.add(vectors, scrambled_labels(50));
  const std::string good = index.serialize();
  ASSERT_NO_THROW(AnnIndex::deserialize(good));

  auto message = [](std::string_view bytes) -> std::string {
    try {
      AnnIndex::deserialize(bytes, "idx.ann");
    } catch (const Error& e) {
      return e.what();
    }
    return "(no error)";
  };
  for (size_t keep : {size_t{0}, size_t{5}, size_t{8}, size_t{30}, size_t{43}, good.size() / 2,
                      good.size() - 1}) {
    const std::string m = message(std::string_view(good).substr(0, keep));
    EXPECT_NE(m.find("idx.ann"), std::string::npos) << keep << ": " << m;
    EXPECT_TRUE(m.find("truncated") != std::string::npos ||
                m.find("bad magic") != std::string::npos)
        << keep << ": " << m;
  }
  for (size_t at : {size_t{60}, good.size() / 2, good.size() - 10}) {
    std::string flipped = good;
    flipped[at] = static_cast<char>(flipped[at] ^ 0x20);
    EXPECT_NE(message(flipped).find("CRC-32 mismatch"), std::string::npos) << at;
  }
  std::string foreign = good;
  foreign[3] = 'X';
  EXPECT_NE(message(foreign).find("bad magic"), std::string::npos);
  EXPECT_NE(message(good + "x").find("unexpected bytes"), std::string::npos);
}

TEST(Ann, InputErrors) {
  AnnIndex index(4);
  const std::vector<float> two_rows = {1, 0, 0, 0, 0, 1, 0, 0};
  const std::vector<int64_t> labels = {10, 11};
  EXPECT_THROW(index.add(std::span<const float>(two_rows).first(7), labels), Error);
  std::vector<float> nan_row = two_rows;
  nan_row[5] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_THROW(index.add(nan_row, labels), Error);
  nan_row[5] = std::numeric_limits<float>::infinity();
  EXPECT_THROW(index.add(nan_row, labels), Error);
  EXPECT_THROW(index.add(two_rows, std::vector<int64_t>{10, 10}), Error);
  EXPECT_EQ(index.rows(), 0);  // nothing was added by the failed calls
  EXPECT_TRUE(index.search(std::vector<float>{1, 0, 0, 0}, 5).empty());

  index.add(two_rows, labels);
  EXPECT_THROW(index.add(std::vector<float>{0, 0, 1, 0}, std::vector<int64_t>{11}), Error);
  EXPECT_THROW(index.search(std::vector<float>{1, 0, 0}, 1), Error);
  EXPECT_THROW(index.search(std::vector<float>{1, 0, 0, NAN}, 1), Error);
  EXPECT_THROW(index.search(std::vector<float>{1, 0, 0, 0}, -1), Error);
  EXPECT_THROW(AnnIndex(0), Error);
  EXPECT_THROW(AnnIndex(4, AnnOptions{.m = 1}), Error);

  const std::vector<float> q = {1, 0, 0, 0};
  EXPECT_THROW(exact_search(std::span<const float>(two_rows).first(7), labels, q, 1), Error);
  EXPECT_THROW(exact_search(nan_row, labels, q, 1), Error);
  EXPECT_THROW(exact_search(two_rows, labels, std::vector<float>{NAN, 0, 0, 0}, 1), Error);
}

TEST(ExactSearch, TiesGoToTheSmallerLabelAndKMayExceedN) {
  // Rows 0, 2 and 3 score 1, row 1 scores 0.5: ties in label order, whatever the row order.
  const std::vector<float> vectors = {1, 0, 0.5f, 0, 1, 0, 1, 0};
  const std::vector<int64_t> labels = {30, 5, 20, 10};
  const std::vector<float> query = {1, 0};
  const auto hits = exact_search(vectors, labels, query, 10);
  ASSERT_EQ(hits.size(), 4u);
  EXPECT_EQ(hits[0].label, 10);
  EXPECT_EQ(hits[1].label, 20);
  EXPECT_EQ(hits[2].label, 30);
  EXPECT_EQ(hits[3].label, 5);
  EXPECT_FLOAT_EQ(hits[3].score, 0.5f);
  const auto top2 = exact_search(vectors, labels, query, 2);
  ASSERT_EQ(top2.size(), 2u);
  EXPECT_EQ(top2[1].label, 20);
  EXPECT_TRUE(exact_search(vectors, labels, query, 0).empty());
  const auto no_ten = exact_search(vectors, labels, query, 10, [](int64_t l) { return l != 10; });
  ASSERT_EQ(no_ten.size(), 3u);
  EXPECT_EQ(no_ten[0].label, 20);

  // The same through the index: equal scores come back in label order too.
  AnnIndex index(2);
  index.add(vectors, labels);
  const auto ann = index.search(query, 3);
  ASSERT_EQ(ann.size(), 3u);
  EXPECT_EQ(ann[0].label, 10);
  EXPECT_EQ(ann[1].label, 20);
  EXPECT_EQ(ann[2].label, 30);
  EXPECT_EQ(index.search(query, 100).size(), 4u);
}

TEST(ExactSearch, ScoresMatchADoubleDotProduct) {
  const auto vectors = random_unit(300, 48, 11);
  const auto labels = scrambled_labels(300);
  const auto query = random_unit(1, 48, 12);
  const auto hits = exact_search(vectors, labels, query, 300);
  ASSERT_EQ(hits.size(), 300u);
  std::vector<double> want(300);
  for (int64_t r = 0; r < 300; ++r) {
    for (int64_t j = 0; j < 48; ++j) want[r] += double{query[j]} * vectors[r * 48 + j];
  }
  for (size_t i = 0; i < hits.size(); ++i) {
    const auto r = std::find(labels.begin(), labels.end(), hits[i].label) - labels.begin();
    EXPECT_NEAR(hits[i].score, want[r], 1e-6);
    if (i > 0) {
      EXPECT_GE(hits[i - 1].score, hits[i].score);
    }
  }
  // Best first means the largest double dot product comes first.
  EXPECT_EQ(hits[0].label, labels[std::max_element(want.begin(), want.end()) - want.begin()]);
}
