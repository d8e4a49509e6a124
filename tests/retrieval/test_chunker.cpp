// Chunking (llmkit/retrieval/chunker.h) with a whitespace-word counter as the tokenizer: every
// chunk within the limit and counted right, every non-blank byte covered, chunks starting and
// ending at non-blank bytes, overlap present and bounded and made of whole sentences, headings
// never crossed and their paths right, line numbers right, over-long sentences cut at words,
// the tokenizer's total work linear in the text, and the option checks.
#include "llmkit/retrieval/chunker.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "tests/common/error_of.h"

namespace llmkit::retrieval {
namespace {

using testing::error_of;

bool blank(char c) {
  return c == ' ' || c == '\n' || c == '\t' || c == '\r';
}

int64_t count_words(std::string_view s) {
  int64_t n = 0;
  bool in_word = false;
  for (char c : s) {
    if (!blank(c) && !in_word) ++n;
    in_word = !blank(c);
  }
  return n;
}

// The heading path at `pos` computed the slow way, from all headings at or before it.
std::string path_at(const Extracted& doc, size_t pos) {
  std::vector<const Heading*> path;
  for (const Heading& h : doc.headings) {
    if (h.offset > pos) break;
    while (!path.empty() && path.back()->level >= h.level) path.pop_back();
    path.push_back(&h);
  }
  std::string s;
  for (const Heading* h : path) s += (s.empty() ? "" : " > ") + h->text;
  return s;
}

int64_t line_at(const std::string& text, size_t pos) {
  return 1 + std::count(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(pos), '\n');
}

// Checks every property chunk_text promises, with `count` as the tokenizer.
void check_chunks(const Extracted& doc, const std::vector<Chunk>& chunks, const ChunkOptions& opt,
                  const CountTokens& count = count_words) {
  const std::string& t = doc.text;
  std::vector<bool> covered(t.size(), false);
  for (size_t k = 0; k < chunks.size(); ++k) {
    const Chunk& c = chunks[k];
    SCOPED_TRACE("chunk " + std::to_string(k));
    ASSERT_LT(c.begin, c.end);
    ASSERT_LE(c.end, t.size());
    const std::string_view text = std::string_view(t).substr(c.begin, c.end - c.begin);
    EXPECT_FALSE(blank(text.front()));
    EXPECT_FALSE(blank(text.back()));
    EXPECT_NE(static_cast<uint8_t>(t[c.begin]) & 0xC0, 0x80);  // UTF-8 boundaries
    if (c.end < t.size()) {
      EXPECT_NE(static_cast<uint8_t>(t[c.end]) & 0xC0, 0x80);
    }
    EXPECT_EQ(c.tokens, count(text));
    EXPECT_LE(c.tokens, opt.max_tokens);
    EXPECT_EQ(c.first_line, line_at(t, c.begin));
    EXPECT_EQ(c.last_line, line_at(t, c.end - 1));
    EXPECT_EQ(c.heading, path_at(doc, c.begin));
    for (const Heading& h : doc.headings) {
      EXPECT_FALSE(h.offset > c.begin && h.offset < c.end) << "crosses heading " << h.text;
    }
    for (size_t i = c.begin; i < c.end; ++i) covered[i] = true;
    if (k > 0 && chunks[k - 1].heading == c.heading && c.begin < chunks[k - 1].end) {
      // Overlap: whole sentences within the budget, and never a whole chunk again. A sentence
      // starts after a sentence end or at a paragraph.
      EXPECT_GT(c.begin, chunks[k - 1].begin);
      EXPECT_LE(count(std::string_view(t).substr(c.begin, chunks[k - 1].end - c.begin)),
                opt.overlap_tokens);
      size_t before = c.begin;
      while (before > 0 && blank(t[before - 1])) --before;
      // Closing quotes and brackets after a sentence end belong to the sentence.
      while (true) {
        if (before > 0 && std::string_view("\"')]").find(t[before - 1]) != std::string_view::npos) {
          --before;
        } else if (before >= 3 && (t.compare(before - 3, 3, "\u201D") == 0 ||
                                   t.compare(before - 3, 3, "\u2019") == 0)) {
          before -= 3;
        } else {
          break;
        }
      }
      ASSERT_GT(before, 0u);
      const bool after_paragraph = t.compare(c.begin - 2, 2, "\n\n") == 0;
      EXPECT_TRUE(after_paragraph ||
                  std::string_view(".!?").find(t[before - 1]) != std::string_view::npos)
          << "overlap does not start at a sentence: " << text.substr(0, 40);
    }
  }
  for (size_t i = 0; i < t.size(); ++i) {
    if (!blank(t[i])) {
      ASSERT_TRUE(covered[i]) << "byte " << i << " not in any chunk";
    }
  }
}

// n sentences "wN wN ... wN." of `words` words each, in paragraphs of `per_paragraph`.
std::string sentences(int n, int words, int per_paragraph, int tag = 0) {
  std::string s;
  for (int i = 0; i < n; ++i) {
    for (int w = 0; w < words; ++w) {
      s += 's';  // appended piece by piece: GCC 12 warns falsely (-Wrestrict) on "s" + string
      s += std::to_string(tag);
      s += '_';
      s += std::to_string(i);
      s += w + 1 < words ? ' ' : '.';
    }
    s += (i + 1) % per_paragraph == 0 ? "\n\n" : (i % 3 == 2 ? "\n" : " ");
  }
  return s;
}

Extracted doc_of(std::string text, std::vector<Heading> headings = {}) {
  Extracted d;
  d.text = std::move(text);
  d.headings = std::move(headings);
  return d;
}

TEST(Chunker, PacksWholeParagraphs) {
  // Three paragraphs of 10 words: two fit in 25 tokens, the third starts a new chunk.
  const std::string para = "a b c d e f g h i j.\n";
  const Extracted doc = doc_of(para + "\n" + para + "\n" + para);
  const ChunkOptions opt{.max_tokens = 25, .overlap_tokens = 0};
  const std::vector<Chunk> chunks = chunk_text(doc, count_words, opt);
  check_chunks(doc, chunks, opt);
  ASSERT_EQ(chunks.size(), 2u);
  EXPECT_EQ(chunks[0].begin, 0u);
  EXPECT_EQ(chunks[0].end, 2 * para.size() + 1 - 1);
  EXPECT_EQ(chunks[0].tokens, 20);
  EXPECT_EQ(chunks[1].begin, 2 * para.size() + 2);
  EXPECT_EQ(chunks[1].first_line, 5);
  EXPECT_EQ(chunks[1].last_line, 5);
  EXPECT_EQ(chunks[1].tokens, 10);
}

TEST(Chunker, LongParagraphsSplitAtSentencesWithOverlap) {
  const Extracted doc = doc_of(sentences(200, 7, 40));
  const ChunkOptions opt{.max_tokens = 60, .overlap_tokens = 15};
  const std::vector<Chunk> chunks = chunk_text(doc, count_words, opt);
  check_chunks(doc, chunks, opt);
  ASSERT_GT(chunks.size(), 20u);
  int overlapping = 0;
  for (size_t k = 1; k < chunks.size(); ++k) {
    if (chunks[k].begin < chunks[k - 1].end) {
      ++overlapping;
      EXPECT_EQ(count_words(std::string_view(doc.text).substr(chunks[k].begin,
                                                              chunks[k - 1].end - chunks[k].begin)),
                14);  // two whole 7-word sentences fit in 15
    }
  }
  EXPECT_GE(overlapping, static_cast<int>(chunks.size()) / 2);
}

TEST(Chunker, NoOverlapWhenTheLastSentenceIsLonger) {
  const Extracted doc = doc_of(sentences(40, 20, 1000));
  const ChunkOptions opt{.max_tokens = 50, .overlap_tokens = 10};
  const std::vector<Chunk> chunks = chunk_text(doc, count_words, opt);
  check_chunks(doc, chunks, opt);
  for (size_t k = 1; k < chunks.size(); ++k) EXPECT_GE(chunks[k].begin, chunks[k - 1].end);
}

TEST(Chunker, HeadingsAreNeverCrossed) {
  std::string text;
  std::vector<Heading> headings;
  const auto heading = [&](int level, const std::string& name) {
    headings.push_back({.offset = text.size(), .level = level, .text = name});
    text += name + "\n\n";
  };
  text += sentences(5, 4, 10, 9);  // before the first heading
  heading(1, "A");
  text += sentences(30, 6, 4, 1);
  heading(2, "B");
  text += sentences(3, 3, 10, 2);
  heading(3, "B1");
  text += "One short line.\n\n";
  heading(2, "C");
  heading(1, "D");
  text += sentences(25, 5, 25, 3);
  const Extracted doc = doc_of(text, headings);
  const ChunkOptions opt{.max_tokens = 40, .overlap_tokens = 8};
  const std::vector<Chunk> chunks = chunk_text(doc, count_words, opt);
  check_chunks(doc, chunks, opt);
  std::vector<std::string> paths;
  for (const Chunk& c : chunks) {
    if (paths.empty() || paths.back() != c.heading) paths.push_back(c.heading);
  }
  EXPECT_EQ(paths, (std::vector<std::string>{"", "A", "A > B", "A > B > B1", "A > C", "D"}));
}

TEST(Chunker, HugeSentenceIsCutAtWords) {
  std::string text = "Intro sentence here. ";
  for (int i = 0; i < 1000; ++i) text += std::string("word") + std::to_string(i) + " ";
  text += "end.\n";
  const Extracted doc = doc_of(text);
  const ChunkOptions opt{.max_tokens = 50, .overlap_tokens = 10};
  const std::vector<Chunk> chunks = chunk_text(doc, count_words, opt);
  check_chunks(doc, chunks, opt);
  ASSERT_GE(chunks.size(), 20u);
  for (const Chunk& c : chunks) {
    // Pieces end between words: the byte after a chunk is a blank (or the end).
    EXPECT_TRUE(c.end == text.size() || blank(text[c.end])) << c.end;
    EXPECT_TRUE(c.begin == 0 || blank(text[c.begin - 1])) << c.begin;
  }
  EXPECT_EQ(chunks[1].tokens, 50);  // cut pieces are filled up to the limit
}

TEST(Chunker, OneHugeWordIsCutAtCharacters) {
  // No blanks at all, Korean (3-byte characters): cuts must land on character boundaries. A
  // counter of one token per character makes every piece max_tokens characters.
  std::string text;
  for (int i = 0; i < 500; ++i) text += "\uD55C";
  const auto count_chars = [](std::string_view s) {
    int64_t n = 0;
    for (char c : s) n += (static_cast<uint8_t>(c) & 0xC0) != 0x80;
    return n;
  };
  const Extracted doc = doc_of(text + "\n");
  const ChunkOptions opt{.max_tokens = 64, .overlap_tokens = 0};
  const std::vector<Chunk> chunks = chunk_text(doc, count_chars, opt);
  check_chunks(doc, chunks, opt, count_chars);
  ASSERT_EQ(chunks.size(), 8u);  // 7 x 64 + 52
  EXPECT_EQ(chunks[0].tokens, 64);
  EXPECT_EQ(chunks[7].tokens, 500 - 7 * 64);
}

TEST(Chunker, KoreanAndCjkSentenceEnds) {
  std::string text;
  for (int i = 0; i < 60; ++i) {
    text += i % 2 == 0 ? "\uB370\uBE44\uC548\uC740 \uC790\uC720 \uC6B4\uC601\uCCB4\uC81C\uC785"
                         "\uB2C8\uB2E4. "
                       : "\u6587 \u7AE0 \u3067 \u3059\u3002";
  }
  const Extracted doc = doc_of(text + "\n");
  const ChunkOptions opt{.max_tokens = 20, .overlap_tokens = 4};
  const std::vector<Chunk> chunks = chunk_text(doc, count_words, opt);
  ASSERT_GT(chunks.size(), 5u);
  // Every chunk ends at a sentence end ("." or "。"), since every sentence fits.
  for (const Chunk& c : chunks) {
    const std::string_view t = std::string_view(doc.text).substr(c.begin, c.end - c.begin);
    EXPECT_TRUE(t.ends_with(".") || t.ends_with("\u3002")) << t;
    EXPECT_LE(c.tokens, opt.max_tokens);
  }
}

TEST(Chunker, TokenizerWithSeamCostsStillRespectsTheLimit) {
  // A tokenizer whose count is not the sum over sentences: each line break costs a token. The
  // packer's estimate is then low, and the real count must decide.
  const auto count = [](std::string_view s) {
    return count_words(s) + static_cast<int64_t>(std::count(s.begin(), s.end(), '\n'));
  };
  const Extracted doc = doc_of(sentences(300, 4, 6));
  const ChunkOptions opt{.max_tokens = 30, .overlap_tokens = 6};
  const std::vector<Chunk> chunks = chunk_text(doc, count, opt);
  check_chunks(doc, chunks, opt, count);
}

TEST(Chunker, TokenizerWorkIsLinear) {
  // The tokenizer must see about as many bytes as the text has (each sentence, each chunk once),
  // not the text again per chunk.
  const Extracted doc = doc_of(sentences(20000, 8, 12) + sentences(1, 3000, 1));
  size_t bytes_counted = 0;
  const auto count = [&](std::string_view s) {
    bytes_counted += s.size();
    return count_words(s);
  };
  const ChunkOptions opt{.max_tokens = 100, .overlap_tokens = 20};
  const std::vector<Chunk> chunks = chunk_text(doc, count, opt);
  check_chunks(doc, chunks, opt);
  EXPECT_LT(bytes_counted, 8 * doc.text.size()) << bytes_counted << " for " << doc.text.size();
}

TEST(Chunker, BlankTextGivesNoChunks) {
  EXPECT_TRUE(chunk_text(doc_of(""), count_words).empty());
  EXPECT_TRUE(chunk_text(doc_of(" \n\n\t \n"), count_words).empty());
  const Extracted one = doc_of("\n\n  Just this.  \n\n");
  const std::vector<Chunk> chunks = chunk_text(one, count_words);
  ASSERT_EQ(chunks.size(), 1u);
  EXPECT_EQ(one.text.substr(chunks[0].begin, chunks[0].end - chunks[0].begin), "Just this.");
  EXPECT_EQ(chunks[0].first_line, 3);
  EXPECT_EQ(chunks[0].last_line, 3);
}

TEST(Chunker, OptionsAreChecked) {
  const Extracted doc = doc_of("text.\n");
  EXPECT_NE(error_of([&] {
              chunk_text(doc, count_words, {.max_tokens = 7, .overlap_tokens = 0});
            }).find("max_tokens"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              chunk_text(doc, count_words, {.max_tokens = 8, .overlap_tokens = -1});
            }).find("overlap_tokens"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              chunk_text(doc, count_words, {.max_tokens = 8, .overlap_tokens = 8});
            }).find("overlap_tokens"),
            std::string::npos);
  EXPECT_EQ(error_of([&] { chunk_text(doc, count_words, {.max_tokens = 8, .overlap_tokens = 7}); }),
            "(no error)");
  Extracted bad = doc_of("abc\n", {{.offset = 99, .level = 1, .text = "X"}});
  EXPECT_NE(error_of([&] { chunk_text(bad, count_words); }).find("heading"), std::string::npos);
}

TEST(Chunker, RealDebianFaq) {
  const std::string path = "/usr/share/doc/debian/FAQ/basic-defs.en.html";
  if (!std::filesystem::exists(path))
    GTEST_SKIP() << path << " is not installed (package debian-faq)";
  const Extracted doc = extract_file(path);
  const ChunkOptions opt{.max_tokens = 80, .overlap_tokens = 16};
  const std::vector<Chunk> chunks = chunk_text(doc, count_words, opt);
  check_chunks(doc, chunks, opt);
  bool found = false;
  for (const Chunk& c : chunks) {
    found |= c.heading == "Chapter 1. Definitions and overview > 1.2. What is Debian GNU/Linux?";
  }
  EXPECT_TRUE(found);
}

}  // namespace
}  // namespace llmkit::retrieval

TEST(Chunker, TextWithHeadingAddsOnlyTheSectionsOwnHeading) {
  using llmkit::retrieval::text_with_heading;
  EXPECT_EQ(text_with_heading("Chapter 8 > 8.3. Installed?", "To learn the status..."),
            "8.3. Installed?\nTo learn the status...");
  EXPECT_EQ(text_with_heading("Chapter 8 > 8.3. Installed?", "8.3. Installed?\n\nTo learn"),
            "8.3. Installed?\n\nTo learn");
  EXPECT_EQ(text_with_heading("", "plain"), "plain");
  EXPECT_EQ(text_with_heading("Top", "body"), "Top\nbody");
}
