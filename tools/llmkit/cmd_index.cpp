// `llmkit index create|add|delete|search|stats|list|rebuild`: the vector database of
// llmkit/retrieval (store.h) from the command line. Each writing command is one transaction: an
// interrupted `add` leaves the index as it was, and running it again adds the files.
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <memory>

#include "llmkit/retrieval/indexer.h"
#include "llmkit/retrieval/search.h"
#include "llmkit/tokenizer/unicode.h"
#include "tools/llmkit/command.h"

namespace {

using namespace llmkit::retrieval;
using Clock = std::chrono::steady_clock;

struct Args {
  std::string db, model, source, lang, date, query, mode = "hybrid", rerank = "none";
  std::vector<std::string> files, docs, filters, embedder_langs;
  int64_t chunk_tokens = 200, overlap = 32, k = 5, batch = 32, candidates = 50;
  double mmr_lambda = 0.7, dense_weight = -1;
  int ann_m = 32, ef_construction = 128, ef_search = 64, ef = 0;
  bool force = false, json = false, exact = false;
};

// One line of at most `max_bytes` bytes of `text` (whitespace runs become one space), cut at a
// character boundary, with "..." when cut.
std::string excerpt(const std::string& text, size_t max_bytes) {
  std::string out;
  bool space = false;
  for (char c : text) {
    if (c == '\n' || c == '\t' || c == '\r' || c == ' ') {
      space = !out.empty();
      continue;
    }
    if (space) out += ' ';
    space = false;
    out += c;
  }
  if (out.size() <= max_bytes) return out;
  size_t cut = max_bytes;
  while (cut > 0 && (static_cast<unsigned char>(out[cut]) & 0xC0) == 0x80) --cut;
  return out.substr(0, cut) + "...";
}

std::string position(const ChunkRecord& c) {
  return c.path + ":" + std::to_string(c.first_line) + "-" + std::to_string(c.last_line);
}

std::vector<Condition> conditions(const std::vector<std::string>& filters) {
  std::vector<Condition> out;
  for (const auto& f : filters) out.push_back(parse_condition(f));
  return out;
}

void run_create(const Args& a) {
  std::fprintf(stderr, "index create: loading the embedder %s\n", a.model.c_str());
  const IndexEmbedder e = load_index_embedder(a.model);
  StoreConfig c;
  c.embedder = a.model;
  c.embedder_languages =
      a.embedder_langs.empty() ? model_card_languages(a.model) : a.embedder_langs;
  c.dim = e.dim;
  c.chunking = {a.chunk_tokens, a.overlap};
  LLMKIT_CHECK(a.overlap < a.chunk_tokens, "index create: --overlap (", a.overlap,
               ") must be less than --chunk-tokens (", a.chunk_tokens, ")");
  LLMKIT_CHECK(a.chunk_tokens + 2 <= e.max_len, "index create: --chunk-tokens ", a.chunk_tokens,
               " does not fit the embedder's ", e.max_len, " tokens with [CLS] and [SEP]");
  c.ann = {a.ann_m, a.ef_construction, a.ef_search};
  Store::create(a.db, c);
  std::printf("created %s: embedder %s (%lld dims), chunks of <= %lld tokens, overlap %lld\n",
              a.db.c_str(), a.model.c_str(), static_cast<long long>(e.dim),
              static_cast<long long>(a.chunk_tokens), static_cast<long long>(a.overlap));
}

void run_add(const Args& a) {
  Store store = Store::open(a.db, Store::Mode::Write);
  const std::vector<std::string> files = collect_files(a.files);
  LLMKIT_CHECK(!files.empty(), "index add: no readable files under the given paths");
  IndexEmbedder e = load_index_embedder(a.model.empty() ? store.config().embedder : a.model);
  LLMKIT_CHECK(e.dim == store.config().dim, "index add: the embedder makes ", e.dim,
               "-dim vectors; the index holds ", store.config().dim);
  e.batch = a.batch;
  AddOptions o{a.source, a.lang, a.date, a.force};
  const auto t0 = Clock::now();
  auto last = t0;
  bool printed = false;
  store.begin();
  const AddReport r = add_files(store, e, files, o, [&](int64_t done, int64_t total, int64_t n) {
    const auto now = Clock::now();
    // The first group's line at once (the transaction is then open and writing), then one
    // every 2 s.
    if (done < total && printed && now - last < std::chrono::seconds(2)) return;
    printed = true;
    last = now;
    const double s = std::chrono::duration<double>(now - t0).count();
    std::fprintf(stderr, "index add: %lld/%lld files, %lld chunks, %.1f chunks/s\n",
                 static_cast<long long>(done), static_cast<long long>(total),
                 static_cast<long long>(n), n / std::max(s, 1e-9));
  });
  std::fprintf(stderr, "index add: committing and updating the ANN index\n");
  store.commit();
  const double s = std::chrono::duration<double>(Clock::now() - t0).count();
  std::printf(
      "%lld files: %lld added, %lld replaced, %lld unchanged, %lld without text; "
      "%lld chunks in %.1f s\n",
      static_cast<long long>(r.files), static_cast<long long>(r.added),
      static_cast<long long>(r.replaced), static_cast<long long>(r.unchanged),
      static_cast<long long>(r.empty), static_cast<long long>(r.chunks), s);
}

void run_delete(const Args& a) {
  Store store = Store::open(a.db, Store::Mode::Write);
  store.begin();
  std::vector<std::string> missing;
  for (const auto& d : a.docs)
    if (!store.delete_document(d)) missing.push_back(d);
  LLMKIT_CHECK(missing.empty(), "index delete: no document '", missing.front(),
               "' (see `llmkit index list`); nothing was deleted");
  store.commit();
  std::printf("deleted %zu document(s)\n", a.docs.size());
}

void run_search(const Args& a) {
  Store store = Store::open(a.db, Store::Mode::Read);
  SearchOptions o;
  o.k = a.k;
  o.mode = parse_search_mode(a.mode);
  o.filters = conditions(a.filters);
  o.candidates = a.candidates;
  o.exact = a.exact;
  o.ef_search = a.ef;
  o.mmr = a.rerank == "mmr";
  o.mmr_lambda = a.mmr_lambda;
  o.dense_weight = a.dense_weight;
  if (bm25_alone_for_language(store, a.query, o))
    std::fprintf(stderr,
                 "index search: the embedder was trained on %s only; this query is ranked by "
                 "BM25 alone (--dense-weight to change that)\n",
                 store.config().embedder_languages.front().c_str());
  std::vector<float> qv;
  if (o.mode != SearchMode::Bm25 || o.mmr) {
    const IndexEmbedder e =
        load_index_embedder(a.model.empty() ? store.config().embedder : a.model);
    LLMKIT_CHECK(e.dim == store.config().dim, "index search: the embedder makes ", e.dim,
                 "-dim vectors; the index holds ", store.config().dim);
    qv = e.embed(std::vector<std::string>{a.query}).at(0);
  }
  const auto hits = search(store, a.query, qv, o);
  int rank = 0;
  for (const auto& h : hits) {
    ++rank;
    if (a.json) {
      nlohmann::json j = {{"rank", rank},
                          {"score", h.score},
                          {"cosine", h.cosine},
                          {"bm25", h.bm25},
                          {"dense_rank", h.dense_rank},
                          {"bm25_rank", h.bm25_rank},
                          {"chunk", h.chunk.id},
                          {"doc", h.chunk.doc_key},
                          {"path", h.chunk.path},
                          {"first_line", h.chunk.first_line},
                          {"last_line", h.chunk.last_line},
                          {"heading", h.chunk.heading},
                          {"source", h.chunk.source},
                          {"lang", h.chunk.lang},
                          {"date", h.chunk.date},
                          {"text", h.chunk.text}};
      std::puts(j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
    } else {
      std::printf("%d\t%.4f\t%s\t%s%s%s\n", rank, h.score, position(h.chunk).c_str(),
                  h.chunk.heading.empty() ? "" : "§ ", h.chunk.heading.c_str(),
                  ("\t" + excerpt(h.chunk.text, 160)).c_str());
    }
  }
  if (hits.empty()) std::fprintf(stderr, "index search: no hits\n");
}

void run_stats(const Args& a) {
  Store store = Store::open(a.db, Store::Mode::Read);
  const StoreStats s = store.stats();
  const auto& c = store.config();
  if (a.json) {
    nlohmann::json j = {{"documents", s.documents},
                        {"chunks", s.chunks},
                        {"ann_rows", s.ann_rows},
                        {"ann_dead", s.ann_dead},
                        {"ann_behind", s.ann_behind},
                        {"ann_missing", s.ann_missing},
                        {"db_bytes", s.db_bytes},
                        {"ann_bytes", s.ann_bytes},
                        {"embedder", c.embedder},
                        {"dim", c.dim},
                        {"chunk_tokens", c.chunking.max_tokens},
                        {"overlap_tokens", c.chunking.overlap_tokens}};
    std::puts(j.dump().c_str());
    return;
  }
  std::printf("documents   %lld\nchunks      %lld\n", static_cast<long long>(s.documents),
              static_cast<long long>(s.chunks));
  if (s.ann_missing)
    std::printf(
        "ann index   not usable (%s): searches scan all vectors exactly until the next "
        "write or `index rebuild`\n",
        s.ann_error.c_str());
  else
    std::printf("ann index   %lld rows (%lld of deleted chunks), %lld chunks not yet in it\n",
                static_cast<long long>(s.ann_rows), static_cast<long long>(s.ann_dead),
                static_cast<long long>(s.ann_behind));
  std::printf("files       %.1f MB database, %.1f MB ANN index\n", s.db_bytes / 1e6,
              s.ann_bytes / 1e6);
  std::printf("embedder    %s (%lld dims)\nchunking    <= %lld tokens, overlap %lld\n",
              c.embedder.c_str(), static_cast<long long>(c.dim),
              static_cast<long long>(c.chunking.max_tokens),
              static_cast<long long>(c.chunking.overlap_tokens));
  std::printf("hnsw        M %d, efConstruction %d, efSearch %d\n", c.ann.m, c.ann.ef_construction,
              c.ann.ef_search);
}

void run_list(const Args& a) {
  Store store = Store::open(a.db, Store::Mode::Read);
  for (const auto& d : store.documents())
    std::printf("%lld\t%lld chunks\t%s\t%s\t%s\t%s\n", static_cast<long long>(d.id),
                static_cast<long long>(d.chunks), d.meta.lang.c_str(), d.meta.date.c_str(),
                d.meta.source.c_str(), d.meta.key.c_str());
}

void run_rebuild(const Args& a) {
  Store store = Store::open(a.db, Store::Mode::Write);
  const auto t0 = Clock::now();
  store.rebuild_ann();
  std::printf("rebuilt the ANN index of %s in %.1f s\n", a.db.c_str(),
              std::chrono::duration<double>(Clock::now() - t0).count());
}

}  // namespace

LLMKIT_COMMAND(
    {"index",
     "A vector database of documents: create, add files, delete, search (BM25, dense, hybrid), "
     "stats",
     [](CLI::App& sub) {
       auto a = std::make_shared<Args>();
       sub.require_subcommand(1);
       auto db = [&](CLI::App* c) {
         c->add_option("--db", a->db, "the index directory")->required();
       };
       auto chosen = std::make_shared<std::function<void()>>();
       auto on = [chosen, a](CLI::App* c, void (*fn)(const Args&)) {
         c->callback([chosen, a, fn] { *chosen = [a, fn] { fn(*a); }; });
       };

       auto* create = sub.add_subcommand("create", "Make an empty index for an embedder");
       db(create);
       create
           ->add_option("--model", a->model,
                        "the embedding model directory (e.g. all-MiniLM-L6-v2); its vectors "
                        "are stored, so every later command uses the same model")
           ->required();
       create
           ->add_option("--embedder-lang", a->embedder_langs,
                        "languages the embedder knows (default: its model card's language:); "
                        "hybrid search ranks queries in other languages by BM25 alone")
           ->delimiter(',');
       create->add_option("--chunk-tokens", a->chunk_tokens, "largest chunk, in embedder tokens")
           ->capture_default_str()
           ->check(CLI::Range(int64_t{8}, int64_t{1} << 20));
       create
           ->add_option("--overlap", a->overlap,
                        "tokens a chunk shares with the previous one (whole sentences)")
           ->capture_default_str()
           ->check(CLI::Range(int64_t{0}, int64_t{1} << 20));
       create->add_option("--ann-m", a->ann_m, "HNSW neighbours per node")
           ->capture_default_str()
           ->check(CLI::Range(4, 256));
       create->add_option("--ef-construction", a->ef_construction, "HNSW build candidate list")
           ->capture_default_str()
           ->check(CLI::Range(8, 4096));
       create->add_option("--ef-search", a->ef_search, "HNSW search candidate list")
           ->capture_default_str()
           ->check(CLI::Range(1, 65536));
       on(create, run_create);

       auto* add = sub.add_subcommand(
           "add", "Add files or directories (text, Markdown, HTML, man pages; .gz too)");
       db(add);
       add->add_option("files", a->files, "files and directories (recursively)")->required();
       add->add_option("--source", a->source, "a collection label for filters (source=...)");
       add->add_option("--lang", a->lang,
                       "language for filters (default: HTML lang, else guessed)");
       add->add_option("--date", a->date, "date for filters, YYYY-MM-DD (default: file mtime)");
       add->add_flag("--force", a->force, "re-embed files whose text is unchanged");
       add->add_option("--model", a->model, "the embedder (default: the one given at create)");
       add->add_option("--batch-size", a->batch, "chunks per embedding forward pass")
           ->capture_default_str()
           ->check(CLI::Range(int64_t{1}, int64_t{4096}));
       on(add, run_add);

       auto* del = sub.add_subcommand("delete", "Delete documents by key (their path) or id");
       db(del);
       del->add_option("--doc", a->docs, "a document key or id (repeatable)")->required();
       on(del, run_delete);

       auto* search = sub.add_subcommand("search", "The chunks that best match a query");
       db(search);
       search->add_option("--query,-q", a->query, "the query")->required();
       search->add_option("--k,-k", a->k, "hits to show")
           ->capture_default_str()
           ->check(CLI::Range(int64_t{1}, int64_t{10000}));
       search->add_option("--mode", a->mode, "bm25 | dense | hybrid (reciprocal-rank fusion)")
           ->capture_default_str()
           ->check(CLI::IsMember({"bm25", "dense", "hybrid"}));
       search->add_option("--filter", a->filters,
                          "KEY OP VALUE, repeatable, all must hold: KEY doc|path|source|title|"
                          "lang|date|format, OP = != < <= > >= or ~ (glob), e.g. lang=ko, "
                          "date>=2024-01-01, path~*FAQ*");
       search->add_option("--candidates", a->candidates, "depth of each ranking before fusion")
           ->capture_default_str()
           ->check(CLI::Range(int64_t{1}, int64_t{100000}));
       search
           ->add_option("--rerank", a->rerank,
                        "none | mmr: maximal marginal relevance over the candidates, so that "
                        "near-duplicate chunks do not fill the top k")
           ->capture_default_str()
           ->check(CLI::IsMember({"none", "mmr"}));
       search
           ->add_option("--mmr-lambda", a->mmr_lambda,
                        "MMR's weight of relevance against novelty (1 = relevance only)")
           ->capture_default_str()
           ->check(llmkit::cli::number_in(0, 1));
       search
           ->add_option("--dense-weight", a->dense_weight,
                        "weight of the dense ranking in hybrid fusion (BM25's is 1; default: 1, "
                        "or 0 for a query in a language the embedder does not know)")
           ->check(llmkit::cli::number_in(0, 100));
       search->add_flag("--exact", a->exact, "dense ranking by exact search (no ANN)");
       search->add_option("--ef", a->ef, "HNSW search candidate list (default: the index's)")
           ->check(CLI::Range(1, 65536));
       search->add_option("--model", a->model, "the embedder (default: the one given at create)");
       search->add_flag("--json", a->json, "JSON lines with every field");
       on(search, run_search);

       auto* stats = sub.add_subcommand("stats", "Counts, sizes and the ANN index's state");
       db(stats);
       stats->add_flag("--json", a->json, "one JSON object");
       on(stats, run_stats);

       auto* list =
           sub.add_subcommand("list", "The documents: id, chunks, lang, date, source, key");
       db(list);
       on(list, run_list);

       auto* rebuild = sub.add_subcommand("rebuild", "Rebuild the ANN index from the database");
       db(rebuild);
       on(rebuild, run_rebuild);

       return [chosen] { (*chosen)(); };
     }});
