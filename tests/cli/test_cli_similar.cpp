// `llmkit similar` as a process. On all-MiniLM-L6-v2 (scripts/get-models.sh; skipped visibly when
// absent): "king" ranks "queen" above "banana", lines are rank<TAB>cosine<TAB>text with falling
// cosines, --k cuts the list, --json gives the same; --clusters 2 on four fruits and four vehicles
// separates them, with the same output for the same seed; --outliers finds the one sentence
// about banking among fruit names. Errors (checked before the model loads, so no model needed):
// no query, no or empty candidates, k <= 0, K > the number of texts, conflicting modes.
#include <gtest/gtest.h>

#include <cstdlib>
#include <nlohmann/json.hpp>
#include <set>

#include "cli/cli_world.h"
#include "common/reference.h"
#include "common/temp_dir.h"

using namespace llmkit::testing;

namespace {

struct Ranked {
  int rank;
  double cosine;
  std::string text;
};

std::vector<Ranked> ranked_of(const std::string& out) {
  std::vector<Ranked> r;
  for (const auto& line : lines_of(out)) {
    const size_t a = line.find('\t'), b = line.find('\t', a + 1);
    EXPECT_NE(b, std::string::npos) << "not rank<TAB>cosine<TAB>text: " << line;
    if (b == std::string::npos) continue;
    r.push_back({std::stoi(line.substr(0, a)), std::stod(line.substr(a + 1, b - a - 1)),
                 line.substr(b + 1)});
  }
  return r;
}

size_t position_of(const std::vector<Ranked>& r, const std::string& text) {
  for (size_t i = 0; i < r.size(); ++i)
    if (r[i].text == text) return i;
  return r.size();
}

}  // namespace

TEST(CliSimilar, MiniLMRanksClustersAndFindsOutliers) {
  const std::string dir = model_path("minilm");
  if (dir.empty())
    GTEST_SKIP() << "all-MiniLM-L6-v2 is not in " << models_dir()
                 << " (scripts/get-models.sh): llmkit similar test skipped";
  setenv("LLMKIT_THREADS", "1", 1);
  TempDir tmp;
  const std::string words =
      write_file(tmp, "words.txt", "banana\nqueen\n\ncar\nprincess\napple\nemperor\n");
  const auto r =
      run_llmkit({"similar", "--model", dir, "--text", "king", "--candidates", words, "--k", "10"});
  ASSERT_TRUE(succeeded(r));
  const auto all = ranked_of(r.out);
  ASSERT_EQ(all.size(), 6u) << r.out;  // the blank line is skipped; k past the end: all
  for (size_t i = 0; i < all.size(); ++i) {
    EXPECT_EQ(all[i].rank, static_cast<int>(i + 1));
    if (i > 0) {
      EXPECT_LE(all[i].cosine, all[i - 1].cosine) << r.out;
    }
  }
  EXPECT_LT(position_of(all, "queen"), position_of(all, "banana")) << r.out;
  EXPECT_LT(position_of(all, "emperor"), position_of(all, "car")) << r.out;

  // --k 2 from stdin, --json: the first two of the same ranking.
  const auto j = run_llmkit(
      {"similar", "--model", dir, "--text", "king", "--candidates", "-", "--k", "2", "--json"},
      "banana\nqueen\n\ncar\nprincess\napple\nemperor\n");
  ASSERT_TRUE(succeeded(j));
  const auto jl = lines_of(j.out);
  ASSERT_EQ(jl.size(), 2u) << j.out;
  for (size_t i = 0; i < 2; ++i) {
    const auto o = nlohmann::json::parse(jl[i]);
    EXPECT_EQ(o.at("rank").get<int>(), static_cast<int>(i + 1));
    EXPECT_EQ(o.at("text").get<std::string>(), all[i].text);
    EXPECT_NEAR(o.at("cosine").get<double>(), all[i].cosine, 1e-4);
  }

  // Two clusters of four fruits and four vehicles, interleaved.
  const std::vector<std::string> fruit = {"apple", "banana", "cherry", "grape"},
                                 vehicle = {"car", "truck", "bus", "train"};
  std::vector<std::string> args = {"similar", "--model", dir, "--clusters", "2", "--json"};
  for (size_t i = 0; i < 4; ++i)
    for (const auto& w : {fruit[i], vehicle[i]}) args.insert(args.end(), {"--candidate", w});
  const auto c = run_llmkit(args);
  ASSERT_TRUE(succeeded(c));
  const auto cl = lines_of(c.out);
  ASSERT_EQ(cl.size(), 2u) << c.out;
  std::vector<std::set<std::string>> groups;
  for (const auto& line : cl) {
    const auto o = nlohmann::json::parse(line);
    std::set<std::string> g;
    for (const auto& m : o.at("members")) g.insert(m.at("text").get<std::string>());
    EXPECT_EQ(o.at("size").get<size_t>(), g.size());
    EXPECT_EQ(o.at("central").get<std::string>(),
              o.at("members").at(0).at("text").get<std::string>());
    groups.push_back(g);
  }
  EXPECT_EQ(groups[0], std::set<std::string>(fruit.begin(), fruit.end())) << c.out;
  EXPECT_EQ(groups[1], std::set<std::string>(vehicle.begin(), vehicle.end())) << c.out;
  args.insert(args.end(), {"--seed", "7"});
  const auto c7 = run_llmkit(args), c7again = run_llmkit(args);
  ASSERT_TRUE(succeeded(c7));
  EXPECT_EQ(c7.out, c7again.out) << "the same seed gave different clusters";

  // The one sentence about banking is the outlier among fruit names.
  const auto o = run_llmkit({"similar", "--model", dir, "--outliers", "1", "--candidates", "-"},
                            "apple\nbanana\ncherry\nThe central bank raised interest rates "
                            "again.\ngrape\npear\n");
  ASSERT_TRUE(succeeded(o));
  const auto out = ranked_of(o.out);
  ASSERT_EQ(out.size(), 1u) << o.out;
  EXPECT_EQ(out[0].text, "The central bank raised interest rates again.");
}

TEST(CliSimilar, RefusesBadArguments) {
  // Every check below runs before the model loads: a missing model directory is never reached.
  TempDir tmp;
  const std::string m = tmp.file("no_model");
  const std::string blank = write_file(tmp, "blank.txt", "\n  \n");
  expect_clean_error(run_llmkit({"similar", "--model", m, "--candidate", "a"}),
                     {"--text", "--clusters", "--outliers"}, "no query and no mode");
  expect_clean_error(run_llmkit({"similar", "--model", m, "--text", "x"}), {"no candidates"},
                     "no candidates");
  expect_clean_error(run_llmkit({"similar", "--model", m, "--text", "x", "--candidates", blank}),
                     {"blank.txt", "no non-blank line"}, "blank candidates file");
  expect_clean_error(
      run_llmkit({"similar", "--model", m, "--text", "x", "--candidates", tmp.file("none.txt")}),
      {"none.txt"}, "missing candidates file");
  expect_clean_error(
      run_llmkit({"similar", "--model", m, "--text", "x", "--candidate", "a", "--k", "0"}),
      {"--k must be >= 1, got 0"}, "k = 0");
  expect_clean_error(run_llmkit({"similar", "--model", m, "--clusters", "3", "--candidate", "a",
                                 "--candidate", "b"}),
                     {"--clusters 3 is more than the 2 candidates"}, "K > N");
  expect_clean_error(run_llmkit({"similar", "--model", m, "--clusters", "0", "--candidate", "a"}),
                     {"--clusters must be >= 1"}, "K = 0");
  expect_clean_error(run_llmkit({"similar", "--model", m, "--outliers", "1", "--candidate", "a"}),
                     {"at least 2 candidates"}, "outliers of one text");
  expect_clean_error(
      run_llmkit({"similar", "--model", m, "--text", "x", "--clusters", "2", "--candidate", "a"}),
      {"--text", "--clusters"}, "a query with --clusters");
}
