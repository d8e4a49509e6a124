// `llmkit tokenizer train|encode|decode`: parse flags, call llmkit/tokenizer, print. Ids go to
// stdout on one line (or as JSON); statistics, progress and warnings go to stderr so that
// `encode | decode` pipes stay clean. Errors are thrown as llmkit::Error and printed by main.cpp.
#include <chrono>
#include <cstdio>
#include <iostream>
#include <iterator>
#include <memory>
#include <nlohmann/json.hpp>

#include "llmkit/core/error.h"
#include "llmkit/core/parallel.h"
#include "llmkit/tokenizer/progress.h"
#include "llmkit/tokenizer/tokenizer.h"
#include "tools/llmkit/command.h"

namespace {

using namespace llmkit::tokenizer;

struct Args {
  std::vector<std::string> inputs;
  int32_t vocab_size = 8000;
  int64_t min_frequency = 2;
  std::vector<std::string> special_tokens = kGptSpecialTokens;
  std::string model = "bpe";
  bool jamo = false;
  std::string out;
  std::string tokenizer;
  std::string text, ids;
  bool json = false, stats = false, allow_special = false, skip_special = false;
  bool add_special_tokens = false;
  std::vector<std::string> special;
  int threads = 0;
};

std::string read_stdin() {
  std::ios::sync_with_stdio(false);
  return std::string(std::istreambuf_iterator<char>(std::cin), {});
}

void run_train(const Args& a) {
  TrainOptions opt;
  opt.model = a.model == "char" ? Model::kChar : Model::kBpe;
  opt.vocab_size = a.vocab_size;
  opt.min_frequency = a.min_frequency;
  opt.special_tokens = a.special_tokens;
  if (opt.special_tokens.size() == 1 && opt.special_tokens[0] == "none") opt.special_tokens.clear();
  opt.hangul_to_jamo = a.jamo;
  ProgressBar reading("reading", "MB", 1e6), merging("merging", "merges");
  opt.on_progress = [&](const TrainProgress& p) {
    if (p.stage == "read")
      reading.update(p.done, p.total);
    else
      reading.finish(), merging.update(p.done, p.total);
  };
  opt.on_warning = [](const std::string& w) {
    std::fprintf(stderr, "llmkit: warning: %s\n", w.c_str());
  };
  const auto t0 = std::chrono::steady_clock::now();
  const Tokenizer tok = Tokenizer::train(a.inputs, opt);
  reading.finish(), merging.finish();
  tok.save(a.out);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::fprintf(stderr, "trained %s tokenizer: vocab %d (%zu special, %zu merges) in %.2f s -> %s\n",
               a.model.c_str(), tok.vocab_size(), tok.special_tokens().size(),
               tok.parts().merges.size(), s, a.out.c_str());
}

void run_encode(const Args& a) {
  const Tokenizer tok = Tokenizer::load(a.tokenizer);
  const std::string text = a.text.empty() ? read_stdin() : a.text;
  EncodeOptions opt;
  opt.allow_special = a.allow_special;
  opt.allowed_special = a.special;
  opt.add_special_tokens = a.add_special_tokens;
  const auto t0 = std::chrono::steady_clock::now();
  const std::vector<int32_t> ids = tok.encode(text, opt);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::string line;
  if (a.json) {
    line = nlohmann::json(ids).dump();
  } else {
    for (size_t i = 0; i < ids.size(); ++i) (i ? line += ' ' : line) += std::to_string(ids[i]);
  }
  line += '\n';
  std::fwrite(line.data(), 1, line.size(), stdout);
  if (a.stats) {
    std::fprintf(
        stderr, "tokens: %zu  bytes: %zu  tokens/byte: %.4f  bytes/token: %.3f  %.1f MB/s\n",
        ids.size(), text.size(), text.empty() ? 0.0 : double(ids.size()) / text.size(),
        ids.empty() ? 0.0 : double(text.size()) / ids.size(), s > 0 ? text.size() / s / 1e6 : 0.0);
  }
}

// Ids separated by spaces, commas or newlines; "[1, 2]" (JSON) works too.
std::vector<int32_t> parse_ids(const std::string& s) {
  std::vector<int32_t> ids;
  size_t i = 0;
  while (i < s.size()) {
    if (std::string(" \t\r\n,[]").find(s[i]) != std::string::npos) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < s.size() && std::string(" \t\r\n,[]").find(s[j]) == std::string::npos) ++j;
    const std::string word = s.substr(i, j - i);
    size_t used = 0;
    long long v = 0;
    try {
      v = std::stoll(word, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != word.size() || v < INT32_MIN || v > INT32_MAX)
      llmkit::fail("decode: \"", word, "\" is not a token id");
    ids.push_back(static_cast<int32_t>(v));
    i = j;
  }
  return ids;
}

void run_decode(const Args& a) {
  const Tokenizer tok = Tokenizer::load(a.tokenizer);
  const std::vector<int32_t> ids = parse_ids(a.ids.empty() ? read_stdin() : a.ids);
  const std::string text = tok.decode(ids, a.skip_special);
  std::fwrite(text.data(), 1, text.size(), stdout);
}

std::function<void()> setup(CLI::App& app) {
  auto a = std::make_shared<Args>();
  app.require_subcommand(1);

  CLI::App* train = app.add_subcommand("train", "Train a byte-level BPE (or character) tokenizer");
  train->add_option("--input", a->inputs, "Text files to train on")
      ->required()
      ->check(CLI::ExistingFile);
  train->add_option("--vocab-size", a->vocab_size, "Vocabulary size, special tokens included")
      ->capture_default_str();
  train->add_option("--out", a->out, "Where to write tokenizer.json")->required();
  train->add_option("--min-frequency", a->min_frequency, "Stop when the best pair is rarer")
      ->capture_default_str();
  train
      ->add_option("--special-tokens", a->special_tokens,
                   "Special tokens, ids 0.. in order (comma-separated; 'none' for none)")
      ->delimiter(',')
      ->capture_default_str();
  train->add_option("--model", a->model, "bpe or char (one token per character)")
      ->check(CLI::IsMember({"bpe", "char"}))
      ->capture_default_str();
  train->add_flag("--jamo", a->jamo, "Decompose Hangul syllables into jamo (NFD) first");

  CLI::App* encode = app.add_subcommand("encode", "Text -> token ids (one line on stdout)");
  encode
      ->add_option("--tokenizer", a->tokenizer,
                   "tokenizer.json, or GPT-2's encoder.json / its directory")
      ->required();
  encode->add_option("--text", a->text, "Text to encode (default: read stdin)");
  encode->add_flag("--json", a->json, "Print the ids as a JSON array");
  encode->add_flag("--stats", a->stats, "Print tokens, bytes and tokens per byte on stderr");
  encode->add_flag("--allow-special", a->allow_special, "Recognise special tokens in the text");
  encode->add_option("--special", a->special, "Recognise only these special tokens")
      ->delimiter(',');
  encode->add_flag("--add-special-tokens", a->add_special_tokens,
                   "Run the tokenizer.json post-processor ([CLS] ... [SEP], <s> ...)");

  CLI::App* decode = app.add_subcommand("decode", "Token ids -> text on stdout");
  decode
      ->add_option("--tokenizer", a->tokenizer,
                   "tokenizer.json, or GPT-2's encoder.json / its directory")
      ->required();
  decode->add_option("--ids", a->ids, "Ids separated by spaces or commas (default: read stdin)");
  decode->add_flag("--skip-special", a->skip_special, "Leave special tokens out");

  for (CLI::App* sub : {train, encode, decode})
    sub->add_option("--threads", a->threads, "Threads (default: LLMKIT_THREADS or all cores)");
  return [a, train, encode, decode] {
    if (a->threads > 0) llmkit::set_num_threads(a->threads);
    if (train->parsed())
      run_train(*a);
    else if (encode->parsed())
      run_encode(*a);
    else if (decode->parsed())
      run_decode(*a);
  };
}

LLMKIT_COMMAND({"tokenizer", "Train byte-level BPE tokenizers; encode and decode with any", setup});

}  // namespace
