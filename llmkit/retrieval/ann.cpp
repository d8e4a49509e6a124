// AnnIndex on FAISS 1.7.3's IndexHNSWFlat (inner product) plus exact_search, the reference.
// Rows are FAISS's ids 0..rows-1; our labels live in Impl::labels (IndexIDMap would do that
// mapping but refuses SearchParameters, so its searches could not take a selector). A filter
// reaches the graph search as an IDSelector that maps row -> label -> LabelFilter. Distances come
// from llmkit's own inner product (FastFlatIP below), not from Debian's baseline-x86 FAISS build.
// Determinism: FAISS inserts the vectors of one add() OpenMP-parallel, and the graph then depends
// on which thread links which node first; add() therefore runs FAISS with one OpenMP thread, so
// the same vectors added in the same batches give the same graph and the same bytes, bit for bit.
// Not here: the file (store.h writes the bytes atomically), chunking, hybrid search.
#include "llmkit/retrieval/ann.h"

#include <faiss/IndexFlat.h>
#include <faiss/IndexHNSW.h>
#include <faiss/impl/DistanceComputer.h>
#include <faiss/impl/IDSelector.h>
#include <faiss/impl/io.h>
#include <faiss/index_io.h>
#include <faiss/utils/random.h>
#include <omp.h>
#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <exception>
#include <limits>
#include <unordered_set>

#include "llmkit/core/error.h"

namespace llmkit::retrieval {

namespace {

using FaissId = faiss::Index::idx_t;

constexpr char kMagic[8] = {'L', 'L', 'M', 'K', 'A', 'N', 'N', '1'};
// magic, dim, generation, rows, FAISS byte count; then labels, FAISS bytes, CRC-32.
constexpr size_t kHeaderBytes = sizeof(kMagic) + 4 * sizeof(int64_t);
constexpr size_t kCrcBytes = 4;
// FAISS draws each node's HNSW level from hnsw.rng, seeded 12345 at construction and not saved
// with the index. Reseeding it from the row count before every add() makes the levels of added
// rows the same whether or not the index was serialised in between (the first add matches FAISS's
// own default).
constexpr int64_t kLevelSeed = 12345;

// Sets OpenMP's thread count for this thread's parallel regions until the scope ends.
class OmpThreads {
 public:
  explicit OmpThreads(int n) : saved_(omp_get_max_threads()) { omp_set_num_threads(n); }
  ~OmpThreads() { omp_set_num_threads(saved_); }
  OmpThreads(const OmpThreads&) = delete;
  OmpThreads& operator=(const OmpThreads&) = delete;

 private:
  int saved_;
};

// The rows whose label passes `filter`: what FAISS's graph search may return. It runs inside an
// OpenMP region, which an exception must not leave: the first one is kept (that row counts as
// failing) and rethrown by the caller after the search.
struct LabelSelector final : faiss::IDSelector {
  LabelSelector(const std::vector<int64_t>& labels, const LabelFilter& filter)
      : labels(labels), filter(filter) {}
  bool is_member(idx_t row) const override {
    if (error) return false;
    try {
      return filter(labels[row]);
    } catch (...) {
      error = std::current_exception();
      return false;
    }
  }
  const std::vector<int64_t>& labels;
  const LabelFilter& filter;
  mutable std::exception_ptr error;  // one query, one thread: no race
};

// The inner product every score comes from (graph search, build, exact_search). Debian builds
// FAISS for baseline x86-64, and its fvec_inner_product ran at 1.5 GMAC/s here against 11 for
// this loop: 16 independent partial sums that the compiler maps onto the SIMD registers of
// -march=native (one running sum is a dependency chain it may not reorder). The sums are added
// in a fixed order, so a score is the same float for the same binary and input.
float dot(const float* a, const float* b, size_t d) {
  constexpr size_t kLanes = 16;
  float acc[kLanes] = {};
  size_t j = 0;
  for (; j + kLanes <= d; j += kLanes) {
    for (size_t l = 0; l < kLanes; ++l) acc[l] += a[j + l] * b[j + l];
  }
  float sum = 0;
  for (size_t l = 0; l < kLanes; ++l) sum += acc[l];
  for (; j < d; ++j) sum += a[j] * b[j];
  return sum;
}

// FAISS's flat inner-product storage with `dot` as its distance: IndexHNSW computes every
// distance through its storage's DistanceComputer. It serialises as a plain IndexFlatIP (the
// vectors are the same bytes), and use_fast_storage() swaps it back in after reading.
struct FastFlatIP final : faiss::IndexFlatIP {
  explicit FastFlatIP(int64_t d) : faiss::IndexFlatIP(d) {}

  struct Distance final : faiss::FlatCodesDistanceComputer {
    Distance(const FastFlatIP& storage)
        : faiss::FlatCodesDistanceComputer(storage.codes.data(), storage.code_size), d(storage.d) {}
    void set_query(const float* x) override { query = x; }
    float distance_to_code(const uint8_t* code) override {
      return dot(query, reinterpret_cast<const float*>(code), d);
    }
    float symmetric_dis(idx_t i, idx_t j) override {
      return dot(reinterpret_cast<const float*>(codes + i * code_size),
                 reinterpret_cast<const float*>(codes + j * code_size), d);
    }
    size_t d;
    const float* query = nullptr;
  };
  faiss::FlatCodesDistanceComputer* get_FlatCodesDistanceComputer() const override {
    return new Distance(*this);
  }
};

// Moves the vectors of `hnsw`'s flat inner-product storage into a FastFlatIP that replaces it.
void use_fast_storage(faiss::IndexHNSW& hnsw) {
  auto* flat = dynamic_cast<faiss::IndexFlat*>(hnsw.storage);
  LLMKIT_CHECK(flat != nullptr && flat->metric_type == faiss::METRIC_INNER_PRODUCT,
               "AnnIndex: FAISS HNSW storage is not a flat inner-product index");
  auto fast = std::make_unique<FastFlatIP>(flat->d);
  fast->codes = std::move(flat->codes);
  fast->ntotal = flat->ntotal;
  if (hnsw.own_fields) delete flat;
  hnsw.storage = fast.release();
  hnsw.own_fields = true;
}

bool all_finite(std::span<const float> x) {
  return std::all_of(x.begin(), x.end(), [](float v) { return std::isfinite(v); });
}

// Best first; equal scores: smaller label first (so results do not depend on row order).
bool better(const AnnHit& a, const AnnHit& b) {
  return a.score != b.score ? a.score > b.score : a.label < b.label;
}

void put_i64(std::string& out, int64_t v) {
  const auto u = static_cast<uint64_t>(v);
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((u >> (8 * i)) & 0xff));
}

int64_t get_i64(std::string_view in, size_t at) {
  uint64_t u = 0;
  for (int i = 0; i < 8; ++i) u |= uint64_t{static_cast<uint8_t>(in[at + i])} << (8 * i);
  return static_cast<int64_t>(u);
}

uint32_t crc32_of(std::string_view bytes) {
  // zlib's crc32 takes a uInt length: feed it in pieces so any size works.
  uLong crc = crc32(0L, Z_NULL, 0);
  for (size_t at = 0; at < bytes.size();) {
    const size_t n = std::min<size_t>(bytes.size() - at, 1u << 30);
    crc = crc32(crc, reinterpret_cast<const Bytef*>(bytes.data() + at), static_cast<uInt>(n));
    at += n;
  }
  return static_cast<uint32_t>(crc);
}

}  // namespace

struct AnnIndex::Impl {
  int64_t dim = 0;
  AnnOptions options;
  int64_t generation = 0;
  std::vector<int64_t> labels;             // row -> label
  std::unordered_set<int64_t> label_set;   // the same labels, to refuse a repeated one
  std::unique_ptr<faiss::IndexHNSW> hnsw;  // an IndexHNSWFlat, or one read back as such
};

AnnIndex::AnnIndex(int64_t dim, const AnnOptions& options) : impl_(std::make_unique<Impl>()) {
  LLMKIT_CHECK(dim > 0 && dim <= (int64_t{1} << 20), "AnnIndex: dim must be in [1, 2^20], got ",
               dim);
  LLMKIT_CHECK(options.m >= 2 && options.m <= 1024, "AnnIndex: m must be in [2, 1024], got ",
               options.m);
  LLMKIT_CHECK(options.ef_construction >= 1, "AnnIndex: ef_construction must be >= 1, got ",
               options.ef_construction);
  LLMKIT_CHECK(options.ef_search >= 1, "AnnIndex: ef_search must be >= 1, got ", options.ef_search);
  impl_->dim = dim;
  impl_->options = options;
  impl_->hnsw = std::make_unique<faiss::IndexHNSWFlat>(static_cast<int>(dim), options.m,
                                                       faiss::METRIC_INNER_PRODUCT);
  use_fast_storage(*impl_->hnsw);
  impl_->hnsw->hnsw.efConstruction = options.ef_construction;
  impl_->hnsw->hnsw.efSearch = options.ef_search;
}

AnnIndex::~AnnIndex() = default;
AnnIndex::AnnIndex(AnnIndex&&) noexcept = default;
AnnIndex& AnnIndex::operator=(AnnIndex&&) noexcept = default;

int64_t AnnIndex::dim() const {
  return impl_->dim;
}
int64_t AnnIndex::rows() const {
  return static_cast<int64_t>(impl_->labels.size());
}
const std::vector<int64_t>& AnnIndex::labels() const {
  return impl_->labels;
}
int64_t AnnIndex::generation() const {
  return impl_->generation;
}
void AnnIndex::set_generation(int64_t g) {
  impl_->generation = g;
}

void AnnIndex::set_ef_search(int ef) {
  LLMKIT_CHECK(ef >= 1, "AnnIndex::set_ef_search: ef must be >= 1, got ", ef);
  impl_->options.ef_search = ef;
  impl_->hnsw->hnsw.efSearch = ef;
}

void AnnIndex::add(std::span<const float> vectors, std::span<const int64_t> labels) {
  Impl& s = *impl_;
  const auto n = static_cast<int64_t>(labels.size());
  LLMKIT_CHECK(static_cast<int64_t>(vectors.size()) == n * s.dim, "AnnIndex::add: ", n,
               " labels need ", n * s.dim, " floats (dim ", s.dim, "), got ", vectors.size());
  LLMKIT_CHECK(rows() + n <= std::numeric_limits<int32_t>::max(),
               "AnnIndex::add: FAISS's HNSW holds at most 2^31-1 rows");
  LLMKIT_CHECK(all_finite(vectors), "AnnIndex::add: vectors must be finite (NaN or inf found)");
  std::unordered_set<int64_t> batch;
  for (int64_t label : labels) {
    LLMKIT_CHECK(!s.label_set.contains(label) && batch.insert(label).second,
                 "AnnIndex::add: label ", label, " is already in the index");
  }
  if (n == 0) return;
  s.hnsw->hnsw.rng = faiss::RandomGenerator(kLevelSeed + rows());
  {
    const OmpThreads one_thread(1);  // see the header comment: same input, same graph
    s.hnsw->add(n, vectors.data());
  }
  s.labels.insert(s.labels.end(), labels.begin(), labels.end());
  s.label_set.insert(labels.begin(), labels.end());
}

std::vector<AnnHit> AnnIndex::search(std::span<const float> query, int64_t k,
                                     const LabelFilter& filter) const {
  const Impl& s = *impl_;
  LLMKIT_CHECK(static_cast<int64_t>(query.size()) == s.dim, "AnnIndex::search: query has ",
               query.size(), " values, the index has dim ", s.dim);
  LLMKIT_CHECK(all_finite(query), "AnnIndex::search: the query must be finite (NaN or inf found)");
  LLMKIT_CHECK(k >= 0, "AnnIndex::search: k must be >= 0, got ", k);
  k = std::min(k, rows());
  if (k == 0) return {};

  faiss::SearchParametersHNSW params;
  params.efSearch = std::max<int>(s.options.ef_search, static_cast<int>(k));
  LabelSelector selector(s.labels, filter);  // FAISS 1.7.3 takes a non-const IDSelector*
  if (filter) params.sel = &selector;
  std::vector<float> scores(k);
  std::vector<FaissId> rows_found(k);
  {
    // One query: a parallel region would only give each idle thread a visited table to clear.
    const OmpThreads one_thread(1);
    s.hnsw->search(1, query.data(), k, scores.data(), rows_found.data(), &params);
  }
  if (selector.error) std::rethrow_exception(selector.error);
  std::vector<AnnHit> hits;
  for (int64_t i = 0; i < k; ++i) {
    if (rows_found[i] < 0) continue;  // fewer than k rows passed the filter
    hits.push_back({.label = s.labels[rows_found[i]], .score = scores[i]});
  }
  std::sort(hits.begin(), hits.end(), better);
  return hits;
}

std::string AnnIndex::serialize() const {
  const Impl& s = *impl_;
  faiss::VectorIOWriter writer;
  faiss::write_index(s.hnsw.get(), &writer);

  std::string out(kMagic, sizeof(kMagic));
  out.reserve(kHeaderBytes + s.labels.size() * 8 + writer.data.size() + kCrcBytes);
  put_i64(out, s.dim);
  put_i64(out, s.generation);
  put_i64(out, rows());
  put_i64(out, static_cast<int64_t>(writer.data.size()));
  for (int64_t label : s.labels) put_i64(out, label);
  out.append(reinterpret_cast<const char*>(writer.data.data()), writer.data.size());
  const uint32_t crc = crc32_of(out);
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((crc >> (8 * i)) & 0xff));
  return out;
}

AnnIndex AnnIndex::deserialize(std::string_view bytes, std::string_view name) {
  LLMKIT_CHECK(
      bytes.size() >= sizeof(kMagic) && std::memcmp(bytes.data(), kMagic, sizeof(kMagic)) == 0,
      name, ": not an llmkit ANN index (bad magic)");
  LLMKIT_CHECK(bytes.size() >= kHeaderBytes + kCrcBytes, name, ": truncated (", bytes.size(),
               " bytes, the header alone needs ", kHeaderBytes + kCrcBytes, ")");
  const int64_t dim = get_i64(bytes, 8), generation = get_i64(bytes, 16);
  const int64_t rows = get_i64(bytes, 24), faiss_bytes = get_i64(bytes, 32);
  LLMKIT_CHECK(rows >= 0 && faiss_bytes >= 0 && rows <= (int64_t{1} << 40) &&
                   faiss_bytes <= (int64_t{1} << 50),
               name, ": corrupt header (rows ", rows, ", FAISS bytes ", faiss_bytes, ")");
  const size_t expected =
      kHeaderBytes + 8 * static_cast<size_t>(rows) + static_cast<size_t>(faiss_bytes) + kCrcBytes;
  LLMKIT_CHECK(bytes.size() >= expected, name, ": truncated (", bytes.size(), " bytes, expected ",
               expected, ")");
  LLMKIT_CHECK(bytes.size() == expected, name, ": ", bytes.size() - expected,
               " unexpected bytes after the index");
  const std::string_view body = bytes.substr(0, expected - kCrcBytes);
  uint32_t stored_crc = 0;
  for (int i = 0; i < 4; ++i)
    stored_crc |= uint32_t{static_cast<uint8_t>(bytes[body.size() + i])} << (8 * i);
  LLMKIT_CHECK(crc32_of(body) == stored_crc, name, ": CRC-32 mismatch (the file is corrupted)");

  faiss::VectorIOReader reader;
  const size_t faiss_at = kHeaderBytes + 8 * static_cast<size_t>(rows);
  reader.data.assign(bytes.begin() + faiss_at, bytes.begin() + faiss_at + faiss_bytes);
  std::unique_ptr<faiss::Index> read;
  try {
    read.reset(faiss::read_index(&reader));
  } catch (const std::exception& e) {
    fail(name, ": FAISS cannot read the index: ", e.what());
  }
  auto* hnsw = dynamic_cast<faiss::IndexHNSWFlat*>(read.get());
  LLMKIT_CHECK(hnsw != nullptr && hnsw->metric_type == faiss::METRIC_INNER_PRODUCT, name,
               ": the FAISS index is not an inner-product IndexHNSWFlat");
  LLMKIT_CHECK(hnsw->d == dim && hnsw->ntotal == rows, name, ": FAISS index has dim ", hnsw->d,
               " and ", hnsw->ntotal, " rows, the header says ", dim, " and ", rows);
  LLMKIT_CHECK(reader.rp == reader.data.size(), name, ": FAISS left ",
               reader.data.size() - reader.rp, " of its bytes unread");

  AnnOptions options;
  options.m = static_cast<int>(hnsw->hnsw.nb_neighbors(1));  // level 0 holds 2m, upper ones m
  options.ef_construction = hnsw->hnsw.efConstruction;
  options.ef_search = hnsw->hnsw.efSearch;
  AnnIndex index(dim, options);
  Impl& s = *index.impl_;
  s.generation = generation;
  s.labels.resize(rows);
  for (int64_t r = 0; r < rows; ++r) s.labels[r] = get_i64(bytes, kHeaderBytes + 8 * r);
  s.label_set.insert(s.labels.begin(), s.labels.end());
  LLMKIT_CHECK(static_cast<int64_t>(s.label_set.size()) == rows, name,
               ": the label table repeats a label");
  read.release();
  s.hnsw.reset(hnsw);
  use_fast_storage(*s.hnsw);
  return index;
}

std::vector<AnnHit> exact_search(std::span<const float> vectors, std::span<const int64_t> labels,
                                 std::span<const float> query, int64_t k,
                                 const LabelFilter& filter) {
  const auto n = static_cast<int64_t>(labels.size());
  const auto dim = static_cast<int64_t>(query.size());
  LLMKIT_CHECK(dim > 0, "exact_search: empty query");
  LLMKIT_CHECK(static_cast<int64_t>(vectors.size()) == n * dim, "exact_search: ", n,
               " labels of dim ", dim, " need ", n * dim, " floats, got ", vectors.size());
  LLMKIT_CHECK(k >= 0, "exact_search: k must be >= 0, got ", k);
  LLMKIT_CHECK(all_finite(query), "exact_search: the query must be finite (NaN or inf found)");
  // The k best so far in a heap whose front is the worst of them: O(n log k), k entries held.
  std::vector<AnnHit> best;
  best.reserve(static_cast<size_t>(std::min<int64_t>(k, n)));
  for (int64_t r = 0; r < n && k > 0; ++r) {
    if (filter && !filter(labels[r])) continue;
    // The index's own inner product, so exact and HNSW scores of one row are the same float.
    const AnnHit hit{.label = labels[r], .score = dot(query.data(), vectors.data() + r * dim, dim)};
    // A NaN or inf in the row makes the score non-finite; checking the score costs nothing extra.
    LLMKIT_CHECK(std::isfinite(hit.score), "exact_search: row ", r, " (label ", labels[r],
                 ") has a non-finite inner product with the query (NaN or inf in the row?)");
    if (static_cast<int64_t>(best.size()) < k) {
      best.push_back(hit);
      std::push_heap(best.begin(), best.end(), better);
    } else if (better(hit, best.front())) {
      std::pop_heap(best.begin(), best.end(), better);
      best.back() = hit;
      std::push_heap(best.begin(), best.end(), better);
    }
  }
  std::sort(best.begin(), best.end(), better);
  return best;
}

}  // namespace llmkit::retrieval
