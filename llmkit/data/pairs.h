// Parallel corpora for translation (the notes' encoder-decoder example: read English, write
// Korean). A pairs file is TSV, one pair a line: `source<TAB>target`, with backslash, tab and
// newline inside a message escaped as \\, \t and \n (what scripts/make-parallel-corpus.sh
// writes). The held-out split is a hash of the source text, so it is the same for every run and
// every tool (train, translate), and a sentence that occurs twice never lands on both sides.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace llmkit::data {

struct TextPair {
  std::string source, target;
};

// Reads a pairs file. An Error names the file and line of a malformed line (no tab, an empty
// side, a bad escape). Blank lines are skipped.
std::vector<TextPair> read_pairs(const std::string& path);
// Parses one line (without its newline); false when it has no tab.
bool parse_pair_line(std::string_view line, TextPair& out, std::string* error = nullptr);
std::string unescape_tsv(std::string_view field, std::string* error = nullptr);
std::string escape_tsv(std::string_view text);

// Whether a pair belongs to the held-out (validation) split: FNV-1a of the source text, mixed,
// mapped to [0, 1) is below fraction.
bool is_held_out(const TextPair& pair, double fraction);
// Splits pairs into (train, held-out), each in file order.
void split_pairs(std::span<const TextPair> pairs, double fraction, std::vector<TextPair>& train,
                 std::vector<TextPair>& held_out);

}  // namespace llmkit::data
