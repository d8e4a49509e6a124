// The vector database (llmkit/retrieval/store.h, search.h) on synthetic vectors, no model needed:
// create/open and foreign or corrupt files; add, search (dense, BM25, hybrid), filters applied
// during the search, delete and replace; a transaction not committed leaves nothing; an ANN file
// that is behind, missing or corrupt still gives complete results; dead rows trigger a rebuild.
#include <gtest/gtest.h>

#include <sqlite3.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>

#include "common/temp_dir.h"
#include "llmkit/core/error.h"
#include "llmkit/retrieval/search.h"
#include "llmkit/retrieval/store.h"

using namespace llmkit::retrieval;
using llmkit::testing::TempDir;

namespace {

constexpr int64_t kDim = 8;

std::vector<float> unit(std::vector<float> v) {
  double n = 0;
  for (float x : v) n += double(x) * x;
  for (float& x : v) x = static_cast<float>(x / std::sqrt(n));
  return v;
}

// The i-th basis vector blended a little with the next one: distinct, known neighbours.
std::vector<float> basis(int i, float mix = 0.1f) {
  std::vector<float> v(kDim, 0.0f);
  v[static_cast<size_t>(i % kDim)] = 1.0f;
  v[static_cast<size_t>((i + 1) % kDim)] = mix;
  return unit(v);
}

// Seeded random unit vectors.
struct RandomUnit {
  explicit RandomUnit(unsigned seed) : rng(seed) {}
  std::vector<float> operator()(int dim) {
    std::vector<float> v(static_cast<size_t>(dim));
    for (auto& x : v) x = nd(rng);
    return unit(v);
  }
  std::mt19937 rng;
  std::normal_distribution<float> nd;
};

ChunkInput chunk(const std::string& text, std::vector<float> v, const std::string& heading = "") {
  ChunkInput c;
  c.text = text;
  c.vector = std::move(v);
  c.place.heading = heading;
  c.place.first_line = 1;
  c.place.last_line = 2;
  return c;
}

DocumentMeta meta(const std::string& key, const std::string& lang = "en",
                  const std::string& source = "test", const std::string& date = "2024-01-01") {
  DocumentMeta m;
  m.key = key;
  m.path = "/docs/" + key;
  m.source = source;
  m.title = key;
  m.lang = lang;
  m.date = date;
  m.format = "text";
  m.hash = std::hash<std::string>{}(key);
  return m;
}

StoreConfig config() {
  StoreConfig c;
  c.embedder = "test-embedder";
  c.dim = kDim;
  c.ann.m = 8;
  c.ann.ef_construction = 32;
  c.ann.ef_search = 32;
  return c;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const llmkit::Error& e) {
    return e.what();
  }
  return "";
}

// A 16-dimensional index at `dir` of `docs` documents ("doc0", ...) with `per_doc` chunks each,
// their vectors drawn from `random_unit`; document d's language is lang_of(d). Returns every
// chunk's vector, document by document.
std::vector<std::vector<float>> random_index(const std::string& dir, RandomUnit& random_unit,
                                             int docs, int per_doc,
                                             const std::function<std::string(int)>& lang_of) {
  StoreConfig c = config();
  c.dim = 16;
  Store::create(dir, c);
  std::vector<std::vector<float>> vectors;
  Store s = Store::open(dir, Store::Mode::Write);
  s.begin();
  for (int d = 0; d < docs; ++d) {
    std::vector<ChunkInput> chunks;
    for (int i = 0; i < per_doc; ++i) {
      chunks.push_back(chunk("chunk " + std::to_string(i), random_unit(16)));
      vectors.push_back(chunks.back().vector);
    }
    s.add_document(meta("doc" + std::to_string(d), lang_of(d)), chunks);
  }
  s.commit();
  return vectors;
}

// Three documents: a Debian one (keywords "apt" and "package"), a Python one, a Korean one.
void fill(const std::string& dir) {
  Store s = Store::open(dir, Store::Mode::Write);
  s.begin();
  const std::vector<ChunkInput> debian = {
      chunk("Use apt to install a package from the Debian archive.", basis(0), "Packages"),
      chunk("The dpkg tool works below apt.", basis(1), "Packages")};
  s.add_document(meta("debian.txt"), debian);
  const std::vector<ChunkInput> python = {chunk("A list comprehension builds a list.", basis(2))};
  s.add_document(meta("python.txt", "en", "python", "2023-05-01"), python);
  const std::vector<ChunkInput> korean = {
      chunk("데비안은 자유 운영체제입니다. 패키지는 apt로 설치합니다.", basis(3))};
  s.add_document(meta("korean.txt", "ko", "faq-ko", "2022-03-01"), korean);
  s.commit();
}

}  // namespace

TEST(Store, CreateRefusesAnExistingIndexAndOpenNamesBadFiles) {
  TempDir t;
  const std::string dir = t.file("db");
  Store::create(dir, config());
  EXPECT_NE(error_of([&] { Store::create(dir, config()); }).find("already holds an index"),
            std::string::npos);
  EXPECT_NE(
      error_of([&] { Store::open(t.file("none"), Store::Mode::Read); }).find("not a directory"),
      std::string::npos);
  std::filesystem::create_directories(t.file("empty"));
  EXPECT_NE(error_of([&] { Store::open(t.file("empty"), Store::Mode::Read); }).find("no index"),
            std::string::npos);

  // Not SQLite at all.
  std::filesystem::create_directories(t.file("junk"));
  {
    std::ofstream f(store_db_path(t.file("junk")));
    f << "this is not a database, just text that is long enough to have a header............";
  }
  const std::string junk = error_of([&] { Store::open(t.file("junk"), Store::Mode::Read); });
  EXPECT_NE(junk.find("not a usable SQLite database"), std::string::npos) << junk;
  EXPECT_NE(junk.find("llmkit.db"), std::string::npos) << junk;

  // SQLite, but someone else's.
  std::filesystem::create_directories(t.file("foreign"));
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(store_db_path(t.file("foreign")).c_str(), &db), SQLITE_OK);
  sqlite3_exec(db, "CREATE TABLE t(x)", nullptr, nullptr, nullptr);
  sqlite3_close(db);
  EXPECT_NE(error_of([&] {
              Store::open(t.file("foreign"), Store::Mode::Read);
            }).find("not an llmkit index"),
            std::string::npos);

  Store s = Store::open(dir, Store::Mode::Read);
  EXPECT_EQ(s.config().dim, kDim);
  EXPECT_EQ(s.config().embedder, "test-embedder");
  EXPECT_EQ(s.config().ann.m, 8);
}

TEST(Store, DenseBm25AndHybridFindTheRightChunks) {
  TempDir t;
  const std::string dir = t.file("db");
  Store::create(dir, config());
  fill(dir);
  Store s = Store::open(dir, Store::Mode::Read);
  const StoreStats st = s.stats();
  EXPECT_EQ(st.documents, 3);
  EXPECT_EQ(st.chunks, 4);
  EXPECT_EQ(st.ann_rows, 4);
  EXPECT_EQ(st.ann_behind, 0);

  // Dense: the query nearest basis(2) is the Python chunk.
  const auto dense = s.dense_search(basis(2, 0.05f), 2, nullptr);
  ASSERT_EQ(dense.size(), 2u);
  const auto rec = s.chunks(std::vector<int64_t>{dense[0].label});
  EXPECT_EQ(rec[0].doc_key, "python.txt");
  EXPECT_GT(dense[0].score, dense[1].score);

  // BM25 (porter stemming: "packages" matches "package").
  const auto kw = s.bm25_search("How do I install packages?", 5, nullptr);
  ASSERT_FALSE(kw.empty());
  EXPECT_EQ(s.chunks(std::vector<int64_t>{kw[0].label})[0].doc_key, "debian.txt");
  EXPECT_GT(kw[0].score, 0);
  // Korean: the word with its particle ("패키지는") matches through Hangul bigrams.
  const auto ko = s.bm25_search("패키지", 5, nullptr);
  ASSERT_EQ(ko.size(), 1u);
  EXPECT_EQ(s.chunks(std::vector<int64_t>{ko[0].label})[0].doc_key, "korean.txt");
  EXPECT_TRUE(s.bm25_search("the what is", 5, nullptr).empty()) << "stop words only";

  // Hybrid: the keyword hit and the vector hit both appear, with RRF scores.
  SearchOptions o;
  o.k = 3;
  const auto hybrid = search(s, "install a package", basis(2, 0.05f), o);
  ASSERT_GE(hybrid.size(), 2u);
  bool has_python = false, has_debian = false;
  for (const auto& h : hybrid) {
    has_python |= h.chunk.doc_key == "python.txt";
    has_debian |= h.chunk.doc_key == "debian.txt";
    double rrf = 0;
    if (h.dense_rank > 0) rrf += 1.0 / (60 + h.dense_rank);
    if (h.bm25_rank > 0) rrf += 1.0 / (60 + h.bm25_rank);
    EXPECT_DOUBLE_EQ(h.score, rrf);
    EXPECT_TRUE(std::isfinite(h.cosine));
  }
  EXPECT_TRUE(has_python && has_debian);
  for (size_t i = 1; i < hybrid.size(); ++i) EXPECT_GE(hybrid[i - 1].score, hybrid[i].score);
}

TEST(Store, FiltersApplyDuringTheSearch) {
  TempDir t;
  const std::string dir = t.file("db");
  Store::create(dir, config());
  fill(dir);
  Store s = Store::open(dir, Store::Mode::Read);
  SearchOptions o;
  o.k = 5;
  o.filters = {parse_condition("lang=ko")};
  // The query is nearest the English chunks; the filter still yields the Korean one.
  for (auto mode : {SearchMode::Dense, SearchMode::Hybrid}) {
    o.mode = mode;
    const auto hits = search(s, "apt", basis(0), o);
    ASSERT_EQ(hits.size(), 1u) << search_mode_name(mode);
    EXPECT_EQ(hits[0].chunk.doc_key, "korean.txt");
  }
  o.filters = {parse_condition("date>=2023-01-01"), parse_condition("source!=test")};
  o.mode = SearchMode::Dense;
  const auto hits = search(s, "", basis(0), o);
  ASSERT_EQ(hits.size(), 1u);
  EXPECT_EQ(hits[0].chunk.doc_key, "python.txt");
  o.filters = {parse_condition("path~*/debian*")};
  EXPECT_EQ(search(s, "", basis(5), o).size(), 2u);
  EXPECT_NE(error_of([] { parse_condition("colour=red"); }).find("unknown filter key"),
            std::string::npos);
  EXPECT_NE(error_of([] { parse_condition("lang"); }).find("no operator"), std::string::npos);
}

TEST(Store, SparseFilterOverManyChunksMatchesExactSearch) {
  TempDir t;
  const std::string dir = t.file("db");
  RandomUnit random_unit(7);
  // One document in 50 is Korean: 2% of the chunks pass lang=ko.
  random_index(dir, random_unit, 400, 5, [](int d) { return d % 50 == 0 ? "ko" : "en"; });
  Store s = Store::open(dir, Store::Mode::Read);
  const auto allowed = s.filter(std::vector<Condition>{parse_condition("lang=ko")});
  ASSERT_EQ(allowed.size(), 40u);
  int found = 0, total = 0;
  for (int q = 0; q < 20; ++q) {
    const std::vector<float> v = random_unit(16);
    const auto ann = s.dense_search(v, 10, &allowed);
    const auto exact = s.dense_search(v, 10, &allowed, /*exact=*/true);
    ASSERT_EQ(ann.size(), 10u) << "a filter must not shrink the top-k";
    ASSERT_EQ(exact.size(), 10u);
    for (const auto& h : ann) {
      EXPECT_TRUE(std::binary_search(allowed.begin(), allowed.end(), h.label));
      for (const auto& e : exact) found += e.label == h.label;
    }
    total += 10;
  }
  EXPECT_GE(found, total * 95 / 100) << "filtered recall@10 " << double(found) / total;
}

TEST(Store, UncommittedWorkIsRolledBack) {
  TempDir t;
  const std::string dir = t.file("db");
  Store::create(dir, config());
  fill(dir);
  {
    Store s = Store::open(dir, Store::Mode::Write);
    s.begin();
    const std::vector<ChunkInput> c = {chunk("lost", basis(4))};
    s.add_document(meta("lost.txt"), c);
    EXPECT_TRUE(s.delete_document("debian.txt"));
    // destroyed without commit(), as a crash would leave it
  }
  Store s = Store::open(dir, Store::Mode::Read);
  EXPECT_FALSE(s.find_document("lost.txt").has_value());
  EXPECT_TRUE(s.find_document("debian.txt").has_value());
  EXPECT_EQ(s.stats().chunks, 4);
}

TEST(Store, DeleteAndReplaceRemoveOldChunksEverywhere) {
  TempDir t;
  const std::string dir = t.file("db");
  Store::create(dir, config());
  fill(dir);
  {
    Store s = Store::open(dir, Store::Mode::Write);
    s.begin();
    EXPECT_TRUE(s.delete_document("debian.txt"));
    EXPECT_FALSE(s.delete_document("debian.txt"));
    const auto py = s.find_document("python.txt");
    ASSERT_TRUE(py.has_value());
    EXPECT_TRUE(s.delete_document(std::to_string(py->id))) << "by numeric id";
    // Replace the Korean document: same key, new chunk.
    const std::vector<ChunkInput> c = {chunk("새 문서입니다.", basis(6))};
    s.add_document(meta("korean.txt", "ko"), c);
    s.commit();
  }
  Store s = Store::open(dir, Store::Mode::Read);
  EXPECT_EQ(s.documents().size(), 1u);
  EXPECT_TRUE(s.bm25_search("apt", 5, nullptr).empty()) << "deleted chunks left FTS";
  const auto hits = s.dense_search(basis(0), 5, nullptr);
  ASSERT_EQ(hits.size(), 1u) << "deleted chunks must not come back from the ANN index";
  EXPECT_EQ(s.chunks(std::vector<int64_t>{hits[0].label})[0].text, "새 문서입니다.");
  // 4 of 5 rows were dead (> 25%): the writer rebuilt the ANN index.
  const StoreStats st = s.stats();
  EXPECT_EQ(st.ann_rows, 1);
  EXPECT_EQ(st.ann_dead, 0);
}

TEST(Store, DeadRowsLeftInTheAnnAreNeverReturned) {
  // One document of ten deleted: 10% dead rows, under the rebuild threshold, so the ANN file
  // keeps them and the search must skip them (and "no dead row" must not be assumed).
  TempDir t;
  const std::string dir = t.file("db");
  RandomUnit random_unit(11);
  const auto vectors = random_index(dir, random_unit, 10, 10, [](int) { return "en"; });
  const std::vector<std::vector<float>> first_doc(vectors.begin(), vectors.begin() + 10);
  {
    Store s = Store::open(dir, Store::Mode::Read);
    EXPECT_EQ(s.dense_search(first_doc[0], 100, nullptr).size(), 100u);
    EXPECT_EQ(s.stats().ann_dead, 0);
  }
  {
    Store s = Store::open(dir, Store::Mode::Write);
    s.begin();
    ASSERT_TRUE(s.delete_document("doc0"));
    s.commit();
  }
  Store s = Store::open(dir, Store::Mode::Read);
  const StoreStats st = s.stats();
  EXPECT_EQ(st.ann_rows, 100) << "10% dead rows must not trigger a rebuild";
  EXPECT_EQ(st.ann_dead, 10);
  EXPECT_EQ(st.ann_behind, 0);
  const auto live = s.filter({});
  ASSERT_EQ(live.size(), 90u);
  for (const auto& v : first_doc) {
    const auto hits = s.dense_search(v, 5, nullptr);
    ASSERT_EQ(hits.size(), 5u);
    for (const auto& h : hits)
      EXPECT_TRUE(std::binary_search(live.begin(), live.end(), h.label))
          << "deleted chunk " << h.label << " came back";
  }
  EXPECT_EQ(s.dense_search(first_doc[0], 100, nullptr).size(), 90u);
}

TEST(Store, AnnFileBehindMissingOrCorruptStillGivesEverything) {
  TempDir t;
  const std::string dir = t.file("db");
  Store::create(dir, config());
  fill(dir);
  const std::string ann = store_ann_path(dir);
  std::filesystem::copy_file(ann, t.file("old.ann"));
  {
    Store s = Store::open(dir, Store::Mode::Write);
    s.begin();
    const std::vector<ChunkInput> c = {chunk("new text about sorting", basis(5, 0.0f))};
    s.add_document(meta("new.txt"), c);
    s.commit();
  }
  // A crash between the commit and the ANN write leaves the old ANN file.
  std::filesystem::copy_file(t.file("old.ann"), ann,
                             std::filesystem::copy_options::overwrite_existing);
  {
    Store s = Store::open(dir, Store::Mode::Read);
    const StoreStats st = s.stats();
    EXPECT_EQ(st.ann_behind, 1);
    const auto hits = s.dense_search(basis(5, 0.0f), 1, nullptr);
    ASSERT_EQ(hits.size(), 1u);
    EXPECT_EQ(s.chunks(std::vector<int64_t>{hits[0].label})[0].doc_key, "new.txt");
  }
  // Corrupt: readers search exactly and say why; the next write rebuilds it.
  {
    std::ofstream f(ann, std::ios::binary | std::ios::trunc);
    f << "garbage";
  }
  {
    Store s = Store::open(dir, Store::Mode::Read);
    const StoreStats st = s.stats();
    EXPECT_TRUE(st.ann_missing);
    EXPECT_FALSE(st.ann_error.empty());
    const auto hits = s.dense_search(basis(5, 0.0f), 1, nullptr);
    ASSERT_EQ(hits.size(), 1u);
    EXPECT_EQ(s.chunks(std::vector<int64_t>{hits[0].label})[0].doc_key, "new.txt");
  }
  {
    Store s = Store::open(dir, Store::Mode::Write);
    s.rebuild_ann();
  }
  Store s = Store::open(dir, Store::Mode::Read);
  const StoreStats st = s.stats();
  EXPECT_FALSE(st.ann_missing) << st.ann_error;
  EXPECT_EQ(st.ann_rows, 5);
  EXPECT_EQ(st.ann_behind, 0);
}

TEST(Store, RejectsVectorsOfTheWrongSizeOrNotFinite) {
  TempDir t;
  const std::string dir = t.file("db");
  Store::create(dir, config());
  Store s = Store::open(dir, Store::Mode::Write);
  s.begin();
  const std::vector<ChunkInput> small = {chunk("x", std::vector<float>(3, 0.5f))};
  EXPECT_NE(error_of([&] { s.add_document(meta("a"), small); }).find("3-dim vector"),
            std::string::npos);
  std::vector<float> v = basis(0);
  v[2] = NAN;
  const std::vector<ChunkInput> nan = {chunk("x", v)};
  EXPECT_NE(error_of([&] { s.add_document(meta("b"), nan); }).find("non-finite"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              s.dense_search(std::vector<float>(3), 1, nullptr);
            }).find("query vector has 3 values"),
            std::string::npos);
}

TEST(Store, MmrRerankingSkipsNearDuplicates) {
  TempDir t;
  const std::string dir = t.file("db");
  Store::create(dir, config());
  {
    Store s = Store::open(dir, Store::Mode::Write);
    s.begin();
    // Three near-copies along axis 0 and one chunk a little further away along axis 0/1.
    const std::vector<ChunkInput> c = {
        chunk("copy one", basis(0, 0.01f)), chunk("copy two", basis(0, 0.02f)),
        chunk("copy three", basis(0, 0.03f)), chunk("other", unit({1.0f, 1.0f, 0, 0, 0, 0, 0, 0}))};
    s.add_document(meta("d"), c);
    s.commit();
  }
  Store s = Store::open(dir, Store::Mode::Read);
  SearchOptions o;
  o.mode = SearchMode::Dense;
  o.k = 2;
  const auto plain = search(s, "", basis(0, 0.0f), o);
  ASSERT_EQ(plain.size(), 2u);
  EXPECT_EQ(plain[0].chunk.text, "copy one");
  EXPECT_EQ(plain[1].chunk.text, "copy two");
  o.mmr = true;
  // Every candidate's redundancy with "copy one" is about its relevance, so novelty must weigh
  // more than relevance for the far chunk to win: 0.3 * 0.71 - 0.7 * 0.71 > 0.3 - 0.7.
  o.mmr_lambda = 0.3;
  const auto mmr = search(s, "", basis(0, 0.0f), o);
  ASSERT_EQ(mmr.size(), 2u);
  EXPECT_EQ(mmr[0].chunk.text, "copy one");
  EXPECT_EQ(mmr[1].chunk.text, "other") << "MMR should prefer the novel chunk";
  o.mmr_lambda = 1.0;  // relevance only: the plain order
  EXPECT_EQ(search(s, "", basis(0, 0.0f), o)[1].chunk.text, "copy two");
}

TEST(Store, QueriesInALanguageTheEmbedderLacksAreRankedByBm25) {
  TempDir t;
  const std::string dir = t.file("db");
  StoreConfig c = config();
  c.embedder_languages = {"en"};
  Store::create(dir, c);
  fill(dir);
  Store s = Store::open(dir, Store::Mode::Read);
  EXPECT_EQ(s.config().embedder_languages, std::vector<std::string>{"en"});
  SearchOptions o;
  EXPECT_EQ(effective_dense_weight(s, "How do I install a package?", o), 1.0);
  EXPECT_EQ(effective_dense_weight(s, "패키지는 어떻게 설치하나요?", o), 0.0);
  o.dense_weight = 0.5;
  EXPECT_EQ(effective_dense_weight(s, "패키지는 어떻게 설치하나요?", o), 0.5);
  // Weight 0: the hybrid order is BM25's, whatever the vector says.
  o.dense_weight = -1;
  o.k = 1;
  const auto hits = search(s, "패키지", basis(2), o);
  ASSERT_EQ(hits.size(), 1u);
  EXPECT_EQ(hits[0].chunk.doc_key, "korean.txt");
  EXPECT_EQ(hits[0].bm25_rank, 1);
}

TEST(Store, AReadSnapshotDoesNotSeeALaterCommit) {
  TempDir t;
  const std::string dir = t.file("db");
  Store::create(dir, config());
  fill(dir);
  Store reader = Store::open(dir, Store::Mode::Read);
  {
    const Store::ReadSnapshot snapshot(reader);
    EXPECT_EQ(reader.filter({}).size(), 4u);
    {
      Store writer = Store::open(dir, Store::Mode::Write);
      writer.begin();
      const std::vector<ChunkInput> c = {chunk("late", basis(7))};
      writer.add_document(meta("late.txt"), c);
      writer.commit();
    }
    EXPECT_EQ(reader.filter({}).size(), 4u) << "the snapshot moved";
    EXPECT_FALSE(reader.find_document("late.txt").has_value());
  }
  EXPECT_EQ(reader.filter({}).size(), 5u);
}
