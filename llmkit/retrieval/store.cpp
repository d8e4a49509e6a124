// The vector database on SQLite + the ANN file (store.h).
#include "llmkit/retrieval/store.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <unordered_set>
#include <utility>

#include "llmkit/core/error.h"
#include "llmkit/io/atomic_file.h"
#include "llmkit/retrieval/terms.h"

namespace llmkit::retrieval {
namespace {

namespace fs = std::filesystem;

constexpr const char* kFormat = "llmkit-retrieval";
constexpr int kVersion = 1;
// More dead rows than this fraction of the ANN index: the writer rebuilds it.
constexpr double kMaxDeadFraction = 0.25;
// Filters that leave at most this many chunks are searched exactly (dense_search).
constexpr size_t kExactFilterLimit = 2048;

// One prepared statement; bind 1-based, step, read 0-based columns.
class Stmt {
 public:
  Stmt(sqlite3* db, const char* sql) : db_(db) {
    if (sqlite3_prepare_v2(db, sql, -1, &s_, nullptr) != SQLITE_OK)
      fail("index: SQLite cannot prepare '", sql, "': ", sqlite3_errmsg(db));
  }
  ~Stmt() { sqlite3_finalize(s_); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  Stmt& bind(int i, int64_t v) {
    check(sqlite3_bind_int64(s_, i, v));
    return *this;
  }
  Stmt& bind(int i, std::string_view v) {
    check(sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT));
    return *this;
  }
  Stmt& bind_blob(int i, const void* p, size_t n) {
    check(sqlite3_bind_blob(s_, i, p, static_cast<int>(n), SQLITE_TRANSIENT));
    return *this;
  }
  // True while there is a row.
  bool step() {
    const int rc = sqlite3_step(s_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    fail("index: SQLite: ", sqlite3_errmsg(db_));
  }
  void run() {
    while (step()) {
    }
  }
  void reset() {
    sqlite3_reset(s_);
    sqlite3_clear_bindings(s_);
  }
  int64_t i64(int c) const { return sqlite3_column_int64(s_, c); }
  std::string text(int c) const {
    const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(s_, c));
    return p ? std::string(p, static_cast<size_t>(sqlite3_column_bytes(s_, c))) : std::string();
  }
  std::span<const float> floats(int c) const {
    const void* p = sqlite3_column_blob(s_, c);
    const int n = sqlite3_column_bytes(s_, c);
    return {static_cast<const float*>(p), static_cast<size_t>(n) / sizeof(float)};
  }
  double f64(int c) const { return sqlite3_column_double(s_, c); }

 private:
  void check(int rc) {
    if (rc != SQLITE_OK) fail("index: SQLite bind: ", sqlite3_errmsg(db_));
  }
  sqlite3* db_;
  sqlite3_stmt* s_ = nullptr;
};

void exec(sqlite3* db, const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : "unknown error";
    sqlite3_free(err);
    fail("index: SQLite: ", msg, " (in: ", std::string(sql).substr(0, 60), ")");
  }
}

const char* kSchema = R"sql(
CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE documents(
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  key TEXT NOT NULL UNIQUE,
  path TEXT NOT NULL, source TEXT NOT NULL, title TEXT NOT NULL, lang TEXT NOT NULL,
  date TEXT NOT NULL, format TEXT NOT NULL, hash TEXT NOT NULL);
CREATE TABLE chunks(
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  doc INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
  seq INTEGER NOT NULL, heading TEXT NOT NULL,
  first_line INTEGER NOT NULL, last_line INTEGER NOT NULL,
  begin_byte INTEGER NOT NULL, end_byte INTEGER NOT NULL,
  text TEXT NOT NULL, vector BLOB NOT NULL);
CREATE INDEX chunks_doc ON chunks(doc);
CREATE VIRTUAL TABLE fts USING fts5(terms, tokenize = 'porter unicode61');
)sql";

sqlite3* open_db(const std::string& path, bool create) {
  sqlite3* db = nullptr;
  const int flags = SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0);
  if (sqlite3_open_v2(path.c_str(), &db, flags, nullptr) != SQLITE_OK) {
    std::string msg = db ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close(db);
    fail("index: cannot open ", path, ": ", msg);
  }
  sqlite3_busy_timeout(db, 60000);  // a reader meeting a checkpoint, a writer meeting a writer
  sqlite3_extended_result_codes(db, 1);
  return db;
}

std::string meta_value(sqlite3* db, const std::string& key) {
  Stmt s(db, "SELECT value FROM meta WHERE key = ?");
  s.bind(1, key);
  return s.step() ? s.text(0) : std::string();
}

void set_meta(sqlite3* db, const std::string& key, const std::string& value) {
  Stmt s(db, "INSERT OR REPLACE INTO meta(key, value) VALUES(?, ?)");
  s.bind(1, key).bind(2, value).run();
}

int64_t to_i64(const std::string& s, const char* what, const std::string& path) {
  try {
    size_t used = 0;
    const int64_t v = std::stoll(s, &used);
    if (used == s.size()) return v;
  } catch (const std::exception&) {
  }
  fail("index: ", path, ": meta '", what, "' is not a number: '", s, "'");
}

std::string hex64(uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

int64_t file_size(const std::string& path) {
  std::error_code ec;
  const auto n = fs::file_size(path, ec);
  return ec ? 0 : static_cast<int64_t>(n);
}

// The SQL column a Condition key names.
std::string condition_column(const std::string& key) {
  if (key == "doc") return "d.key";
  if (key == "path" || key == "source" || key == "title" || key == "lang" || key == "date" ||
      key == "format")
    return "d." + key;
  fail("index: unknown filter key '", key,
       "' (one of doc, path, source, title, lang, date, format)");
}

}  // namespace

std::string store_db_path(const std::string& dir) {
  return (fs::path(dir) / "llmkit.db").string();
}
std::string store_ann_path(const std::string& dir) {
  return (fs::path(dir) / "ann.bin").string();
}

Condition parse_condition(std::string_view text) {
  static const char* ops[] = {"!=", "<=", ">=", "=", "<", ">", "~"};
  for (size_t i = 0; i < text.size(); ++i) {
    for (const char* op : ops) {
      const size_t n = std::strlen(op);
      if (text.substr(i, n) == op) {
        Condition c{std::string(text.substr(0, i)), op, std::string(text.substr(i + n))};
        LLMKIT_CHECK(!c.key.empty(), "index: filter '", text, "' has no key (e.g. lang=ko)");
        condition_column(c.key);  // validates the key
        return c;
      }
    }
  }
  fail("index: filter '", text, "' has no operator (=, !=, <, <=, >, >=, ~ for a glob)");
}

void Store::create(const std::string& dir, const StoreConfig& config) {
  LLMKIT_CHECK(config.dim > 0, "index create: the embedder's dimension must be > 0");
  std::error_code ec;
  fs::create_directories(dir, ec);
  LLMKIT_CHECK(!ec && fs::is_directory(dir), "index create: cannot make directory ", dir, ": ",
               ec.message());
  const std::string path = store_db_path(dir);
  LLMKIT_CHECK(!fs::exists(path), "index create: ", dir, " already holds an index (", path,
               "); delete it first or use `index add`");
  // Built under a temporary name and renamed, so that a crash never leaves a half-made database.
  const std::string tmp = path + ".tmp." + std::to_string(getpid());
  fs::remove(tmp, ec);
  sqlite3* db = open_db(tmp, true);
  try {
    exec(db, "PRAGMA journal_mode = DELETE");
    exec(db, "BEGIN");
    exec(db, kSchema);
    set_meta(db, "format", kFormat);
    set_meta(db, "version", std::to_string(kVersion));
    set_meta(db, "embedder", config.embedder);
    std::string langs;
    for (const auto& l : config.embedder_languages) langs += (langs.empty() ? "" : ",") + l;
    set_meta(db, "embedder_languages", langs);
    set_meta(db, "dim", std::to_string(config.dim));
    set_meta(db, "chunk_max_tokens", std::to_string(config.chunking.max_tokens));
    set_meta(db, "chunk_overlap_tokens", std::to_string(config.chunking.overlap_tokens));
    set_meta(db, "ann_m", std::to_string(config.ann.m));
    set_meta(db, "ann_ef_construction", std::to_string(config.ann.ef_construction));
    set_meta(db, "ann_ef_search", std::to_string(config.ann.ef_search));
    exec(db, "COMMIT");
    exec(db, "PRAGMA journal_mode = WAL");
  } catch (...) {
    sqlite3_close(db);
    fs::remove(tmp, ec);
    throw;
  }
  sqlite3_close(db);
  fs::rename(tmp, path, ec);
  LLMKIT_CHECK(!ec, "index create: cannot rename ", tmp, " to ", path, ": ", ec.message());
  io::fsync_directory(dir);
}

Store Store::open(const std::string& dir, Mode mode) {
  LLMKIT_CHECK(fs::is_directory(dir), "index: ", dir,
               " is not a directory (make one with `llmkit index create`)");
  const std::string path = store_db_path(dir);
  LLMKIT_CHECK(fs::exists(path), "index: no index in ", dir, " (", path,
               " is missing; make one with `llmkit index create`)");
  Store s;
  s.dir_ = dir;
  s.mode_ = mode;
  if (mode == Mode::Write) {
    const std::string lock = (fs::path(dir) / "write.lock").string();
    s.lock_fd_ = ::open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    LLMKIT_CHECK(s.lock_fd_ >= 0, "index: cannot open ", lock, ": ", std::strerror(errno));
    LLMKIT_CHECK(flock(s.lock_fd_, LOCK_EX) == 0, "index: cannot lock ", lock, ": ",
                 std::strerror(errno));
  }
  s.db_ = open_db(path, false);
  // A file that is not SQLite fails at the first read, not at open.
  char* err = nullptr;
  const int rc = sqlite3_exec(s.db_, "SELECT count(*) FROM sqlite_master", nullptr, nullptr, &err);
  if (rc != SQLITE_OK) {
    std::string msg = err ? err : sqlite3_errmsg(s.db_);
    sqlite3_free(err);
    fail("index: ", path, " is not a usable SQLite database (", msg, ")");
  }
  {
    Stmt t(s.db_, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'meta'");
    t.step();
    LLMKIT_CHECK(t.i64(0) == 1 && meta_value(s.db_, "format") == kFormat, "index: ", path,
                 " is an SQLite database but not an llmkit index");
  }
  exec(s.db_, "PRAGMA foreign_keys = ON");
  exec(s.db_, "PRAGMA synchronous = FULL");
  s.load_config();
  return s;
}

void Store::load_config() {
  const std::string path = store_db_path(dir_);
  const int64_t version = to_i64(meta_value(db_, "version"), "version", path);
  LLMKIT_CHECK(version == kVersion, "index: ", path, " has format version ", version,
               "; this llmkit reads version ", kVersion);
  config_.embedder = meta_value(db_, "embedder");
  config_.embedder_languages.clear();
  {
    std::stringstream ss(meta_value(db_, "embedder_languages"));  // absent: "" (unknown)
    for (std::string l; std::getline(ss, l, ',');)
      if (!l.empty()) config_.embedder_languages.push_back(l);
  }
  config_.dim = to_i64(meta_value(db_, "dim"), "dim", path);
  config_.chunking.max_tokens =
      to_i64(meta_value(db_, "chunk_max_tokens"), "chunk_max_tokens", path);
  config_.chunking.overlap_tokens =
      to_i64(meta_value(db_, "chunk_overlap_tokens"), "chunk_overlap_tokens", path);
  config_.ann.m = static_cast<int>(to_i64(meta_value(db_, "ann_m"), "ann_m", path));
  config_.ann.ef_construction =
      static_cast<int>(to_i64(meta_value(db_, "ann_ef_construction"), "ann_ef_construction", path));
  config_.ann.ef_search =
      static_cast<int>(to_i64(meta_value(db_, "ann_ef_search"), "ann_ef_search", path));
  LLMKIT_CHECK(config_.dim > 0, "index: ", path, ": dim must be > 0");
}

Store::Store(Store&& o) noexcept {
  *this = std::move(o);
}

Store& Store::operator=(Store&& o) noexcept {
  if (this == &o) return *this;
  close();
  dir_ = std::move(o.dir_);
  mode_ = o.mode_;
  db_ = std::exchange(o.db_, nullptr);
  lock_fd_ = std::exchange(o.lock_fd_, -1);
  in_txn_ = std::exchange(o.in_txn_, false);
  in_read_ = std::exchange(o.in_read_, false);
  config_ = std::move(o.config_);
  ann_ = std::move(o.ann_);
  ann_loaded_ = o.ann_loaded_;
  ann_usable_ = o.ann_usable_;
  ann_error_ = std::move(o.ann_error_);
  ef_search_ = o.ef_search_;
  return *this;
}

Store::~Store() {
  close();
}

void Store::close() {
  if (db_ != nullptr) {
    if (in_txn_ || in_read_) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    sqlite3_close(db_);
    db_ = nullptr;
    in_txn_ = false;
    in_read_ = false;
  }
  if (lock_fd_ >= 0) {
    ::close(lock_fd_);  // releases the flock
    lock_fd_ = -1;
  }
}

Store::ReadSnapshot::ReadSnapshot(Store& store) {
  if (store.in_txn_ || store.in_read_) return;
  exec(store.db_, "BEGIN");  // deferred: the snapshot starts at the first read
  store.in_read_ = true;
  store_ = &store;
}

Store::ReadSnapshot::~ReadSnapshot() {
  if (store_ == nullptr) return;
  sqlite3_exec(store_->db_, "COMMIT", nullptr, nullptr, nullptr);  // a read: nothing to lose
  store_->in_read_ = false;
}

void Store::begin() {
  LLMKIT_CHECK(mode_ == Mode::Write, "index: the database was opened for reading");
  LLMKIT_CHECK(!in_txn_ && !in_read_, "index: a transaction is already open");
  exec(db_, "BEGIN IMMEDIATE");
  in_txn_ = true;
}

void Store::commit() {
  LLMKIT_CHECK(in_txn_, "index: commit without begin");
  exec(db_, "COMMIT");
  in_txn_ = false;
  sync_ann(false);
}

// The columns both document queries select, in this order.
#define LLMKIT_DOCUMENT_COLUMNS                                                \
  "d.id, d.key, d.path, d.source, d.title, d.lang, d.date, d.format, d.hash, " \
  "(SELECT count(*) FROM chunks c WHERE c.doc = d.id)"

// A DocumentInfo from a row of LLMKIT_DOCUMENT_COLUMNS.
static DocumentInfo document_row(const Stmt& s) {
  DocumentInfo d;
  d.id = s.i64(0);
  d.meta = {s.text(1), s.text(2), s.text(3), s.text(4),
            s.text(5), s.text(6), s.text(7), std::stoull(s.text(8), nullptr, 16)};
  d.chunks = s.i64(9);
  return d;
}

std::optional<DocumentInfo> Store::find_document(const std::string& key) const {
  Stmt s(db_, "SELECT " LLMKIT_DOCUMENT_COLUMNS " FROM documents d WHERE d.key = ?");
  s.bind(1, key);
  if (!s.step()) return std::nullopt;
  DocumentInfo d = document_row(s);
  return d;
}

int64_t Store::add_document(const DocumentMeta& meta, std::span<const ChunkInput> chunks) {
  LLMKIT_CHECK(in_txn_, "index: add_document outside a transaction");
  LLMKIT_CHECK(!meta.key.empty(), "index: a document needs a key");
  delete_document(meta.key);
  Stmt d(db_,
         "INSERT INTO documents(key, path, source, title, lang, date, format, hash) "
         "VALUES(?, ?, ?, ?, ?, ?, ?, ?)");
  d.bind(1, meta.key).bind(2, meta.path).bind(3, meta.source).bind(4, meta.title);
  d.bind(5, meta.lang).bind(6, meta.date).bind(7, meta.format).bind(8, hex64(meta.hash));
  d.run();
  const int64_t doc = sqlite3_last_insert_rowid(db_);
  Stmt c(db_,
         "INSERT INTO chunks(doc, seq, heading, first_line, last_line, begin_byte, end_byte, "
         "text, vector) VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?)");
  Stmt f(db_, "INSERT INTO fts(rowid, terms) VALUES(?, ?)");
  for (size_t i = 0; i < chunks.size(); ++i) {
    const ChunkInput& in = chunks[i];
    LLMKIT_CHECK(static_cast<int64_t>(in.vector.size()) == config_.dim, "index: chunk ", i, " of ",
                 meta.key, " has a ", in.vector.size(), "-dim vector; the index holds ",
                 config_.dim);
    for (float v : in.vector)
      LLMKIT_CHECK(std::isfinite(v), "index: chunk ", i, " of ", meta.key,
                   " has a non-finite embedding");
    c.reset();
    c.bind(1, doc).bind(2, static_cast<int64_t>(i)).bind(3, in.place.heading);
    c.bind(4, in.place.first_line).bind(5, in.place.last_line);
    c.bind(6, static_cast<int64_t>(in.place.begin)).bind(7, static_cast<int64_t>(in.place.end));
    c.bind(8, in.text).bind_blob(9, in.vector.data(), in.vector.size() * sizeof(float));
    c.run();
    const int64_t id = sqlite3_last_insert_rowid(db_);
    f.reset();
    f.bind(1, id).bind(2, index_terms(text_with_heading(in.place.heading, in.text))).run();
  }
  return doc;
}

bool Store::delete_document(const std::string& key_or_id) {
  LLMKIT_CHECK(in_txn_, "index: delete_document outside a transaction");
  int64_t doc = -1;
  {
    Stmt s(db_, "SELECT id FROM documents WHERE key = ?");
    s.bind(1, key_or_id);
    if (s.step()) doc = s.i64(0);
  }
  if (doc < 0 && !key_or_id.empty() && std::all_of(key_or_id.begin(), key_or_id.end(), [](char c) {
        return c >= '0' && c <= '9';
      })) {
    Stmt s(db_, "SELECT id FROM documents WHERE id = ?");
    s.bind(1, static_cast<int64_t>(std::stoll(key_or_id)));
    if (s.step()) doc = s.i64(0);
  }
  if (doc < 0) return false;
  Stmt f(db_, "DELETE FROM fts WHERE rowid IN (SELECT id FROM chunks WHERE doc = ?)");
  f.bind(1, doc).run();
  Stmt d(db_, "DELETE FROM documents WHERE id = ?");  // chunks go by ON DELETE CASCADE
  d.bind(1, doc).run();
  return true;
}

std::vector<DocumentInfo> Store::documents() const {
  Stmt s(db_, "SELECT " LLMKIT_DOCUMENT_COLUMNS " FROM documents d ORDER BY d.id");
  std::vector<DocumentInfo> out;
  while (s.step()) {
    DocumentInfo d = document_row(s);
    out.push_back(std::move(d));
  }
  return out;
}

std::vector<ChunkRecord> Store::chunks(std::span<const int64_t> ids) const {
  Stmt s(db_,
         "SELECT c.id, c.doc, c.seq, d.key, d.path, d.source, d.title, d.lang, d.date, c.heading, "
         "c.text, c.first_line, c.last_line FROM chunks c JOIN documents d ON d.id = c.doc "
         "WHERE c.id = ?");
  std::vector<ChunkRecord> out;
  for (int64_t id : ids) {
    s.reset();
    s.bind(1, id);
    LLMKIT_CHECK(s.step(), "index: no chunk ", id);
    ChunkRecord r;
    r.id = s.i64(0);
    r.doc_id = s.i64(1);
    r.seq = s.i64(2);
    r.doc_key = s.text(3);
    r.path = s.text(4);
    r.source = s.text(5);
    r.title = s.text(6);
    r.lang = s.text(7);
    r.date = s.text(8);
    r.heading = s.text(9);
    r.text = s.text(10);
    r.first_line = s.i64(11);
    r.last_line = s.i64(12);
    out.push_back(std::move(r));
    while (s.step()) {
    }
  }
  return out;
}

std::vector<std::vector<float>> Store::vectors(std::span<const int64_t> ids) const {
  Stmt s(db_, "SELECT vector FROM chunks WHERE id = ?");
  std::vector<std::vector<float>> out;
  for (int64_t id : ids) {
    s.reset();
    s.bind(1, id);
    LLMKIT_CHECK(s.step(), "index: no chunk ", id);
    const auto v = s.floats(0);
    LLMKIT_CHECK(static_cast<int64_t>(v.size()) == config_.dim, "index: chunk ", id,
                 " has a vector of ", v.size(), " values, not ", config_.dim,
                 " (the database is damaged)");
    out.emplace_back(v.begin(), v.end());
    while (s.step()) {
    }
  }
  return out;
}

std::vector<int64_t> Store::filter(std::span<const Condition> conditions) const {
  // Every condition is on the document: walk the documents and reach their chunk ids through the
  // covering index chunks(doc), then sort here. Walking the chunks table instead (what SQLite
  // picks for "ORDER BY c.id") reads every chunk's text and vector pages: 5-8x slower at 116k
  // chunks (bench/retrieval/filter_sql.py).
  std::string sql = "SELECT c.id FROM documents d CROSS JOIN chunks c ON c.doc = d.id";
  for (size_t i = 0; i < conditions.size(); ++i) {
    const Condition& c = conditions[i];
    sql += i == 0 ? " WHERE " : " AND ";
    const std::string col = condition_column(c.key);
    if (c.op == "~")
      sql += col + " GLOB ?";
    else if (c.op == "=" || c.op == "!=" || c.op == "<" || c.op == "<=" || c.op == ">" ||
             c.op == ">=")
      sql += col + " " + c.op + " ?";
    else
      fail("index: unknown filter operator '", c.op, "'");
  }
  Stmt s(db_, sql.c_str());
  for (size_t i = 0; i < conditions.size(); ++i)
    s.bind(static_cast<int>(i + 1), conditions[i].value);
  std::vector<int64_t> ids;
  while (s.step()) ids.push_back(s.i64(0));
  std::sort(ids.begin(), ids.end());
  return ids;
}

int64_t Store::chunk_count() const {
  Stmt s(db_, "SELECT count(*) FROM chunks");  // reads the small covering index chunks(doc)
  s.step();
  return s.i64(0);
}

int64_t Store::chunks_above(int64_t id) const {
  // A rowid range over the few chunks the ANN file does not hold yet; "id <= ?" instead would
  // read every chunk's pages.
  Stmt s(db_, "SELECT count(*) FROM chunks WHERE id > ?");
  s.bind(1, id);
  s.step();
  return s.i64(0);
}

StoreStats Store::stats() {
  StoreStats st;
  {
    Stmt s(db_,
           "SELECT (SELECT count(*) FROM documents), (SELECT count(*) FROM chunks), "
           "(SELECT coalesce(max(id), 0) FROM chunks)");
    s.step();
    st.documents = s.i64(0);
    st.chunks = s.i64(1);
    st.max_chunk_id = s.i64(2);
  }
  st.db_bytes = file_size(store_db_path(dir_)) + file_size(store_db_path(dir_) + "-wal");
  st.ann_bytes = file_size(store_ann_path(dir_));
  ensure_ann();
  if (ann_usable_) {
    st.ann_rows = ann_->rows();
    st.ann_generation = ann_->generation();
    st.ann_behind = chunks_above(st.ann_generation);
    st.ann_dead = st.ann_rows - (st.chunks - st.ann_behind);
  } else {
    st.ann_missing = true;
    st.ann_error = ann_error_;
    st.ann_behind = st.chunks;
  }
  return st;
}

std::vector<std::pair<int64_t, std::vector<float>>> Store::vectors_above(int64_t id) const {
  Stmt s(db_, "SELECT id, vector FROM chunks WHERE id > ? ORDER BY id");
  s.bind(1, id);
  std::vector<std::pair<int64_t, std::vector<float>>> out;
  while (s.step()) {
    const auto v = s.floats(1);
    LLMKIT_CHECK(static_cast<int64_t>(v.size()) == config_.dim, "index: chunk ", s.i64(0),
                 " has a vector of ", v.size(), " values, not ", config_.dim,
                 " (the database is damaged)");
    out.emplace_back(s.i64(0), std::vector<float>(v.begin(), v.end()));
  }
  return out;
}

void Store::ensure_ann() {
  if (ann_loaded_) return;
  ann_loaded_ = true;
  const std::string path = store_ann_path(dir_);
  if (!fs::exists(path)) {
    ann_error_ = "no ANN file yet";
    return;
  }
  try {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream buf;
    buf << in.rdbuf();
    LLMKIT_CHECK(in.good() || in.eof(), "cannot read ", path);
    auto idx = AnnIndex::deserialize(buf.str(), path);
    LLMKIT_CHECK(idx.dim() == config_.dim, path, " holds ", idx.dim(), "-dim vectors, the index ",
                 config_.dim);
    ann_ = std::make_unique<AnnIndex>(std::move(idx));
    ann_usable_ = true;
  } catch (const std::exception& e) {
    ann_error_ = e.what();
  }
}

void Store::set_ef_search(int ef) {
  ef_search_ = ef;
  if (ann_) ann_->set_ef_search(ef);
}

void Store::sync_ann(bool force_rebuild) {
  ensure_ann();
  bool rebuild = force_rebuild || !ann_usable_;
  if (!rebuild) {
    const int64_t behind = chunks_above(ann_->generation());
    const int64_t dead = ann_->rows() - (chunk_count() - behind);
    const int64_t rows_after = ann_->rows() + behind;
    rebuild = rows_after > 0 && static_cast<double>(dead) > kMaxDeadFraction * rows_after;
  }
  const int64_t base = rebuild ? 0 : ann_->generation();
  auto fresh = vectors_above(base);
  if (!rebuild && fresh.empty()) return;  // up to date
  if (rebuild) ann_ = std::make_unique<AnnIndex>(config_.dim, config_.ann);
  if (!fresh.empty()) {
    std::vector<float> flat;
    std::vector<int64_t> labels;
    flat.reserve(fresh.size() * static_cast<size_t>(config_.dim));
    for (auto& [id, v] : fresh) {
      labels.push_back(id);
      flat.insert(flat.end(), v.begin(), v.end());
    }
    ann_->add(flat, labels);
    ann_->set_generation(labels.back());
  }
  if (ef_search_ > 0) ann_->set_ef_search(ef_search_);
  ann_usable_ = true;
  ann_error_.clear();
  io::write_file_atomic(store_ann_path(dir_), ann_->serialize());
}

void Store::rebuild_ann() {
  LLMKIT_CHECK(mode_ == Mode::Write, "index: the database was opened for reading");
  sync_ann(true);
}

std::vector<AnnHit> Store::dense_search(std::span<const float> query, int64_t k,
                                        const std::vector<int64_t>* allowed, bool exact) {
  LLMKIT_CHECK(static_cast<int64_t>(query.size()) == config_.dim, "index: the query vector has ",
               query.size(), " values; the index holds ", config_.dim);
  LLMKIT_CHECK(k > 0, "index: k must be > 0");
  // A restrictive filter: the graph search would wade through nodes that do not pass and may
  // run out of candidates before k pass (FAISS's HNSW stops at efSearch); scanning the few
  // allowed vectors exactly is both faster and complete, as vector databases do.
  const bool small_filter = allowed != nullptr && allowed->size() <= kExactFilterLimit;
  if (!exact && !small_filter) ensure_ann();
  const int64_t covered = (!exact && !small_filter && ann_usable_) ? ann_->generation() : 0;
  // Which ANN rows may be returned: the allowed ones, else the live ones (HNSW keeps deleted
  // chunks). Without a filter and with no deleted row in the ANN, every row is live and no id
  // list is read; else a sorted id list answers membership.
  std::vector<int64_t> live_storage;
  const std::vector<int64_t>* live = allowed;
  int64_t in_ann = 0;
  if (live == nullptr && (covered == 0 || chunk_count() - chunks_above(covered) == ann_->rows())) {
    in_ann = covered > 0 ? ann_->rows() : 0;  // (every chunk above `covered` is read live)
  } else {
    if (live == nullptr) {
      live_storage = filter({});
      live = &live_storage;
    }
    in_ann =
        static_cast<int64_t>(std::upper_bound(live->begin(), live->end(), covered) - live->begin());
  }
  auto member = [live](int64_t id) {
    return live == nullptr || std::binary_search(live->begin(), live->end(), id);
  };
  std::vector<AnnHit> hits;
  if (covered > 0) {
    const int base_ef = ef_search_ > 0 ? ef_search_ : config_.ann.ef_search;
    const int64_t want = std::min<int64_t>(k, in_ann);
    // A filter can still leave the graph search short of k: widen the candidate list and retry.
    for (int ef = base_ef;; ef *= 4) {
      ann_->set_ef_search(ef);
      hits = ann_->search(query, k, member);
      if (static_cast<int64_t>(hits.size()) >= want || ef >= ann_->rows()) break;
    }
    ann_->set_ef_search(base_ef);
  }
  // The chunks the ANN file does not hold (or all allowed ones, for a small filter): exactly.
  std::vector<float> flat;
  std::vector<int64_t> labels;
  if (small_filter && !exact) {
    const auto vs = vectors(*allowed);
    for (size_t i = 0; i < vs.size(); ++i) {
      labels.push_back((*allowed)[i]);
      flat.insert(flat.end(), vs[i].begin(), vs[i].end());
    }
  } else {
    auto tail = vectors_above(covered);
    for (auto& [id, v] : tail) {
      if (!member(id)) continue;
      labels.push_back(id);
      flat.insert(flat.end(), v.begin(), v.end());
    }
  }
  if (!labels.empty()) {
    auto more = exact_search(flat, labels, query, k);
    hits.insert(hits.end(), more.begin(), more.end());
  }
  std::sort(hits.begin(), hits.end(), [](const AnnHit& a, const AnnHit& b) {
    return a.score != b.score ? a.score > b.score : a.label < b.label;
  });
  if (static_cast<int64_t>(hits.size()) > k) hits.resize(static_cast<size_t>(k));
  return hits;
}

std::vector<AnnHit> Store::bm25_search(std::string_view query, int64_t k,
                                       const std::vector<int64_t>* allowed) const {
  LLMKIT_CHECK(k > 0, "index: k must be > 0");
  const std::string match = fts_match_expression(query_terms(query));
  if (match.empty()) return {};
  std::vector<AnnHit> hits;
  if (allowed == nullptr) {
    Stmt s(db_, "SELECT rowid, bm25(fts) FROM fts WHERE fts MATCH ? ORDER BY bm25(fts) LIMIT ?");
    s.bind(1, match).bind(2, k);
    while (s.step()) hits.push_back({s.i64(0), static_cast<float>(-s.f64(1))});
    return hits;
  }
  // Filtered: rank all matches and keep the allowed ones, so that a filter never shrinks the
  // top-k to less than what passes.
  Stmt s(db_, "SELECT rowid, bm25(fts) FROM fts WHERE fts MATCH ? ORDER BY bm25(fts)");
  s.bind(1, match);
  while (s.step() && static_cast<int64_t>(hits.size()) < k) {
    const int64_t id = s.i64(0);
    if (std::binary_search(allowed->begin(), allowed->end(), id))
      hits.push_back({id, static_cast<float>(-s.f64(1))});
  }
  return hits;
}

}  // namespace llmkit::retrieval
