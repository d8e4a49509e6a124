// Streaming the training files and counting pre-tokens. Each block is cut at safe points into one
// part per thread; every thread counts into its own table (no locks), and the tables are merged
// once at the end, so memory follows the number of distinct words, not the corpus size.
#include "llmkit/tokenizer/corpus.h"

#include <filesystem>
#include <fstream>

#include "llmkit/core/error.h"
#include "llmkit/core/parallel.h"
#include "llmkit/tokenizer/hash_table.h"
#include "llmkit/tokenizer/pretokenizer.h"
#include "llmkit/tokenizer/unicode.h"

namespace llmkit::tokenizer {

namespace {

constexpr size_t kBlockBytes = 16 << 20;

// The last safe cut at or after `from`, or npos.
size_t last_safe_cut(std::string_view s, size_t from) {
  size_t last = std::string_view::npos;
  for (size_t c = gpt2_safe_cut(s, from); c != std::string_view::npos; c = gpt2_safe_cut(s, c + 1))
    last = c;
  return last;
}

struct WordTable {
  StringIndex index{1 << 14};
  std::vector<std::string> words;
  std::vector<int64_t> counts;

  void add(std::string_view w, int64_t c) {
    const uint64_t h = hash_bytes(w);
    int32_t id = index.find(w, h);
    if (id < 0) {
      id = static_cast<int32_t>(words.size());
      index.insert(w, h, id);
      words.emplace_back(w);
      counts.push_back(0);
    }
    counts[id] += c;
  }
};

// Counts the words of one block into tables[0..nt), one part per thread.
void count_block(std::string_view block, bool jamo, std::vector<WordTable>& tables) {
  const size_t nt = tables.size();
  std::vector<size_t> cuts{0};
  for (size_t k = 1; k < nt; ++k) {
    const size_t c = gpt2_safe_cut(block, std::max(cuts.back() + 1, block.size() * k / nt));
    if (c == std::string_view::npos) break;
    cuts.push_back(c);
  }
  cuts.push_back(block.size());
  parallel_for(static_cast<int64_t>(cuts.size() - 1), 1, [&](int64_t b, int64_t e) {
    for (int64_t k = b; k < e; ++k) {
      std::string_view part = block.substr(cuts[k], cuts[k + 1] - cuts[k]);
      std::string decomposed;
      if (jamo) decomposed = decompose_hangul(part), part = decomposed;
      gpt2_split(part, [&](std::string_view w) { tables[k].add(w, 1); });
    }
  });
}

WordCounts merge_tables(std::vector<WordTable>& tables, int64_t n_bytes) {
  WordTable& all = tables[0];
  for (size_t k = 1; k < tables.size(); ++k) {
    for (size_t i = 0; i < tables[k].words.size(); ++i)
      all.add(tables[k].words[i], tables[k].counts[i]);
    tables[k] = WordTable{};
  }
  WordCounts out;
  out.words = std::move(all.words);
  out.counts = std::move(all.counts);
  out.n_bytes = n_bytes;
  return out;
}

void warn(const TrainOptions& options, const std::string& what) {
  if (options.on_warning) options.on_warning(what);
}

}  // namespace

void read_corpus(std::span<const std::string> files, size_t block_bytes,
                 const TrainOptions& options, const std::function<void(const CorpusBlock&)>& fn) {
  int64_t total = 0, done = 0;
  for (const std::string& f : files) {
    std::error_code ec;
    const auto size = std::filesystem::file_size(f, ec);
    if (ec) fail(f, ": cannot read the file (", ec.message(), ")");
    total += static_cast<int64_t>(size);
  }
  for (size_t fi = 0; fi < files.size(); ++fi) {
    std::ifstream in(files[fi], std::ios::binary);
    if (!in) fail(files[fi], ": cannot open the file");
    std::string buf;
    int64_t offset = 0;
    bool eof = false;
    while (!eof || !buf.empty()) {
      if (!eof) {
        const size_t old = buf.size();
        buf.resize(old + block_bytes);
        in.read(buf.data() + old, static_cast<std::streamsize>(block_bytes));
        buf.resize(old + static_cast<size_t>(in.gcount()));
        if (in.bad()) fail(files[fi], ": read failed");
        eof = buf.size() < old + block_bytes;
      }
      size_t cut = buf.size();
      if (!eof) {
        cut = last_safe_cut(buf, buf.size() > (1 << 16) ? buf.size() - (1 << 16) : 0);
        if (cut == std::string_view::npos) cut = last_safe_cut(buf, 0);
        if (cut == std::string_view::npos) continue;  // no cut yet: read more
      }
      if (cut > 0) fn(CorpusBlock{std::string_view(buf).substr(0, cut), fi, offset});
      done += static_cast<int64_t>(cut);
      offset += static_cast<int64_t>(cut);
      buf.erase(0, cut);
      if (options.on_progress) options.on_progress({"read", done, total});
    }
    if (offset == 0) warn(options, files[fi] + ": the file is empty");
  }
}

WordCounts count_words(std::span<const std::string> files, const TrainOptions& options) {
  std::vector<WordTable> tables(std::max(1, num_threads()));
  std::vector<bool> warned(files.size(), false);
  int64_t n_bytes = 0;
  read_corpus(files, kBlockBytes, options, [&](const CorpusBlock& b) {
    const int64_t bad = warned[b.file] ? -1 : utf8_find_invalid(b.text);
    if (bad >= 0) {
      warned[b.file] = true;
      warn(options, files[b.file] + ": invalid UTF-8 at byte " + std::to_string(b.offset + bad) +
                        " (kept as raw bytes; later ones in this file are not reported)");
    }
    count_block(b.text, options.hangul_to_jamo, tables);
    n_bytes += static_cast<int64_t>(b.text.size());
  });
  return merge_tables(tables, n_bytes);
}

WordCounts count_words_in_text(std::string_view text, const TrainOptions& options) {
  std::vector<WordTable> tables(std::max(1, num_threads()));
  const int64_t bad = utf8_find_invalid(text);
  if (bad >= 0) warn(options, "text: invalid UTF-8 at byte " + std::to_string(bad));
  count_block(text, options.hangul_to_jamo, tables);
  return merge_tables(tables, static_cast<int64_t>(text.size()));
}

}  // namespace llmkit::tokenizer
