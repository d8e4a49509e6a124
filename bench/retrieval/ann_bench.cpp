// ANN benchmark for retrieval::AnnIndex (FAISS 1.7.3 HNSW, inner product): build time, peak RSS,
// index size, and recall@k against exact_search with queries/s at several efSearch, queries
// one at a time on one thread. Vectors come from .fvecs files (SIFT format: per vector an int32
// dim, then dim float32) or are Gaussian (--random); all are scaled to unit length. Prints a
// table and one JSON line per measurement (bench/retrieval/run_ann.sh pairs them with
// ann_peer.py's). --parallel-build times FAISS's own build on one thread and on all of them: the
// price of AnnIndex building on one OpenMP thread for determinism.
// Not here: filtered search, serialisation speed.
#include <faiss/IndexHNSW.h>
#include <omp.h>
#include <sys/resource.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "llmkit/core/error.h"
#include "llmkit/core/random.h"
#include "llmkit/retrieval/ann.h"

namespace {

using llmkit::retrieval::AnnHit;
using llmkit::retrieval::AnnIndex;
using llmkit::retrieval::AnnOptions;
using Clock = std::chrono::steady_clock;

struct Vectors {
  int64_t n = 0, dim = 0;
  std::vector<float> data;  // [n, dim]
};

// Reads a .fvecs file: every record an int32 dim (the same for all) and dim float32.
Vectors read_fvecs(const std::string& path, int64_t limit) {
  std::ifstream in(path, std::ios::binary);
  LLMKIT_CHECK(in, "ann_bench: cannot open ", path);
  Vectors v;
  int32_t dim = 0;
  while ((limit <= 0 || v.n < limit) && in.read(reinterpret_cast<char*>(&dim), sizeof dim)) {
    LLMKIT_CHECK(dim > 0 && (v.dim == 0 || dim == v.dim), path, ": record ", v.n, " has dim ", dim,
                 (v.dim ? ", earlier ones " + std::to_string(v.dim) : std::string()));
    v.dim = dim;
    v.data.resize((v.n + 1) * dim);
    in.read(reinterpret_cast<char*>(v.data.data() + v.n * dim), dim * sizeof(float));
    LLMKIT_CHECK(in, path, ": truncated in record ", v.n);
    ++v.n;
  }
  LLMKIT_CHECK(v.n > 0, path, ": no vectors");
  return v;
}

Vectors gaussian(int64_t n, int64_t dim, uint64_t seed) {
  Vectors v{.n = n, .dim = dim, .data = std::vector<float>(n * dim)};
  for (int64_t i = 0; i < n * dim; ++i) v.data[i] = llmkit::normal_at(seed, i);
  return v;
}

void normalise_rows(Vectors& v) {
  for (int64_t r = 0; r < v.n; ++r) {
    float* x = v.data.data() + r * v.dim;
    double norm2 = 0;
    for (int64_t j = 0; j < v.dim; ++j) norm2 += double{x[j]} * x[j];
    const double norm = norm2 > 0 ? std::sqrt(norm2) : 1.0;
    for (int64_t j = 0; j < v.dim; ++j) x[j] = static_cast<float>(x[j] / norm);
  }
}

double peak_rss_mb() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_maxrss / 1024.0;  // Linux reports KiB
}

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

std::span<const float> row(const Vectors& v, int64_t r) {
  return std::span<const float>(v.data).subspan(r * v.dim, v.dim);
}

// Share of each exact top-k found by the approximate one, averaged over queries.
double recall(const std::vector<std::vector<AnnHit>>& approx,
              const std::vector<std::vector<AnnHit>>& exact) {
  double sum = 0;
  for (size_t q = 0; q < exact.size(); ++q) {
    std::set<int64_t> found;
    for (const AnnHit& h : approx[q]) found.insert(h.label);
    int hit = 0;
    for (const AnnHit& h : exact[q]) hit += found.contains(h.label);
    sum += exact[q].empty() ? 1.0 : static_cast<double>(hit) / exact[q].size();
  }
  return sum / exact.size();
}

// One result as a JSON line, prefixed "JSON " so run_ann.sh can pick it out of the table.
void json_line(nlohmann::json j) {
  j["impl"] = "llmkit";
  std::printf("JSON %s\n", j.dump().c_str());
}

}  // namespace

int main(int argc, char** argv) try {
  CLI::App app{"ANN benchmark: llmkit AnnIndex (FAISS HNSW) recall and queries/s"};
  std::string base_path, query_path, name;
  int64_t random_n = 0, dim = 128, n_query = 1000, limit = 0, k = 10;
  int m = 32, ef_construction = 128;
  uint64_t seed = 1;
  std::vector<int> ef_list = {16, 32, 64, 128, 256};
  int64_t parallel_rows = 0;
  app.add_option("--base", base_path, "base vectors (.fvecs)");
  app.add_option("--query", query_path, "query vectors (.fvecs)");
  app.add_option("--limit", limit, "read at most this many base vectors (0: all)");
  app.add_option("--random", random_n, "instead of files: this many Gaussian base vectors");
  app.add_option("--dim", dim, "dimension of --random vectors");
  app.add_option("--queries", n_query, "number of --random queries");
  app.add_option("--seed", seed, "seed of --random vectors");
  app.add_option("--m", m, "HNSW M");
  app.add_option("--ef-construction", ef_construction, "HNSW efConstruction");
  app.add_option("--ef", ef_list, "efSearch values")->delimiter(',');
  app.add_option("-k", k, "neighbours per query");
  app.add_option("--name", name, "dataset name in the output");
  app.add_option("--parallel-build", parallel_rows,
                 "also time FAISS's own build of this many rows on 1 and on all threads");
  CLI11_PARSE(app, argc, argv);
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // lines appear as measured, also through a pipe

  Vectors base, queries;
  if (random_n > 0) {
    base = gaussian(random_n, dim, seed);
    queries = gaussian(n_query, dim, seed + 1);
    if (name.empty()) name = "random";
  } else {
    LLMKIT_CHECK(!base_path.empty() && !query_path.empty(),
                 "ann_bench: give --base and --query, or --random N");
    base = read_fvecs(base_path, limit);
    queries = read_fvecs(query_path, 0);
    LLMKIT_CHECK(base.dim == queries.dim, "ann_bench: base dim ", base.dim, ", query dim ",
                 queries.dim);
    if (name.empty()) name = base_path;
  }
  normalise_rows(base);
  normalise_rows(queries);
  std::vector<int64_t> labels(base.n);
  for (int64_t i = 0; i < base.n; ++i) labels[i] = i;
  const double rss_data_mb = peak_rss_mb();

  AnnIndex index(base.dim, AnnOptions{.m = m, .ef_construction = ef_construction});
  const auto t_build = Clock::now();
  index.add(base.data, labels);
  const double build_s = seconds_since(t_build);
  const double rss_build_mb = peak_rss_mb();
  const double index_mb = index.serialize().size() / 1048576.0;

  std::vector<std::vector<AnnHit>> exact(queries.n);
  const auto t_exact = Clock::now();
  for (int64_t q = 0; q < queries.n; ++q) {
    exact[q] = llmkit::retrieval::exact_search(base.data, labels, row(queries, q), k);
  }
  const double exact_qps = queries.n / seconds_since(t_exact);

  std::printf(
      "llmkit AnnIndex (FAISS 1.7.3 Debian, HNSW M %d, efC %d), %s: %lld x %lld, %lld "
      "queries, k %lld\n",
      m, ef_construction, name.c_str(), static_cast<long long>(base.n),
      static_cast<long long>(base.dim), static_cast<long long>(queries.n),
      static_cast<long long>(k));
  std::printf(
      "build %.2f s (1 thread), peak RSS %.0f MB (%.0f MB before the build), index %.1f MB"
      "; exact search %.1f queries/s\n",
      build_s, rss_build_mb, rss_data_mb, index_mb, exact_qps);
  json_line({{"what", "build"},
             {"dataset", name},
             {"n", base.n},
             {"dim", base.dim},
             {"queries", queries.n},
             {"m", m},
             {"ef_construction", ef_construction},
             {"build_s", build_s},
             {"build_threads", 1},
             {"peak_rss_mb", rss_build_mb},
             {"rss_before_build_mb", rss_data_mb},
             {"index_mb", index_mb},
             {"exact_qps", exact_qps}});

  if (parallel_rows > 0) {
    // The price of building on one thread: FAISS's own IndexHNSWFlat (Debian's distance code,
    // not AnnIndex's) on the first rows, built on one thread and then OpenMP-parallel as FAISS
    // does by default (whose graph then depends on thread timing).
    const int64_t n = std::min(parallel_rows, base.n);
    double seconds[2] = {0, 0};
    const int threads[2] = {1, omp_get_max_threads()};
    for (int t = 0; t < 2; ++t) {
      const int saved = omp_get_max_threads();
      omp_set_num_threads(threads[t]);
      faiss::IndexHNSWFlat raw(static_cast<int>(base.dim), m, faiss::METRIC_INNER_PRODUCT);
      raw.hnsw.efConstruction = ef_construction;
      const auto t0 = Clock::now();
      raw.add(n, base.data.data());
      seconds[t] = seconds_since(t0);
      omp_set_num_threads(saved);
    }
    std::printf(
        "FAISS (Debian) build of %lld rows: %.2f s on 1 thread, %.2f s on %d threads "
        "(1 thread takes %.2fx)\n",
        static_cast<long long>(n), seconds[0], seconds[1], threads[1], seconds[0] / seconds[1]);
    json_line({{"what", "parallel_build"},
               {"dataset", name},
               {"rows", n},
               {"build_s_1_thread", seconds[0]},
               {"build_s_parallel", seconds[1]},
               {"parallel_threads", threads[1]}});
  }

  std::printf("%8s %10s %12s %12s\n", "efSearch", ("recall@" + std::to_string(k)).c_str(),
              "queries/s", "us/query");
  for (int ef : ef_list) {
    index.set_ef_search(ef);
    std::vector<std::vector<AnnHit>> found(queries.n);
    const auto t0 = Clock::now();
    for (int64_t q = 0; q < queries.n; ++q) found[q] = index.search(row(queries, q), k);
    const double s = seconds_since(t0);
    const double r = recall(found, exact);
    std::printf("%8d %10.4f %12.1f %12.1f\n", ef, r, queries.n / s, 1e6 * s / queries.n);
    json_line({{"what", "search"},
               {"dataset", name},
               {"k", k},
               {"ef_search", ef},
               {"recall", r},
               {"qps", queries.n / s}});
  }
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "ann_bench: %s\n", e.what());
  return 1;
}
