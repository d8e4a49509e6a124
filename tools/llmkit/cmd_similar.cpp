// `llmkit similar`: what sentence embeddings are used for, on a list of texts. Three modes:
//   --text T            the k candidates nearest to T by cosine: "rank<TAB>cosine<TAB>text"
//   --clusters K        spherical k-means (best of --restarts k-means++ seedings from --seed):
//                       each cluster, most central first
//   --outliers N        the N texts of lowest mean cosine to all the others
// --json prints one JSON object per line instead. Embedding is infer::embed_texts with the model's
// defaults; the scoring is infer/similar.h.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "llmkit/infer/embed.h"
#include "llmkit/infer/similar.h"
#include "tools/llmkit/command.h"

namespace {

struct Args {
  std::string model_dir, text, candidates_file;
  std::vector<std::string> candidates;
  int64_t k = 5, clusters = 0, outliers = 0, restarts = 10, max_len = 0, batch = 32;
  uint64_t seed = 0;
  bool json = false;
};

// One candidate per line; blank lines (and a trailing "\r") are dropped: a candidate list is a
// set of texts, not line-aligned output. "-" reads stdin.
std::vector<std::string> read_candidates(const std::string& path) {
  std::vector<std::string> lines;
  for (auto& line : llmkit::cli::read_lines(path, "similar: --candidates"))
    if (line.find_first_not_of(" \t") != std::string::npos) lines.push_back(std::move(line));
  LLMKIT_CHECK(!lines.empty(), "similar: --candidates '", path, "' has no non-blank line");
  return lines;
}

void print_ranked(const std::vector<llmkit::infer::ScoredIndex>& r,
                  const std::vector<std::string>& texts, const char* score_name, bool json) {
  for (size_t i = 0; i < r.size(); ++i) {
    const std::string& t = texts[r[i].index];
    if (json)
      std::puts(nlohmann::json{{"rank", i + 1}, {score_name, r[i].score}, {"text", t}}
                    .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)
                    .c_str());
    else
      std::printf("%zu\t%.4f\t%s\n", i + 1, r[i].score, t.c_str());
  }
}

// "cluster 1<TAB>3 texts<TAB>central: king" then "<TAB>cosine<TAB>text" per member (cosine to the
// cluster's mean direction, most central first); --json: one object per cluster.
void print_clusters(const llmkit::infer::Clustering& c, const std::vector<std::string>& texts,
                    bool json) {
  for (size_t k = 0; k < c.members.size(); ++k) {
    const auto& m = c.members[k];
    if (json) {
      nlohmann::json members = nlohmann::json::array();
      for (const auto& s : m) members.push_back({{"cosine", s.score}, {"text", texts[s.index]}});
      std::puts(nlohmann::json{{"cluster", k + 1},
                               {"size", m.size()},
                               {"central", texts[m[0].index]},
                               {"members", members}}
                    .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)
                    .c_str());
      continue;
    }
    std::printf("cluster %zu\t%zu text%s\tcentral: %s\n", k + 1, m.size(), m.size() == 1 ? "" : "s",
                texts[m[0].index].c_str());
    for (const auto& s : m) std::printf("\t%.4f\t%s\n", s.score, texts[s.index].c_str());
  }
}

}  // namespace

LLMKIT_COMMAND(
    {"similar",
     "Nearest texts by embedding cosine, k-means clusters or outliers of a list of texts",
     [](CLI::App& sub) {
       auto a = std::make_shared<Args>();
       sub.add_option("--model", a->model_dir,
                      "encoder model directory (e.g. all-MiniLM-L6-v2; see llmkit embed)")
           ->required();
       auto* text = sub.add_option("--text", a->text, "the query: rank the candidates against it");
       auto* file =
           sub.add_option("--candidates", a->candidates_file,
                          "candidate texts, one per line, blank lines skipped (- = stdin)");
       auto* cand = sub.add_option("--candidate", a->candidates, "a candidate text (repeatable)");
       file->excludes(cand);
       // Bounds are checked in the run, not by CLI11, for one "similar: ..." error line.
       sub.add_option("--k", a->k, "how many nearest candidates to print")->capture_default_str();
       auto* clusters = sub.add_option("--clusters", a->clusters,
                                       "group the candidates into K clusters (k-means on the "
                                       "unit vectors, k-means++ seeding)");
       auto* outliers = sub.add_option("--outliers", a->outliers,
                                       "the N candidates of lowest mean cosine to all the others");
       clusters->excludes(outliers);
       text->excludes(clusters)->excludes(outliers);
       sub.add_option("--seed", a->seed, "k-means++ seed (the same seed, the same clusters)")
           ->capture_default_str();
       sub.add_option("--restarts", a->restarts,
                      "k-means++ seedings tried; the clustering of highest mean cosine to its "
                      "centroids is kept")
           ->capture_default_str();
       sub.add_flag("--json", a->json, "one JSON object per line");
       sub.add_option("--max-length", a->max_len,
                      "tokens per text (default: the model's sentence-transformers max length)")
           ->check(CLI::Range(int64_t{2}, int64_t{1} << 30));
       sub.add_option("--batch-size", a->batch, "texts per forward pass")
           ->capture_default_str()
           ->check(CLI::Range(int64_t{1}, int64_t{1} << 20));
       return [a, text, file, clusters, outliers] {
         const bool nearest = clusters->count() == 0 && outliers->count() == 0;
         LLMKIT_CHECK(!nearest || text->count() > 0,
                      "similar: give --text (rank candidates against it), --clusters K or "
                      "--outliers N");
         LLMKIT_CHECK(!nearest || a->k >= 1, "similar: --k must be >= 1, got ", a->k);
         LLMKIT_CHECK(clusters->count() == 0 || a->clusters >= 1,
                      "similar: --clusters must be >= 1, got ", a->clusters);
         LLMKIT_CHECK(a->restarts >= 1, "similar: --restarts must be >= 1, got ", a->restarts);
         LLMKIT_CHECK(outliers->count() == 0 || a->outliers >= 1,
                      "similar: --outliers must be >= 1, got ", a->outliers);
         const std::vector<std::string> texts =
             file->count() > 0 ? read_candidates(a->candidates_file) : a->candidates;
         LLMKIT_CHECK(!texts.empty(),
                      "similar: no candidates (give --candidates FILE or "
                      "--candidate TEXT)");
         const auto n = static_cast<int64_t>(texts.size());
         LLMKIT_CHECK(a->clusters <= n, "similar: --clusters ", a->clusters, " is more than the ",
                      n, " candidates");
         LLMKIT_CHECK(outliers->count() == 0 || n >= 2,
                      "similar: --outliers needs at least 2 candidates, got ", n);
         LLMKIT_CHECK(a->outliers <= n, "similar: --outliers ", a->outliers, " is more than the ",
                      n, " candidates");

         auto e = llmkit::infer::load_embedder(a->model_dir);
         const int64_t max_len = a->max_len > 0 ? a->max_len : e.defaults.max_len;
         std::vector<std::string> all = texts;
         if (nearest) all.push_back(a->text);  // the query last, embedded in the same batches
         auto vectors = llmkit::infer::embed_texts(*e.model, *e.tokenizer, all, e.defaults.pooling,
                                                   /*normalize=*/true, max_len, a->batch);
         if (nearest) {
           const std::vector<float> query = std::move(vectors.back());
           vectors.pop_back();
           print_ranked(llmkit::infer::nearest_by_cosine(query, vectors, a->k), texts, "cosine",
                        a->json);
         } else if (clusters->count() > 0) {
           print_clusters(llmkit::infer::kmeans_cosine(vectors, a->clusters, a->seed, a->restarts),
                          texts, a->json);
         } else {
           print_ranked(llmkit::infer::outliers_by_mean_cosine(vectors, a->outliers), texts,
                        "mean_cosine", a->json);
         }
       };
     }});
