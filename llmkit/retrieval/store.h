// The vector database (9.x 벡터 데이터베이스): one directory holding an SQLite file (documents,
// chunks with their text, position and embedding, and an FTS5 table for BM25) and an ANN index
// file (ann.h) derived from it. SQLite is the truth; the ANN file is a cache of its vectors.
//
// Durability. Every write command is one SQLite transaction (WAL journal, synchronous=FULL):
// a crash anywhere in it (kill -9 mid-add) leaves the database as it was before the command.
// Chunk ids only grow (AUTOINCREMENT), and the ANN file records the largest chunk id it holds
// (its generation); after a commit the writer brings the ANN file up to date and replaces it
// atomically (write to a temporary file, rename). If that step is lost, the ANN file is behind:
// every search also scans the chunks above its generation exactly, and the next write catches the
// file up. A missing or corrupt ANN file is rebuilt from SQLite. Deleted chunks stay in the HNSW
// graph as dead rows that the search filter skips; when more than a quarter of the rows are dead,
// the writer rebuilds the index.
// Concurrency: any number of readers (WAL readers see the last committed state) while one writer
// works; writers take an exclusive lock file (DIR/write.lock), so a second writer waits.
// Not here: extraction, chunking and embedding (indexer.h does those and calls add_document),
// hybrid ranking (search.h).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "llmkit/retrieval/ann.h"
#include "llmkit/retrieval/chunker.h"

struct sqlite3;

namespace llmkit::retrieval {

// What `index create` fixes for the life of a database.
struct StoreConfig {
  std::string embedder;  // the embedding model's directory, as given to `index create`
  // The languages the embedder was trained on (its model card's `language:`, e.g. {"en"});
  // empty when unknown. Hybrid search ranks a query in another language by BM25 alone.
  std::vector<std::string> embedder_languages;
  int64_t dim = 0;  // its vector size
  ChunkOptions chunking;
  AnnOptions ann;
};

struct DocumentMeta {
  std::string key;     // the document id users see (`index delete --doc KEY`): by default the path
  std::string path;    // the file it came from (absolute)
  std::string source;  // a label for a collection (--source debian-faq), "" when none
  std::string title, lang, date, format;  // date: YYYY-MM-DD
  uint64_t hash = 0;                      // of the extracted text: an unchanged file is skipped
};

struct DocumentInfo {
  int64_t id = 0;
  DocumentMeta meta;
  int64_t chunks = 0;
};

// One chunk to store: its text, place and unit-length embedding.
struct ChunkInput {
  Chunk place;
  std::string text;
  std::vector<float> vector;
};

struct ChunkRecord {
  int64_t id = 0, doc_id = 0, seq = 0;  // seq: 0-based position in its document
  std::string doc_key, path, source, title, lang, date, heading, text;
  int64_t first_line = 0, last_line = 0;
};

// A metadata condition, `KEY OP VALUE`: KEY one of doc, path, source, title, lang, date, format;
// OP one of = != < <= > >= (string comparison; dates are YYYY-MM-DD so they compare in order)
// or ~ (SQLite GLOB: * and ?). All conditions of a search must hold.
struct Condition {
  std::string key, op, value;
};
// "lang=ko" -> {lang, =, ko}; an Error names the text when the key or operator is unknown.
Condition parse_condition(std::string_view text);

struct StoreStats {
  int64_t documents = 0, chunks = 0;
  int64_t ann_rows = 0, ann_dead = 0;  // rows in the ANN file, and those of deleted chunks
  int64_t ann_behind = 0;              // live chunks not yet in the ANN file (searched exactly)
  int64_t max_chunk_id = 0, ann_generation = 0;
  int64_t db_bytes = 0, ann_bytes = 0;
  bool ann_missing = false;  // no usable ANN file (absent or corrupt)
  std::string ann_error;     // why the ANN file was not usable
};

class Store {
 public:
  enum class Mode { Read, Write };

  // Makes DIR (if absent) and an empty database in it. Errors: DIR already holds one.
  static void create(const std::string& dir, const StoreConfig& config);
  // Errors name the file: not a directory, no database, not an SQLite file, a foreign SQLite file,
  // a newer format version. Write mode waits for the write lock.
  static Store open(const std::string& dir, Mode mode);

  Store(Store&&) noexcept;
  Store& operator=(Store&&) noexcept;
  ~Store();

  const StoreConfig& config() const { return config_; }
  const std::string& dir() const { return dir_; }

  // Writes. All happen inside begin()..commit(); destroying the Store without commit() rolls
  // back. commit() then brings the ANN file up to date (see above).
  void begin();
  void commit();
  // The document with this key, if any.
  std::optional<DocumentInfo> find_document(const std::string& key) const;
  // Adds a document with its chunks (replacing one with the same key). Returns its id.
  int64_t add_document(const DocumentMeta& meta, std::span<const ChunkInput> chunks);
  // Deletes the document with this key (or decimal id); false when there is none.
  bool delete_document(const std::string& key_or_id);

  // Reads. Each statement sees the last committed state; a search that runs several of them
  // holds a ReadSnapshot so that they all see the same one (a writer may commit in between).
  class ReadSnapshot {
   public:
    explicit ReadSnapshot(Store& store);  // no-op inside a write transaction
    ~ReadSnapshot();
    ReadSnapshot(const ReadSnapshot&) = delete;
    ReadSnapshot& operator=(const ReadSnapshot&) = delete;

   private:
    Store* store_ = nullptr;
  };
  std::vector<DocumentInfo> documents() const;
  StoreStats stats();
  std::vector<ChunkRecord> chunks(std::span<const int64_t> ids) const;
  std::vector<std::vector<float>> vectors(std::span<const int64_t> ids) const;
  // Ids of live chunks passing every condition (all live chunks for none), ascending.
  std::vector<int64_t> filter(std::span<const Condition> conditions) const;

  // Dense search: the k chunks nearest the unit vector `query` among `allowed` (sorted ascending;
  // nullptr = all live chunks): the ANN index, plus an exact scan of the chunks it does not hold
  // yet. exact = true scans everything exactly (the reference).
  std::vector<AnnHit> dense_search(std::span<const float> query, int64_t k,
                                   const std::vector<int64_t>* allowed, bool exact = false);
  // BM25 search (FTS5; SQLite's bm25() negated, so higher is better) over the query's terms
  // (terms.h), OR-ed, among `allowed` (nullptr = all).
  std::vector<AnnHit> bm25_search(std::string_view query, int64_t k,
                                  const std::vector<int64_t>* allowed) const;

  // The search candidate list size of the ANN (efSearch), for speed/recall trade-offs.
  void set_ef_search(int ef);

  // Rebuilds the ANN file from SQLite now (Write mode).
  void rebuild_ann();

 private:
  Store() = default;
  void close();  // rolls back an open transaction, closes the database, releases the lock
  void load_config();
  void ensure_ann();                  // loads the ANN file, or builds it in memory when unusable
  void sync_ann(bool force_rebuild);  // Write mode, after a commit
  std::vector<std::pair<int64_t, std::vector<float>>> vectors_above(int64_t id) const;
  int64_t chunk_count() const;
  int64_t chunks_above(int64_t id) const;  // chunks with an id > `id`

  std::string dir_;
  Mode mode_ = Mode::Read;
  sqlite3* db_ = nullptr;
  int lock_fd_ = -1;
  bool in_txn_ = false;   // a write transaction (begin .. commit)
  bool in_read_ = false;  // a ReadSnapshot
  StoreConfig config_;
  std::unique_ptr<AnnIndex> ann_;  // loaded lazily
  bool ann_loaded_ = false, ann_usable_ = false;
  std::string ann_error_;
  int ef_search_ = 0;  // 0: the config's
};

// Path of the SQLite file and the ANN file inside a database directory.
std::string store_db_path(const std::string& dir);
std::string store_ann_path(const std::string& dir);

}  // namespace llmkit::retrieval
