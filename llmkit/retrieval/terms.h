// Terms for BM25 keyword search (9.x 하이브리드 검색의 키워드 쪽). SQLite's FTS5 splits text into
// words at spaces and punctuation, which suits English but not Korean: a Korean word carries its
// particles ("데비안은", "데비안을"), so the word "데비안" would never match. Hangul runs are
// therefore indexed as overlapping character bigrams ("데비안은" -> "데비 비안 안은"), the usual
// way to search CJK text without a morphological analyser; other words pass through (FTS5's
// porter + unicode61 tokenizer then folds case and stems English).
// Not here: the FTS5 table itself (store.cpp), ranking (search.h).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace llmkit::retrieval {

// The text to index: words (letters and digits, as the GPT-2 character classes define them)
// separated by single spaces, each Hangul run replaced by its bigrams (a 1-syllable run stays).
// Invalid UTF-8 bytes count as separators.
std::string index_terms(std::string_view text);

// The distinct terms of a query (index_terms, lower-cased ASCII, first occurrence order), without
// common English function words ("the", "is", "what", ...), which would make a BM25 OR-query
// match nearly every chunk.
std::vector<std::string> query_terms(std::string_view text);

// An FTS5 MATCH expression OR-ing the quoted terms ("a" OR "b"); "" when there are none.
std::string fts_match_expression(const std::vector<std::string>& terms);

}  // namespace llmkit::retrieval
