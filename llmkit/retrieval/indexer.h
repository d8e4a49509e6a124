// Filling a vector database from files (9.x RAG의 지식 베이스 만들기): collect the files, extract
// their text (extract.h), cut it into chunks (chunker.h) that the embedder reads whole, embed
// the chunks (infer/embed.h, unit vectors) and store documents, chunks and vectors (store.h) in
// the caller's transaction. A file whose extracted text is unchanged since it was added is skipped;
// a changed one replaces its old chunks. Also the query side: embedding a question the same way.
// Not here: SQLite and the ANN index (store.h), ranking (search.h).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "llmkit/infer/embed.h"
#include "llmkit/retrieval/store.h"

namespace llmkit::retrieval {

// A loaded embedder with the settings an index uses: its sentence-transformers pooling and max
// length, and always unit-length vectors (so inner product = cosine).
struct IndexEmbedder {
  infer::Embedder model;
  std::string dir;
  int64_t max_len = 0;
  int64_t dim = 0;
  int64_t batch = 32;

  int64_t count_tokens(std::string_view text) const;  // without [CLS]/[SEP]
  std::vector<std::vector<float>> embed(std::span<const std::string> texts) const;
};
IndexEmbedder load_index_embedder(const std::string& dir);

// The files under `paths` (files as given; directories recursively, in sorted order) that
// extract.h reads: .txt .text .md .markdown .html .htm .xhtml, man pages (.1 ... .9 with suffixes),
// README-like files without an extension, each optionally .gz. Errors: a path that does not exist.
std::vector<std::string> collect_files(const std::vector<std::string>& paths);

struct AddOptions {
  std::string source;  // DocumentMeta::source for every file
  std::string lang;    // "" = from the file (HTML lang) or guessed from its script
  std::string date;    // "" = the file's modification date
  bool force = false;  // re-embed unchanged files too
};

struct AddReport {
  int64_t files = 0, added = 0, replaced = 0, unchanged = 0, empty = 0, chunks = 0;
};

// Called after each file: files done, files in all, chunks so far.
using AddProgress = std::function<void(int64_t done, int64_t total, int64_t chunks)>;

// Adds `files` (collect_files' output) inside the store's open transaction.
AddReport add_files(Store& store, const IndexEmbedder& embedder,
                    const std::vector<std::string>& files, const AddOptions& options,
                    const AddProgress& progress = nullptr);

// The `language:` of a Hugging Face model card (DIR/README.md's YAML front matter: one value or
// a "- xx" list), e.g. {"en"} for all-MiniLM-L6-v2; empty when there is no card or no field.
std::vector<std::string> model_card_languages(const std::string& dir);

// "ko" when Hangul letters make up at least a fifth of the letters of `text`, else "en";
// "" for text without letters.
std::string guess_language(std::string_view text);

}  // namespace llmkit::retrieval
