// The RAG prompt (llmkit/retrieval/rag.h) on a synthetic store, no model needed: numbered sources
// best first within the token budget, the "don't know" threshold, and reading citations back.
#include <gtest/gtest.h>

#include <cmath>

#include <filesystem>
#include <fstream>
#include "common/temp_dir.h"

#include "llmkit/retrieval/indexer.h"
#include "llmkit/retrieval/rag.h"

using namespace llmkit::retrieval;
using llmkit::testing::TempDir;

namespace {

std::vector<float> axis(int i, float other = 0.0f) {
  std::vector<float> v(4, 0.0f);
  v[static_cast<size_t>(i)] = 1.0f;
  v[static_cast<size_t>((i + 1) % 4)] = other;
  const float n = std::sqrt(1.0f + other * other);
  for (auto& x : v) x /= n;
  return v;
}

// Words as tokens.
int64_t words(std::string_view s) {
  int64_t n = 0;
  bool in = false;
  for (char c : s) {
    const bool space = c == ' ' || c == '\n';
    if (!space && !in) ++n;
    in = !space;
  }
  return n;
}

void make_store(const std::string& dir) {
  StoreConfig c;
  c.embedder = "e";
  c.dim = 4;
  Store::create(dir, c);
  Store s = Store::open(dir, Store::Mode::Write);
  s.begin();
  auto add = [&](const std::string& key, const std::string& text, std::vector<float> v) {
    ChunkInput ci;
    ci.text = text;
    ci.vector = std::move(v);
    ci.place.heading = "Section " + key;
    ci.place.first_line = 3;
    ci.place.last_line = 4;
    DocumentMeta m;
    m.key = key;
    m.path = "/kb/" + key;
    m.title = key;
    s.add_document(m, std::vector<ChunkInput>{ci});
  };
  add("a.txt", "Debian was founded by Ian Murdock in 1993. It is a free operating system.",
      axis(0));
  add("b.txt", "The apt tool installs packages. It resolves dependencies.", axis(0, 0.5f));
  add("c.txt", "Python lists are mutable sequences.", axis(2));
  s.commit();
}

}  // namespace

TEST(Rag, SourcesAreNumberedBestFirstWithinTheBudget) {
  TempDir t;
  make_store(t.file("db"));
  Store s = Store::open(t.file("db"), Store::Mode::Read);
  RagOptions o;
  o.search.mode = SearchMode::Dense;
  o.search.k = 3;
  const RagPrompt p = build_rag_prompt(s, "Who founded Debian?", axis(0), words, o);
  EXPECT_TRUE(p.answerable);
  EXPECT_NEAR(p.best_cosine, 1.0, 1e-6);
  ASSERT_EQ(p.sources.size(), 3u);
  EXPECT_EQ(p.sources[0].number, 1);
  EXPECT_EQ(p.sources[0].hit.chunk.doc_key, "a.txt");
  EXPECT_EQ(p.sources[1].hit.chunk.doc_key, "b.txt");
  EXPECT_NE(p.user.find("[1] (a.txt § Section a.txt)\nDebian was founded"), std::string::npos)
      << p.user;
  EXPECT_NE(p.user.find("Question: Who founded Debian?"), std::string::npos);
  EXPECT_NE(p.system.find(kNoAnswer), std::string::npos);
  EXPECT_EQ(source_label(p.sources[0].hit.chunk), "/kb/a.txt:3-4 § Section a.txt");

  // A budget that holds the first source's label and first sentence only: cut at the sentence.
  o.context_tokens = 16;
  const RagPrompt small = build_rag_prompt(s, "Who founded Debian?", axis(0), words, o);
  ASSERT_EQ(small.sources.size(), 1u);
  EXPECT_NE(small.user.find("in 1993.\n"), std::string::npos) << small.user;
  EXPECT_EQ(small.user.find("free operating system"), std::string::npos) << small.user;
}

TEST(Rag, BelowTheThresholdItIsNotAnswerable) {
  TempDir t;
  make_store(t.file("db"));
  Store s = Store::open(t.file("db"), Store::Mode::Read);
  RagOptions o;
  o.search.mode = SearchMode::Dense;
  o.min_cosine = 0.5;
  // Orthogonal to every chunk but c.txt's neighbour axis: best cosine 0.
  const RagPrompt p = build_rag_prompt(s, "What is the weather?", axis(3), words, o);
  EXPECT_FALSE(p.answerable);
  EXPECT_LT(p.best_cosine, 0.5);
  o.min_cosine = -1;
  EXPECT_TRUE(build_rag_prompt(s, "What is the weather?", axis(3), words, o).answerable);
}

TEST(Rag, CitationsAreReadBack) {
  EXPECT_EQ(cited_sources("Ian Murdock founded it [1].", 3), (std::vector<int>{1}));
  EXPECT_EQ(cited_sources("See [2][1] and [2, 3].", 3), (std::vector<int>{2, 1, 3}));
  EXPECT_EQ(cited_sources("Out of range [4] [0], not a citation [x] [1", 3), std::vector<int>{});
  EXPECT_EQ(cited_sources("[1,2] [ 3 ]", 3), (std::vector<int>{1, 2}));
}

TEST(Rag, ModelCardLanguagesAreRead) {
  TempDir t;
  auto card = [&](const std::string& text) {
    std::ofstream(t.file("README.md")) << text;
    return model_card_languages(t.path.string());
  };
  EXPECT_EQ(card("---\nlanguage: en\nlicense: apache-2.0\n---\n# Model\nlanguage: ko\n"),
            std::vector<std::string>{"en"});
  EXPECT_EQ(card("---\nlicense: mit\nlanguage:\n- en\n- ko\ntags:\n- x\n---\n"),
            (std::vector<std::string>{"en", "ko"}));
  EXPECT_TRUE(card("# no front matter\nlanguage: en\n").empty());
  std::filesystem::remove(t.file("README.md"));
  EXPECT_TRUE(model_card_languages(t.path.string()).empty());
}

TEST(Rag, SentencesAreSplitAtEndsAndLineBreaks) {
  const std::string t = "Debian is free. It was founded in 1993!\nShort one.\nA list: apt, dpkg";
  const auto s = split_sentences(t);
  ASSERT_EQ(s.size(), 3u);
  EXPECT_EQ(t.substr(s[0].first, s[0].second - s[0].first), "Debian is free.");
  EXPECT_EQ(t.substr(s[1].first, s[1].second - s[1].first), "It was founded in 1993!");
  EXPECT_EQ(t.substr(s[2].first, s[2].second - s[2].first), "A list: apt, dpkg")
      << "\"Short one.\" has two words and is left out";
  EXPECT_TRUE(split_sentences("  \n ").empty());
  EXPECT_EQ(split_sentences("version 3.11 is out now").size(), 1u) << "a dot inside a number";
}

TEST(Rag, AnswerSentencesAreAttributedToTheSourceTheyMatch) {
  // A bag-of-words embedder over a tiny vocabulary: sentences sharing words are near.
  const std::vector<std::string> vocab = {"debian",   "murdock", "founded", "apt", "installs",
                                          "packages", "python",  "lists",   "moon"};
  auto embed = [&](std::span<const std::string> texts) {
    std::vector<std::vector<float>> out;
    for (std::string t : texts) {
      for (char& c : t) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      std::vector<float> v(vocab.size() + 1, 0.0f);
      v.back() = 0.01f;  // never the zero vector
      for (size_t i = 0; i < vocab.size(); ++i)
        if (t.find(vocab[i]) != std::string::npos) v[i] = 1.0f;
      float n = 0;
      for (float x : v) n += x * x;
      for (float& x : v) x /= std::sqrt(n);
      out.push_back(v);
    }
    return out;
  };
  std::vector<RagSource> sources(2);
  sources[0].number = 1;
  sources[0].hit.chunk.text = "The apt tool installs packages. It also removes them.";
  sources[1].number = 2;
  sources[1].hit.chunk.text = "Debian was founded by Ian Murdock. That was in 1993.";
  const std::string answer =
      "debian was founded by murdock long ago. The moon is made of cheese today. apt installs "
      "packages quickly here.";
  const auto at = attribute_answer(answer, sources, embed, 0.65);
  ASSERT_EQ(at.size(), 3u);
  EXPECT_EQ(at[0].source, 2);
  EXPECT_EQ(at[1].source, 0) << "the invented sentence matches nothing";
  EXPECT_LT(at[1].cosine, 0.65);
  EXPECT_EQ(at[2].source, 1);
  EXPECT_EQ(answer.substr(at[2].begin, at[2].end - at[2].begin),
            "apt installs packages quickly here.");
  EXPECT_EQ(attributed_sources(at), (std::vector<int>{2, 1}));
  EXPECT_TRUE(attribute_answer(answer, {}, embed).empty());
}
