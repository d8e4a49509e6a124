// `llmkit index` as a process on all-MiniLM-L6-v2 (scripts/get-models.sh; skipped visibly when
// absent): create, add text / Markdown / HTML files, search in each mode with filters, stats,
// list, delete; kill -9 in the middle of a large `add` leaves the index as it was (readers kept
// searching meanwhile) and the same `add` run again completes it. Errors without a model: a
// directory that is not an index, a file that is not a database.
#include <gtest/gtest.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "cli/cli_world.h"
#include "common/reference.h"

using namespace llmkit::testing;

namespace {

void write(const std::string& path, const std::string& text) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream f(path, std::ios::binary);
  f << text;
}

nlohmann::json stats(const std::string& db) {
  const auto r = run_llmkit({"index", "stats", "--db", db, "--json"});
  EXPECT_TRUE(succeeded(r));
  return nlohmann::json::parse(r.out.empty() ? "{}" : r.out);
}

std::vector<nlohmann::json> hits(const ProcessResult& r) {
  std::vector<nlohmann::json> out;
  for (const auto& l : lines_of(r.out)) out.push_back(nlohmann::json::parse(l));
  return out;
}

// Three small documents of different formats and languages.
void write_docs(const std::string& dir) {
  write(dir + "/apt.txt",
        "Installing software\n\nUse apt install to add a package from the Debian archive. "
        "apt resolves the dependencies and downloads them.\n");
  write(dir + "/python.md",
        "# Lists\n\nA Python list is a mutable sequence. Use append to add an item to the end.\n");
  write(dir + "/ko.html",
        "<html lang=\"ko\"><head><title>데비안</title></head><body><h1>데비안이란?</h1>"
        "<p>데비안은 자유 소프트웨어로 만든 운영체제입니다. 패키지는 apt로 설치합니다.</p>"
        "</body></html>");
}

}  // namespace

TEST(CliIndex, CreateAddSearchFilterDelete) {
  const std::string model = model_path("minilm");
  if (model.empty())
    GTEST_SKIP() << "all-MiniLM-L6-v2 is not in " << models_dir()
                 << " (scripts/get-models.sh): llmkit index test skipped";
  setenv("LLMKIT_THREADS", "1", 1);
  TempDir t;
  const std::string db = t.file("db"), docs = t.file("docs");
  write_docs(docs);
  ASSERT_TRUE(succeeded(run_llmkit({"index", "create", "--db", db, "--model", model})));
  const auto add = run_llmkit({"index", "add", "--db", db, docs, "--source", "demo"});
  ASSERT_TRUE(succeeded(add));
  EXPECT_NE(add.out.find("3 added"), std::string::npos) << add.out;
  auto st = stats(db);
  EXPECT_EQ(st["documents"], 3);
  EXPECT_EQ(st["ann_behind"], 0);

  // Each mode finds the apt document for an apt question.
  for (const char* mode : {"bm25", "dense", "hybrid"}) {
    const auto r =
        run_llmkit({"index", "search", "--db", db, "--query", "How do I install a package?",
                    "--mode", mode, "--k", "2", "--json"});
    ASSERT_TRUE(succeeded(r)) << mode;
    const auto h = hits(r);
    ASSERT_FALSE(h.empty()) << mode;
    EXPECT_NE(h[0]["path"].get<std::string>().find("apt.txt"), std::string::npos)
        << mode << ": " << r.out;
    EXPECT_EQ(h[0]["first_line"], 1);
  }
  // The paraphrase shares no keyword with the text: dense finds it.
  const auto para = run_llmkit({"index", "search", "--db", db, "--query",
                                "appending an element to an array", "--mode", "dense", "--json"});
  ASSERT_TRUE(succeeded(para));
  EXPECT_NE(hits(para).at(0)["path"].get<std::string>().find("python.md"), std::string::npos);
  // Korean, and a filter applied during the search.
  const auto ko = run_llmkit({"index", "search", "--db", db, "--query", "데비안은 무엇인가요",
                              "--filter", "lang=ko", "--json"});
  ASSERT_TRUE(succeeded(ko));
  const auto kh = hits(ko);
  ASSERT_EQ(kh.size(), 1u) << ko.out;
  EXPECT_EQ(kh[0]["heading"], "데비안이란?");
  // Plain output: rank, score, path:lines, heading, excerpt.
  const auto plain =
      run_llmkit({"index", "search", "--db", db, "--query", "list append", "--k", "1"});
  ASSERT_TRUE(succeeded(plain));
  EXPECT_NE(plain.out.find("python.md:1-3\t§ Lists\tLists A Python list"), std::string::npos)
      << plain.out;

  // Adding the same files again changes nothing; delete removes one everywhere.
  const auto again = run_llmkit({"index", "add", "--db", db, docs});
  ASSERT_TRUE(succeeded(again));
  EXPECT_NE(again.out.find("3 unchanged"), std::string::npos) << again.out;
  const std::string key = std::filesystem::absolute(docs + "/apt.txt").lexically_normal().string();
  ASSERT_TRUE(succeeded(run_llmkit({"index", "delete", "--db", db, "--doc", key})));
  st = stats(db);
  EXPECT_EQ(st["documents"], 2);
  const auto gone = run_llmkit({"index", "search", "--db", db, "--query", "apt install", "--mode",
                                "bm25", "--json", "--filter", "lang=en"});
  ASSERT_TRUE(succeeded(gone));
  EXPECT_TRUE(hits(gone).empty()) << gone.out;
  expect_clean_error(run_llmkit({"index", "delete", "--db", db, "--doc", "nope"}), {"nope"},
                     "unknown document");
  expect_clean_error(
      run_llmkit({"index", "search", "--db", db, "--query", "x", "--filter", "colour=red"}),
      {"colour"}, "bad filter key");
}

TEST(CliIndex, KillDuringAddLosesNothingAndReadersKeepWorking) {
  const std::string model = model_path("minilm");
  if (model.empty())
    GTEST_SKIP() << "all-MiniLM-L6-v2 is not in " << models_dir()
                 << " (scripts/get-models.sh): llmkit index crash test skipped";
  setenv("LLMKIT_THREADS", "1", 1);
  TempDir t;
  const std::string db = t.file("db"), docs = t.file("docs"), many = t.file("many");
  write_docs(docs);
  ASSERT_TRUE(succeeded(run_llmkit({"index", "create", "--db", db, "--model", model})));
  ASSERT_TRUE(succeeded(run_llmkit({"index", "add", "--db", db, docs})));
  // Enough files for several embedding groups of 256 chunks: the kill comes after the first.
  const int n = 600;
  for (int i = 0; i < n; ++i)
    write(many + "/f" + std::to_string(i) + ".txt",
          "Note " + std::to_string(i) + " about token" + std::to_string(i) +
              ". It describes a small topic in a few plain words, number " + std::to_string(i) +
              ".\n");

  {
    ChildProcess add({llmkit_binary(), "index", "add", "--db", db, many});
    // Wait for the first progress line: the transaction is open and files are going in.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
    while (add.stderr_so_far().find(" files, ") == std::string::npos &&
           std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    ASSERT_NE(add.stderr_so_far().find(" files, "), std::string::npos) << add.stderr_so_far();
    // A reader while the writer works: the committed state, at once.
    const auto read =
        run_llmkit({"index", "search", "--db", db, "--query", "install a package", "--json"});
    ASSERT_TRUE(succeeded(read));
    EXPECT_EQ(hits(read).size(), 3u) << "a reader sees the 3 committed documents: " << read.out;
    add.signal(SIGKILL);
    const auto r = add.wait();
    ASSERT_EQ(r.term_signal, SIGKILL) << "add finished before the kill; stderr: " << r.err;
  }
  auto st = stats(db);
  EXPECT_EQ(st["documents"], 3) << "the killed add left part of its work";
  EXPECT_EQ(st["ann_behind"], 0);
  EXPECT_FALSE(st["ann_missing"].get<bool>());
  const auto list = run_llmkit({"index", "list", "--db", db});
  ASSERT_TRUE(succeeded(list));
  EXPECT_EQ(lines_of(list.out).size(), 3u);

  // The same command again completes the work.
  const auto redo = run_llmkit({"index", "add", "--db", db, many}, "", 600);
  ASSERT_TRUE(succeeded(redo));
  st = stats(db);
  EXPECT_EQ(st["documents"], n + 3);
  EXPECT_EQ(st["chunks"], n + 3);
  const auto found = run_llmkit({"index", "search", "--db", db, "--query", "token123", "--mode",
                                 "bm25", "--k", "1", "--json"});
  ASSERT_TRUE(succeeded(found));
  EXPECT_NE(hits(found).at(0)["path"].get<std::string>().find("f123.txt"), std::string::npos);
}

TEST(CliIndex, NotAnIndexIsACleanError) {
  TempDir t;
  expect_clean_error(run_llmkit({"index", "stats", "--db", t.file("missing")}), {"not a directory"},
                     "missing directory");
  std::filesystem::create_directories(t.file("empty"));
  expect_clean_error(run_llmkit({"index", "search", "--db", t.file("empty"), "--query", "x"}),
                     {"no index"}, "empty directory");
  write(t.file("junk/llmkit.db"), std::string(4096, 'x'));
  expect_clean_error(run_llmkit({"index", "stats", "--db", t.file("junk")}),
                     {"llmkit.db", "not a usable SQLite database"}, "junk file");
}
