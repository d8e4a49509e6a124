// Exactness against the Hugging Face `tokenizers` wheel: hf_reference.py (run once per binary
// with the reference Python) writes a tokenizer.json and its encodings of a varied text set
// (English, Korean with jamo, code, emoji with ZWJ, whitespace and digit runs, accents, CJK,
// special tokens in text) for SmolLM2 (from its GGUF), all-MiniLM-L6-v2, GPT-2 and three small
// tokenizers it trains (Qwen2-style byte-level BPE, Llama-2-style SentencePiece BPE, T5-style
// Unigram). We load each, encode with and without add_special_tokens and decode; all must match.
// Skips visibly when `tokenizers` does not import; a case skips when its model is absent.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>

#include "llmkit/tokenizer/gguf_vocab.h"
#include "llmkit/tokenizer/read_file.h"
#include "llmkit/tokenizer/tokenizer.h"
#include "tests/common/reference.h"
#include "tests/common/temp_dir.h"
#include "tests/tokenizer/fixtures.h"

namespace llmkit::tokenizer {
namespace {

using nlohmann::json;

// The reference files of one case, made on first use; empty with `why` set when they cannot be.
std::filesystem::path reference_dir(const std::string& name, std::string& why) {
  static std::map<std::string, std::pair<std::unique_ptr<llmkit::testing::TempDir>, std::string>>
      made;
  auto& [dir, reason] = made[name];
  if (!dir && reason.empty()) {
    if (!llmkit::testing::ref_python_has("tokenizers")) {
      reason =
          "the Python package `tokenizers` does not import in " + llmkit::testing::ref_python();
    } else {
      dir = std::make_unique<llmkit::testing::TempDir>();
      const std::string script =
          (testing::source_dir() / "tests/tokenizer/hf_reference.py").string();
      const std::string cmd =
          llmkit::testing::ref_python() + " " + script + " " + dir->path.string() + " " + name +
          " '" + llmkit::testing::model_path("smollm2") + "' '" +
          llmkit::testing::model_path("minilm") + "' > " + dir->file("log.txt") + " 2>&1";
      if (std::system(cmd.c_str()) != 0)
        reason = "FAIL: hf_reference.py failed: " + read_file(dir->file("log.txt"));
    }
  }
  why = reason;
  return dir && reason.empty() ? dir->path : std::filesystem::path();
}

// The expected encodings of a case; the caller skips when null (fails when `why` says FAIL).
json load_case(const std::string& name, std::string& why) {
  const auto dir = reference_dir(name, why);
  if (dir.empty()) return nullptr;
  const json e = json::parse(read_file((dir / name / "expected.json").string()));
  if (e.contains("skip")) {
    why = e["skip"].get<std::string>();
    return nullptr;
  }
  return e;
}

std::string tokenizer_json(const std::string& name) {
  std::string why;
  return (reference_dir(name, why) / name / "tokenizer.json").string();
}

std::string show(const std::string& s) {
  return json(s).dump(-1, ' ', true, json::error_handler_t::replace);
}

void expect_same(const Tokenizer& tok, const json& e, const std::string& what) {
  const auto texts = e["texts"].get<std::vector<std::string>>();
  int failures = 0;
  for (size_t k = 0; k < texts.size() && failures < 5; ++k) {
    EncodeOptions plain, special;
    plain.allow_special = special.allow_special = true;  // HF always matches special tokens
    special.add_special_tokens = true;
    const auto ids = tok.encode(texts[k], plain);
    const auto ids_special = tok.encode(texts[k], special);
    const auto want = e["ids"][k].get<std::vector<int32_t>>();
    const auto want_special = e["ids_special"][k].get<std::vector<int32_t>>();
    EXPECT_EQ(ids, want) << what << ", text " << k << ": " << show(texts[k]);
    EXPECT_EQ(ids_special, want_special)
        << what << " (add_special_tokens), text " << k << ": " << show(texts[k]);
    const std::string decoded = tok.decode(want), skip = tok.decode(want_special, true);
    EXPECT_EQ(show(decoded), show(e["decoded"][k].get<std::string>()))
        << what << " decode, text " << k;
    EXPECT_EQ(show(skip), show(e["decoded_skip"][k].get<std::string>()))
        << what << " decode(skip_special), text " << k;
    failures += ids != want || ids_special != want_special;
  }
}

// The GGUF arrays hf_reference.py wrote for a case (gguf_vocab.json).
GgufVocab read_gguf_vocab(const std::string& name) {
  std::string why;
  const json j =
      json::parse(read_file((reference_dir(name, why) / name / "gguf_vocab.json").string()));
  GgufVocab v;
  v.model = j["model"], v.pre = j["pre"];
  v.tokens = j["tokens"].get<std::vector<std::string>>();
  v.token_types = j["token_types"].get<std::vector<int32_t>>();
  v.merges = j["merges"].get<std::vector<std::string>>();
  if (j.contains("scores")) v.scores = j["scores"].get<std::vector<float>>();
  v.bos = j["bos"], v.eos = j["eos"], v.unk = j["unk"], v.pad = j["pad"];
  v.add_bos = j["add_bos"], v.add_eos = j["add_eos"], v.add_space_prefix = j["add_space_prefix"];
  return v;
}

// Loads the case's tokenizer.json, checks it, then checks that save() -> load gives the same.
void check_case(const std::string& name) {
  std::string why;
  const json e = load_case(name, why);
  if (e.is_null() && why.starts_with("FAIL")) FAIL() << why;
  if (e.is_null()) GTEST_SKIP() << name << ": " << why;
  const Tokenizer tok = Tokenizer::load(tokenizer_json(name));
  expect_same(tok, e, name + " tokenizer.json");
  const llmkit::testing::TempDir tmp;
  tok.save(tmp.file("tokenizer.json"));
  const Tokenizer again = Tokenizer::load(tmp.file("tokenizer.json"));
  EXPECT_EQ(again.to_json(), tok.to_json()) << name << ": save() does not round-trip";
  expect_same(again, e, name + " saved and reloaded");
}

// all-MiniLM-L6-v2's tokenizer.json, and its vocabulary as llama.cpp stores BERT's in GGUF.
TEST(HfTokenizers, MiniLM) {
  check_case("minilm");
  std::string why;
  const json e = load_case("minilm", why);
  if (e.is_null()) return;  // check_case reported it
  expect_same(Tokenizer::from_gguf_vocab(read_gguf_vocab("minilm")), e, "minilm from_gguf_vocab");
}
TEST(HfTokenizers, Gpt2) {
  check_case("gpt2");
}
TEST(HfTokenizers, Qwen2Style) {
  check_case("qwen2");
}
TEST(HfTokenizers, Llama2Style) {
  check_case("llama2");
}
TEST(HfTokenizers, Llama3StyleIgnoreMerges) {
  check_case("llama3");
}
TEST(HfTokenizers, T5StyleUnigram) {
  check_case("t5");
}
// The components the model cases above do not reach (see hf_reference.py for each one's list).
TEST(HfTokenizers, WordsBpeSuffixWhitespaceDigitsRoberta) {
  check_case("words_bpe");
}
TEST(HfTokenizers, PrefixBpePunctuationBertAddedTokenFlags) {
  check_case("prefix_bpe");
}
TEST(HfTokenizers, UnigramSplitBehaviorsMetaspaceFirst) {
  check_case("split_unigram");
}

// SmolLM2's tokenizer.json made from its GGUF, and the same vocabulary, read from the GGUF by
// Python, given to from_gguf_vocab (one test: reading the GGUF in Python takes seconds).
TEST(HfTokenizers, SmolLM2) {
  check_case("smollm2");
  std::string why;
  const json e = load_case("smollm2", why);
  if (e.is_null() && why.starts_with("FAIL")) FAIL() << why;
  if (e.is_null()) GTEST_SKIP() << "smollm2: " << why;
  GgufVocab v = read_gguf_vocab("smollm2");
  EXPECT_EQ(v.pre, "smollm");
  const Tokenizer tok = Tokenizer::from_gguf_vocab(v);
  expect_same(tok, e, "smollm2 from_gguf_vocab");
  v.pre = "no-such-pre";
  EXPECT_THROW(Tokenizer::from_gguf_vocab(v), Error);
}

// A SentencePiece ("llama") GGUF vocabulary: tokens, scores and types of a small Llama-2-style
// model; the reference is the tokenizer transformers' LlamaConverter builds from the same.
TEST(HfTokenizers, LlamaGgufVocab) {
  check_case("llama_gguf");
  std::string why;
  const json e = load_case("llama_gguf", why);
  if (e.is_null() && why.starts_with("FAIL")) FAIL() << why;
  if (e.is_null()) GTEST_SKIP() << "llama_gguf: " << why;
  const Tokenizer tok = Tokenizer::from_gguf_vocab(read_gguf_vocab("llama_gguf"));
  expect_same(tok, e, "llama_gguf from_gguf_vocab");
}

}  // namespace
}  // namespace llmkit::tokenizer
