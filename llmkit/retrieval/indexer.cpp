// Files -> chunks -> embeddings -> the store (indexer.h).
#include "llmkit/retrieval/indexer.h"

#include <sys/stat.h>

#include <algorithm>
#include <ctime>
#include <filesystem>
#include <fstream>

#include "llmkit/core/error.h"
#include "llmkit/retrieval/chunker.h"
#include "llmkit/retrieval/extract.h"
#include "llmkit/tokenizer/unicode.h"

namespace llmkit::retrieval {
namespace {

namespace fs = std::filesystem;

// Chunks embedded together: enough to fill batches when files are small (one FAQ answer each).
constexpr size_t kEmbedGroup = 256;

uint64_t fnv1a(std::string_view s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

std::string file_date(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return "";
  std::tm tm{};
  gmtime_r(&st.st_mtime, &tm);
  char buf[16];
  std::strftime(buf, sizeof buf, "%Y-%m-%d", &tm);
  return buf;
}

bool readable_name(const fs::path& p) {
  std::string name = p.filename().string();
  if (name.size() > 3 && name.ends_with(".gz")) name.resize(name.size() - 3);
  const std::string ext = fs::path(name).extension().string();
  static const char* known[] = {".txt", ".text", ".md", ".markdown", ".html", ".htm", ".xhtml"};
  for (const char* k : known)
    if (ext == k) return true;
  // Man pages: .1 ... .9, with a suffix such as .3pm or .1ssl.
  if (ext.size() >= 2 && ext[1] >= '1' && ext[1] <= '9') return true;
  // README, NEWS, copyright...: plain text without an extension.
  return ext.empty() && !name.empty() && name[0] != '.';
}

// The chunk's text is its section's heading and nothing else.
bool is_heading_only(const std::string& heading_path, std::string_view text) {
  const std::string_view leaf = heading_leaf(heading_path);
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.remove_suffix(1);
  return !leaf.empty() && text == leaf;
}

}  // namespace

int64_t IndexEmbedder::count_tokens(std::string_view text) const {
  return static_cast<int64_t>(model.tokenizer->encode(text).size());
}

std::vector<std::vector<float>> IndexEmbedder::embed(std::span<const std::string> texts) const {
  return infer::embed_texts(*model.model, *model.tokenizer, texts, model.defaults.pooling,
                            /*normalize=*/true, max_len, batch);
}

IndexEmbedder load_index_embedder(const std::string& dir) {
  IndexEmbedder e;
  e.model = infer::load_embedder(dir);
  e.dir = dir;
  // 0 in the defaults: the model's own limit, as embed_texts reads it.
  e.max_len =
      e.model.defaults.max_len > 0 ? e.model.defaults.max_len : e.model.model->config().block_size;
  e.dim = e.model.model->config().n_embd;  // mean or [CLS] pooling keeps the hidden size
  return e;
}

std::vector<std::string> collect_files(const std::vector<std::string>& paths) {
  std::vector<std::string> out;
  for (const auto& p : paths) {
    std::error_code ec;
    const auto st = fs::status(p, ec);
    LLMKIT_CHECK(!ec && fs::exists(st), "index add: no such file or directory: ", p);
    if (fs::is_directory(st)) {
      std::vector<std::string> found;
      for (auto it = fs::recursive_directory_iterator(p, ec); !ec && it != fs::end(it);
           it.increment(ec))
        if (it->is_regular_file() && readable_name(it->path()))
          found.push_back(it->path().string());
      LLMKIT_CHECK(!ec, "index add: cannot read directory ", p, ": ", ec.message());
      std::sort(found.begin(), found.end());
      out.insert(out.end(), found.begin(), found.end());
    } else {
      out.push_back(p);
    }
  }
  return out;
}

std::vector<std::string> model_card_languages(const std::string& dir) {
  std::ifstream in(fs::path(dir) / "README.md");
  std::vector<std::string> out;
  std::string line;
  if (!std::getline(in, line) || line != "---") return out;
  auto trim = [](std::string s) {
    const auto a = s.find_first_not_of(" \t\r\"'");
    const auto b = s.find_last_not_of(" \t\r\"'");
    return a == std::string::npos ? std::string() : s.substr(a, b - a + 1);
  };
  bool in_list = false;
  while (std::getline(in, line) && line != "---") {
    if (in_list) {
      const std::string t = trim(line);
      if (t.rfind("- ", 0) == 0) {
        out.push_back(trim(t.substr(2)));
        continue;
      }
      in_list = false;
    }
    if (line.rfind("language:", 0) == 0) {
      const std::string v = trim(line.substr(9));
      if (v.empty())
        in_list = true;
      else
        out.push_back(v);
    }
  }
  return out;
}

std::string guess_language(std::string_view text) {
  int64_t hangul = 0, letters = 0;
  for (size_t i = 0; i < text.size();) {
    int len = 1;
    const int32_t cp = tokenizer::utf8_decode(text, i, len);
    i += static_cast<size_t>(len);
    if (cp < 0) continue;
    if (cp >= 0xAC00 && cp <= 0xD7A3) {
      ++hangul;
      ++letters;
    } else if (tokenizer::char_class(cp) == tokenizer::CharClass::kLetter) {
      ++letters;
    }
  }
  if (letters == 0) return "";
  return hangul * 5 >= letters ? "ko" : "en";
}

AddReport add_files(Store& store, const IndexEmbedder& embedder,
                    const std::vector<std::string>& files, const AddOptions& options,
                    const AddProgress& progress) {
  AddReport report;
  struct Pending {
    DocumentMeta meta;
    bool replaces = false;
    std::vector<ChunkInput> chunks;
  };
  std::vector<Pending> pending;
  size_t pending_chunks = 0;
  int64_t done = 0;
  const auto total = static_cast<int64_t>(files.size());
  auto flush = [&] {
    std::vector<std::string> texts;
    for (const auto& p : pending)
      for (const auto& c : p.chunks) texts.push_back(text_with_heading(c.place.heading, c.text));
    const auto vectors = embedder.embed(texts);
    size_t v = 0;
    for (auto& p : pending) {
      for (auto& c : p.chunks) c.vector = vectors[v++];
      store.add_document(p.meta, p.chunks);
      (p.replaces ? report.replaced : report.added) += 1;
      report.chunks += static_cast<int64_t>(p.chunks.size());
      ++done;
      if (progress) progress(done, total, report.chunks);
    }
    pending.clear();
    pending_chunks = 0;
  };
  const CountTokens count = [&](std::string_view s) { return embedder.count_tokens(s); };
  for (const auto& file : files) {
    ++report.files;
    const Extracted doc = extract_file(file);
    DocumentMeta meta;
    meta.path = fs::absolute(file).lexically_normal().string();
    meta.key = meta.path;
    meta.source = options.source;
    meta.title = doc.title.empty() ? fs::path(file).filename().string() : doc.title;
    meta.lang = !options.lang.empty() ? options.lang
                : !doc.lang.empty()   ? doc.lang.substr(0, doc.lang.find_first_of("-_"))
                                      : guess_language(doc.text);
    meta.date = options.date.empty() ? file_date(file) : options.date;
    meta.format = format_name(doc.format);
    meta.hash = fnv1a(doc.text);
    const auto old = store.find_document(meta.key);
    if (old && old->meta.hash == meta.hash && !options.force) {
      ++report.unchanged;
      ++done;
      if (progress) progress(done, total, report.chunks);
      continue;
    }
    Pending p;
    p.meta = meta;
    p.replaces = old.has_value();
    for (const Chunk& c : chunk_text(doc, count, store.config().chunking)) {
      std::string text = doc.text.substr(c.begin, c.end - c.begin);
      // A section with nothing but its heading (a chapter title before its first subsection)
      // gives a chunk that is only that title: it would match every question about the chapter
      // and answer none. Its heading still leads the chunks that follow.
      if (is_heading_only(c.heading, text)) continue;
      p.chunks.push_back({c, std::move(text), {}});
    }
    if (p.chunks.empty()) {
      // Nothing to search in it; an old version of it goes.
      if (old) store.delete_document(meta.key);
      ++report.empty;
      ++done;
      if (progress) progress(done, total, report.chunks);
      continue;
    }
    pending_chunks += p.chunks.size();
    pending.push_back(std::move(p));
    if (pending_chunks >= kEmbedGroup) flush();
  }
  if (!pending.empty()) flush();
  return report;
}

}  // namespace llmkit::retrieval
