// Chunking (chunker.h). A document is cut at its headings into sections; a section's text into
// "atoms": whole sentences, or token-bounded pieces of a sentence too long for one chunk. A chunk
// is then a contiguous run of atoms, so the overlap with the previous chunk is simply a run that
// starts a few atoms before the previous one ended.
//
// Cost: the tokenizer sees each sentence once, each piece of an over-long sentence O(log) times,
// and each finished chunk once more (a sum of atom counts is only an estimate for tokenizers
// that merge across the seams, so the real count decides and the chunk gives back atoms when
// it is over), so the work is linear in the text, never in (text x chunks).
// Not here: extraction (extract.cpp), embedding, storage.
#include "llmkit/retrieval/chunker.h"

#include <algorithm>

#include "llmkit/core/error.h"
#include "llmkit/retrieval/extract_internal.h"

namespace llmkit::retrieval {

namespace {

using detail::is_blank;

bool is_continuation(char c) {
  return (static_cast<uint8_t>(c) & 0xC0) == 0x80;
}

struct Atom {
  size_t begin = 0, end = 0;  // byte range in the text, non-blank at both ends
  int64_t tokens = 0;
  bool sentence = true;  // a whole sentence (only those are repeated as overlap)
  bool paragraph_first = false;
  size_t paragraph_end = 0;      // for a paragraph's first atom: one past its last atom
  int64_t paragraph_tokens = 0;  // and the sum of its atoms' tokens
};

class Chunker {
 public:
  Chunker(const std::string& text, const CountTokens& count, const ChunkOptions& options)
      : text_(text), count_(count), max_(options.max_tokens), overlap_(options.overlap_tokens) {
    line_starts_.push_back(0);
    for (size_t i = 0; i < text_.size(); ++i) {
      if (text_[i] == '\n') line_starts_.push_back(i + 1);
    }
  }

  // Chunks the section text_[begin, end) under `heading` into out.
  void section(size_t begin, size_t end, const std::string& heading, std::vector<Chunk>& out) {
    atoms_.clear();
    paragraphs(begin, end);
    pack(heading, out);
  }

 private:
  int64_t count(size_t begin, size_t end) const {
    return count_(std::string_view(text_).substr(begin, end - begin));
  }

  size_t trim_end(size_t begin, size_t end) const {
    while (end > begin && is_blank(text_[end - 1])) --end;
    return end;
  }

  // Splits [begin, end) into paragraphs at blank lines, and each paragraph into atoms.
  void paragraphs(size_t begin, size_t end) {
    size_t para_begin = std::string::npos;  // first non-blank byte of the open paragraph
    size_t pos = begin;
    while (pos < end) {
      const size_t line_end = std::min(text_.find('\n', pos), end);
      size_t first = pos;
      while (first < line_end && is_blank(text_[first])) ++first;
      if (first == line_end) {  // a blank line closes the paragraph
        if (para_begin != std::string::npos) paragraph(para_begin, trim_end(para_begin, pos));
        para_begin = std::string::npos;
      } else if (para_begin == std::string::npos) {
        para_begin = first;
      }
      pos = line_end + 1;
    }
    if (para_begin != std::string::npos) paragraph(para_begin, trim_end(para_begin, end));
  }

  void paragraph(size_t begin, size_t end) {
    const size_t first = atoms_.size();
    size_t start = begin;
    for (size_t i = begin; i < end; ++i) {
      const size_t stop = sentence_end(text_, i, end);
      if (stop == std::string::npos) continue;
      sentence(start, stop);
      start = stop;
      while (start < end && is_blank(text_[start])) ++start;
      i = start - 1;  // the loop's ++i lands on the next sentence's first byte
    }
    if (start < end) sentence(start, end);
    if (atoms_.size() == first) return;
    Atom& head = atoms_[first];
    head.paragraph_first = true;
    head.paragraph_end = atoms_.size();
    for (size_t k = first; k < atoms_.size(); ++k) head.paragraph_tokens += atoms_[k].tokens;
  }

  void sentence(size_t begin, size_t end) {
    end = trim_end(begin, end);
    if (end <= begin) return;
    const int64_t tokens = count(begin, end);
    if (tokens <= max_) {
      atoms_.push_back({.begin = begin, .end = end, .tokens = tokens});
    } else {
      split_by_tokens(begin, end);
    }
  }

  size_t next_char(size_t i) const {
    ++i;
    while (i < text_.size() && is_continuation(text_[i])) ++i;
    return i;
  }

  // A sentence longer than a chunk, cut into pieces of at most max_ tokens: for each piece the
  // longest prefix that fits (galloping then binary search over character boundaries, so the
  // tokenizer never sees much more than a piece), moved back to a blank when one lies in the
  // piece's second half so that words stay whole.
  void split_by_tokens(size_t begin, size_t end) {
    size_t p = begin;
    while (p < end) {
      while (p < end && is_blank(text_[p])) ++p;
      if (p >= end) break;
      const int64_t rest = count(p, end);
      if (rest <= max_) {
        atoms_.push_back({.begin = p, .end = end, .tokens = rest, .sentence = false});
        break;
      }
      size_t fits = p + token_prefix_end(std::string_view(text_).substr(p, end - p), max_, count_,
                                         static_cast<size_t>(std::max<int64_t>(64, 4 * max_)));
      if (fits == p) fits = next_char(p);  // a single character over the limit: still progress
      size_t cut = fits;
      for (size_t k = fits; k > p + (fits - p) / 2; --k) {
        if (is_blank(text_[k])) {
          cut = k;
          break;
        }
      }
      size_t piece_end = trim_end(p, cut);
      int64_t tokens = count(p, piece_end);
      if (tokens > max_) {  // a tokenizer whose counts are not monotone in the prefix
        piece_end = trim_end(p, fits);
        cut = fits;
        tokens = count(p, piece_end);
      }
      atoms_.push_back({.begin = p, .end = piece_end, .tokens = tokens, .sentence = false});
      p = cut;
    }
  }

  // Greedy packing: whole paragraphs while they fit, else sentence by sentence; a new chunk
  // starts with the previous chunk's last whole sentences (<= overlap_ tokens).
  void pack(const std::string& heading, std::vector<Chunk>& out) {
    const size_t n = atoms_.size();
    if (n == 0) return;
    size_t s = 0, fresh = 0, e = 0;  // the chunk is atoms [s, e); [s, fresh) is the overlap
    int64_t estimate = 0;
    while (true) {
      if (e < n) {
        const Atom& a = atoms_[e];
        const bool whole = a.paragraph_first && a.paragraph_tokens <= max_;
        const int64_t need = whole ? a.paragraph_tokens : a.tokens;
        if (estimate + need <= max_) {
          const size_t step_end = whole ? a.paragraph_end : e + 1;
          for (size_t k = e; k < step_end; ++k) estimate += atoms_[k].tokens;
          e = step_end;
          continue;
        }
        if (e == fresh) {
          // The overlap leaves no room for the next atom: shorten it. An atom alone always fits
          // (split_by_tokens), so this ends before the overlap is gone.
          LLMKIT_CHECK(s < e, "chunk_text: an atom of ", need, " tokens exceeds max_tokens ", max_);
          estimate -= atoms_[s++].tokens;
          continue;
        }
      }
      // The chunk is full, or the section is done. emit() may hand atoms back (when the real
      // count is over the estimate); packing then goes on from there.
      e = emit(s, fresh, e, heading, out);  // may also move s past overlap it dropped
      if (e == n) break;
      s = overlap_start(s, e);
      fresh = e;
      estimate = 0;
      for (size_t k = s; k < e; ++k) estimate += atoms_[k].tokens;
    }
  }

  // The first atom of the overlap after a chunk ending at e: the longest run of whole sentences
  // before e within overlap_ tokens, never the whole chunk [s, e).
  size_t overlap_start(size_t s, size_t e) const {
    size_t k = e;
    int64_t total = 0;
    while (k > s + 1 && atoms_[k - 1].sentence && total + atoms_[k - 1].tokens <= overlap_) {
      total += atoms_[k - 1].tokens;
      --k;
    }
    return k;
  }

  // Adds the chunk atoms [s, e) to out after counting its real tokens; when the real count is
  // over the limit the chunk gives back atoms (its last fresh ones, then its overlap). Returns
  // the end actually used; s becomes the start actually used.
  size_t emit(size_t& s, size_t fresh, size_t e, const std::string& heading,
              std::vector<Chunk>& out) const {
    int64_t tokens = count(atoms_[s].begin, atoms_[e - 1].end);
    while (tokens > max_ && e - s > 1) {
      if (e - 1 > fresh) {
        --e;
      } else {
        ++s;
      }
      tokens = count(atoms_[s].begin, atoms_[e - 1].end);
    }
    Chunk c;
    c.begin = atoms_[s].begin;
    c.end = atoms_[e - 1].end;
    c.first_line = line_of(c.begin);
    c.last_line = line_of(c.end - 1);
    c.heading = heading;
    c.tokens = tokens;
    out.push_back(std::move(c));
    return e;
  }

  int64_t line_of(size_t pos) const {
    return std::upper_bound(line_starts_.begin(), line_starts_.end(), pos) - line_starts_.begin();
  }

  const std::string& text_;
  const CountTokens& count_;
  const int64_t max_, overlap_;
  std::vector<size_t> line_starts_;  // byte offset of each line's first character
  std::vector<Atom> atoms_;          // of the current section
};

}  // namespace

std::vector<Chunk> chunk_text(const Extracted& doc, const CountTokens& count_tokens,
                              const ChunkOptions& options) {
  LLMKIT_CHECK(options.max_tokens >= 8, "chunk_text: max_tokens must be at least 8, got ",
               options.max_tokens);
  LLMKIT_CHECK(options.overlap_tokens >= 0 && options.overlap_tokens < options.max_tokens,
               "chunk_text: overlap_tokens must be in [0, max_tokens = ", options.max_tokens,
               "), got ", options.overlap_tokens);
  LLMKIT_CHECK(static_cast<bool>(count_tokens), "chunk_text: no token counter given");
  const std::string& text = doc.text;
  for (size_t k = 0; k < doc.headings.size(); ++k) {
    LLMKIT_CHECK(doc.headings[k].offset <= text.size() &&
                     (k == 0 || doc.headings[k - 1].offset <= doc.headings[k].offset),
                 "chunk_text: heading ", k, " (\"", doc.headings[k].text, "\") at offset ",
                 doc.headings[k].offset, " is out of order or past the text (", text.size(),
                 " bytes)");
  }
  std::vector<Chunk> out;
  Chunker chunker(text, count_tokens, options);
  // Sections: [0, first heading), then from each heading to the next. The path holds the
  // enclosing headings, one per level above the current one.
  std::vector<const Heading*> path;
  std::string path_text;
  size_t begin = 0;
  for (size_t k = 0; k <= doc.headings.size(); ++k) {
    const size_t end = k < doc.headings.size() ? doc.headings[k].offset : text.size();
    if (end > begin) chunker.section(begin, end, path_text, out);
    if (k == doc.headings.size()) break;
    const Heading& h = doc.headings[k];
    while (!path.empty() && path.back()->level >= h.level) path.pop_back();
    path.push_back(&h);
    path_text.clear();
    for (const Heading* p : path) path_text += (path_text.empty() ? "" : " > ") + p->text;
    begin = std::max(begin, end);
  }
  return out;
}

}  // namespace llmkit::retrieval

namespace llmkit::retrieval {

size_t token_prefix_end(std::string_view text, int64_t max_tokens, const CountTokens& count_tokens,
                        size_t first_step) {
  const size_t n = text.size();
  auto start_at_or_before = [&](size_t i) {
    while (i > 0 && i < n && is_continuation(text[i])) --i;
    return i;
  };
  auto next_char = [&](size_t i) {
    ++i;
    while (i < n && is_continuation(text[i])) ++i;
    return i;
  };
  auto fits_in = [&](size_t c) { return count_tokens(text.substr(0, c)) <= max_tokens; };
  size_t fits = 0;  // fits_in(fits)
  size_t over = n;  // !fits_in(over): the whole text does not fit (the caller checked)
  for (size_t step = std::max<size_t>(first_step, 1);; step *= 2) {
    const size_t c = start_at_or_before(std::min(step, n));
    if (c >= n) break;
    if (!fits_in(c)) {
      over = c;
      break;
    }
    fits = c;
  }
  while (next_char(fits) < over) {
    size_t mid = start_at_or_before(fits + (over - fits) / 2);
    if (mid <= fits) mid = next_char(fits);
    if (fits_in(mid)) {
      fits = mid;
    } else {
      over = mid;
    }
  }
  return fits;
}

std::string_view heading_leaf(std::string_view heading_path) {
  const size_t sep = heading_path.rfind(" > ");
  return sep == std::string_view::npos ? heading_path : heading_path.substr(sep + 3);
}

size_t sentence_end(std::string_view text, size_t i, size_t end) {
  const char c = text[i];
  if (c == '.' || c == '!' || c == '?') {
    size_t j = i + 1;
    while (j < end && (text[j] == '"' || text[j] == '\'' || text[j] == ')' || text[j] == ']')) ++j;
    if (text.compare(j, 3, "\u2019") == 0 || text.compare(j, 3, "\u201D") == 0) j += 3;
    return (j >= end || is_blank(text[j])) ? std::min(j, end) : std::string_view::npos;
  }
  // 。 ！ ？ (U+3002, U+FF01, U+FF1F)
  if (static_cast<uint8_t>(c) == 0xE3 && text.compare(i, 3, "\u3002") == 0) return i + 3;
  if (static_cast<uint8_t>(c) == 0xEF &&
      (text.compare(i, 3, "\uFF01") == 0 || text.compare(i, 3, "\uFF1F") == 0)) {
    return i + 3;
  }
  return std::string_view::npos;
}

std::string text_with_heading(std::string_view heading_path, std::string_view text) {
  const std::string_view leaf = heading_leaf(heading_path);
  if (leaf.empty() || text.substr(0, leaf.size()) == leaf) return std::string(text);
  std::string out(leaf);
  out += '\n';
  out += text;
  return out;
}

}  // namespace llmkit::retrieval
