// Pieces shared by the format readers of extract.cpp, extract_html.cpp and extract_man.cpp: the
// TextBuilder they all write into and a few string helpers. Internal to llmkit/retrieval; not an
// interface for other layers.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "llmkit/retrieval/extract.h"

namespace llmkit::retrieval::detail {

// ASCII whitespace: what the text, the chunker and a "blank" line mean by blank.
bool is_blank(char c);
std::string_view trim(std::string_view s);
// Runs of blanks -> one space, none at either end.
std::string collapse_whitespace(std::string_view s);

// Decodes the HTML entity at s[i] (s[i] == '&') into `out` and returns the bytes consumed. An
// unknown or malformed entity is copied verbatim ("&" alone, consuming 1 byte).
size_t decode_entity(std::string_view s, size_t i, std::string& out);

// Accumulates extracted text. Outside preformatted mode, runs of blanks become one space and
// line starts drop them (HTML's and roff's filling); in preformatted mode blanks are kept, a
// newline ends a line and a blank line a paragraph. Breaks are applied lazily, at the next
// visible character, so any number of block boundaries in a row make one paragraph break and
// the text never starts or ends with blank lines. A heading's offset is that of its first
// visible character, so it is exact whatever breaks come before it.
class TextBuilder {
 public:
  void put(std::string_view s);
  void line_break();
  void paragraph_break();
  void set_preformatted(bool on) {
    preformatted_ = on;
    indent_.clear();
  }
  bool preformatted() const { return preformatted_; }
  // Text put between these is a heading of `level` (1 = top); an empty heading is dropped.
  void begin_heading(int level);
  void end_heading();
  bool in_heading() const { return heading_level_ > 0; }
  // The text so far (ending in one "\n" unless empty), and the headings into `headings`.
  std::string finish(std::vector<Heading>& headings);
  // The text written so far (pending breaks not applied).
  const std::string& text() const { return out_; }

 private:
  static constexpr size_t kNone = ~size_t{0};
  void put_visible(char c);
  void put_preformatted(char c);
  void flush_breaks();

  std::string out_;
  std::vector<Heading> headings_;
  int pending_break_ = 0;  // 0 none, 1 end of line, 2 end of paragraph
  bool pending_space_ = false;
  std::string indent_;  // preformatted: the blanks that start the current line, not yet written
  bool preformatted_ = false;
  int heading_level_ = 0;  // > 0 inside a heading
  size_t heading_start_ = kNone;
};

Extracted extract_html(std::string_view content);
Extracted extract_man(std::string_view content);

}  // namespace llmkit::retrieval::detail
