// Chunking (9.x RAG: documents are cut into passages that the embedder can read whole and a
// prompt can quote): pieces of at most `max_tokens` tokens of the embedder's tokenizer, made of
// whole paragraphs where they fit, of whole sentences where a paragraph is too long, and of
// token-bounded pieces only when a sentence is too long. Consecutive chunks of one section share
// about `overlap_tokens` tokens (whole sentences from the end of the previous chunk), so that a
// fact cut at a boundary is still whole in one of them. A chunk never crosses a heading: a new
// section starts a new chunk.
// Not here: extraction (extract.h), embedding, storage (store.h).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "llmkit/retrieval/extract.h"

namespace llmkit::retrieval {

struct ChunkOptions {
  int64_t max_tokens = 200;     // what the embedder reads of a chunk (MiniLM was trained at 256)
  int64_t overlap_tokens = 32;  // shared with the previous chunk of the same section (< max)
};

struct Chunk {
  size_t begin = 0, end = 0;  // byte range [begin, end) of Extracted::text; UTF-8 boundaries
  int64_t first_line = 1;     // 1-based line numbers of Extracted::text for begin and end - 1
  int64_t last_line = 1;
  std::string heading;  // the section's heading path ("Top > Sub"), "" before the first
  int64_t tokens = 0;   // count_tokens of the chunk text
};

// Counts the tokens of a piece of text (the embedder's tokenizer, specials not included).
using CountTokens = std::function<int64_t(std::string_view)>;

// Chunks of `doc.text` in order. Blank-only text gives no chunks. Every non-blank byte of the
// text is in at least one chunk; a chunk's text starts and ends at non-blank characters.
// Paragraphs are separated by blank lines; a sentence ends at ". ! ?" (with any closing quotes
// or brackets) before a blank, or at a CJK full stop (U+3002, U+FF01, U+FF1F); a paragraph's end
// also ends a sentence. A section holding only its heading is a chunk of its own. The overlap is
// never the whole previous chunk, and pieces of a cut sentence are never repeated as overlap.
// Cost: count_tokens sees about twice the text's bytes in all (each sentence, then each chunk),
// plus O(log) prefixes per piece of a sentence longer than max_tokens.
// Errors: max_tokens < 8, overlap_tokens < 0 or >= max_tokens, headings out of order or past
// the text.
std::vector<Chunk> chunk_text(const Extracted& doc, const CountTokens& count_tokens,
                              const ChunkOptions& options = {});

}  // namespace llmkit::retrieval

namespace llmkit::retrieval {

// The largest character boundary c of `text` with count_tokens(text[0, c)) <= max_tokens, for a
// text that does not fit whole (the caller has counted it); 0 when not even its first character
// fits. Gallops from `first_step`
// bytes, then searches between the last prefix that fitted and the first that did not, so the
// tokenizer reads little more than the answer however long the text. `text` must start at a
// character boundary.
size_t token_prefix_end(std::string_view text, int64_t max_tokens, const CountTokens& count_tokens,
                        size_t first_step);

// The last part of a heading path ("Chapter 8 > 8.3. Installed?" -> "8.3. Installed?").
std::string_view heading_leaf(std::string_view heading_path);

// The end of the sentence whose terminator starts at text[i], or npos when text[i] ends none:
// ". ! ?" (with closing quotes or brackets) before a blank or `end`, or a CJK full stop
// (。 ！ ？), which needs no blank after it. What the chunker and RAG's attribution split at.
size_t sentence_end(std::string_view text, size_t i, size_t end);

// What a chunk is embedded and keyword-indexed as: the chunk's own section heading (the last
// part of the heading path) on a line before its text, so that a question naming the section
// finds it; the text alone when it already begins with that heading (the section's first chunk)
// or has none. The chapter names higher in the path are left out: every chunk of a chapter
// would repeat them, which only adds noise to both rankings.
std::string text_with_heading(std::string_view heading_path, std::string_view text);

}  // namespace llmkit::retrieval
