// BM25 terms (llmkit/retrieval/terms.h): words pass through, Hangul runs become bigrams, queries
// lose function words and duplicates, and the FTS5 expression quotes every term.
#include <gtest/gtest.h>

#include "llmkit/retrieval/terms.h"

using namespace llmkit::retrieval;

TEST(Terms, WordsPassAndHangulBecomesBigrams) {
  EXPECT_EQ(index_terms("Use apt-get, not dpkg!"), "Use apt get not dpkg");
  EXPECT_EQ(index_terms("데비안은 자유"), "데비 비안 안은 자유");
  EXPECT_EQ(index_terms("데"), "데");
  EXPECT_EQ(index_terms("apt로 설치"), "apt 로 설치");
  EXPECT_EQ(index_terms("python3.11 café"), "python3 11 café");
  EXPECT_EQ(index_terms("  \n\t "), "");
  EXPECT_EQ(index_terms("a\xff"
                        "b"),
            "a b")
      << "an invalid byte separates";
}

TEST(Terms, QueriesDropFunctionWordsAndDuplicates) {
  EXPECT_EQ(query_terms("What is the Debian package manager?"),
            (std::vector<std::string>{"debian", "package", "manager"}));
  EXPECT_EQ(query_terms("apt APT apt"), (std::vector<std::string>{"apt"}));
  EXPECT_EQ(query_terms("데비안이 뭐예요"),
            (std::vector<std::string>{"데비", "비안", "안이", "뭐예", "예요"}));
  EXPECT_TRUE(query_terms("what is it?").empty());
}

TEST(Terms, MatchExpressionQuotesEveryTerm) {
  EXPECT_EQ(fts_match_expression({"apt", "dpkg"}), "\"apt\" OR \"dpkg\"");
  EXPECT_EQ(fts_match_expression({"a\"b"}), "\"a\"\"b\"");
  EXPECT_EQ(fts_match_expression({}), "");
  // FTS5 operators inside a query are only words.
  EXPECT_EQ(fts_match_expression(query_terms("NEAR(apt) OR -x")), "\"near\" OR \"apt\" OR \"x\"");
}
