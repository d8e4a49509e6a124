// Training: determinism, vocabulary layout (special tokens, 256 bytes, merges), min frequency,
// round trips (text and tokenizer.json), the character and jamo variants, streaming from files
// with invalid UTF-8 and empty files, and interchange with Hugging Face tokenizers (files they
// trained load here and encode to their ids; fixtures from make_fixtures.js).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "common/temp_dir.h"
#include "fixtures.h"
#include "llmkit/core/error.h"
#include "llmkit/core/parallel.h"
#include "llmkit/tokenizer/unicode.h"

namespace llmkit::tokenizer {
namespace {

using testing::fixture;

std::string corpus() {
  return read_file(fixture("corpus_small.txt").string());
}

std::filesystem::path temp_file(const std::string& name, const std::string& content) {
  static const llmkit::testing::TempDir dir;  // unique per process, removed at exit
  const auto p = dir.path / name;
  std::ofstream(p, std::ios::binary) << content;
  return p;
}

TrainOptions options(int32_t vocab_size) {
  TrainOptions o;
  o.vocab_size = vocab_size;
  o.special_tokens = {"<|endoftext|>", "[PAD]", "<|im_start|>", "<|im_end|>"};
  return o;
}

TEST(Train, LayoutAndRoundTrip) {
  const Tokenizer tok = Tokenizer::train_from_text(corpus(), options(600));
  EXPECT_EQ(tok.vocab_size(), 600);
  EXPECT_EQ(tok.token_to_id("<|endoftext|>"), 0);
  EXPECT_EQ(tok.token_to_id("<|im_end|>"), 3);
  EXPECT_EQ(tok.id_to_token(4 + 'a'), "a");
  EXPECT_EQ(tok.parts().merges.size(), 600u - 4 - 256);
  const std::string text = corpus() + "\nUnseen: 토큰 😀 \xff";
  EXPECT_EQ(tok.decode(tok.encode(text)), utf8_repair(text));
  EXPECT_LT(tok.encode(corpus()).size(), corpus().size() / 2);  // it learned something
}

TEST(Train, DeterministicAcrossThreadCounts) {
  const Tokenizer a = Tokenizer::train_from_text(corpus(), options(500));
  const int threads = num_threads();
  set_num_threads(1);
  const Tokenizer b = Tokenizer::train_from_text(corpus(), options(500));
  set_num_threads(threads);
  EXPECT_EQ(a.to_json(), b.to_json());
}

TEST(Train, MinFrequencyStopsEarly) {
  TrainOptions o = options(100000);
  o.min_frequency = 50;
  const Tokenizer tok = Tokenizer::train_from_text(corpus(), o);
  EXPECT_LT(tok.vocab_size(), 1000);
  EXPECT_GT(tok.vocab_size(), 260);
  EXPECT_THROW(Tokenizer::train_from_text(corpus(), options(100)), Error);  // < specials + 256
}

TEST(Train, JsonRoundTrip) {
  const Tokenizer tok = Tokenizer::train_from_text(corpus(), options(700));
  const auto path = temp_file("train_roundtrip.json", "");
  tok.save(path.string());
  const Tokenizer back = Tokenizer::load(path.string());
  std::filesystem::remove(path);
  EXPECT_EQ(back.to_json(), tok.to_json());
  EXPECT_EQ(back.encode(corpus()), tok.encode(corpus()));
  EXPECT_EQ(back.special_tokens(), tok.special_tokens());
}

TEST(Train, FilesStreamInvalidUtf8AndEmptyFiles) {
  const auto good = temp_file("train_good.txt", corpus());
  const auto bad = temp_file("train_bad.txt", "valid text\nthen \xff\xfe bytes\n");
  const auto empty = temp_file("train_empty.txt", "");
  TrainOptions o = options(500);
  std::vector<std::string> warnings;
  o.on_warning = [&](const std::string& w) { warnings.push_back(w); };
  const std::vector<std::string> files = {good.string(), bad.string(), empty.string()};
  const Tokenizer tok = Tokenizer::train(files, o);
  ASSERT_EQ(warnings.size(), 2u);
  EXPECT_NE(warnings[0].find("invalid UTF-8 at byte 16"), std::string::npos) << warnings[0];
  EXPECT_NE(warnings[1].find("empty"), std::string::npos) << warnings[1];
  EXPECT_EQ(tok.to_json(),
            Tokenizer::train_from_text(corpus() + "valid text\nthen \xff\xfe bytes\n", options(500))
                .to_json());
  const std::vector<std::string> only_empty = {empty.string()};
  EXPECT_THROW(Tokenizer::train(only_empty, o), Error);
  for (const auto& f : files) std::filesystem::remove(f);
}

TEST(Train, CharacterTokenizer) {
  TrainOptions o;
  o.model = Model::kChar;
  o.vocab_size = 0;  // every character
  o.special_tokens = kBertSpecialTokens;
  const std::string text = "안녕하세요 hello";
  const Tokenizer tok = Tokenizer::train_from_text(text, o);
  EXPECT_EQ(tok.vocab_size(), 5 + 10);  // [PAD] [UNK] [CLS] [SEP] [MASK] + 10 characters
  const auto ids = tok.encode(text);
  EXPECT_EQ(ids.size(), 11u);
  EXPECT_EQ(tok.decode(ids), text);
  EXPECT_EQ(tok.encode("?")[0], tok.token_to_id("[UNK]"));
  const Tokenizer back = Tokenizer::from_json(tok.to_json());
  EXPECT_EQ(back.encode(text), ids);
}

TEST(Train, JamoShortensVocabularyAndRoundTrips) {
  const std::string text = corpus();
  TrainOptions o;
  o.model = Model::kChar;
  o.vocab_size = 0;
  const Tokenizer syllables = Tokenizer::train_from_text(text, o);
  o.hangul_to_jamo = true;
  const Tokenizer jamo = Tokenizer::train_from_text(text, o);
  EXPECT_LT(jamo.vocab_size(), syllables.vocab_size());
  EXPECT_GT(jamo.encode(text).size(), syllables.encode(text).size());
  EXPECT_EQ(jamo.decode(jamo.encode(text)), text);
  TrainOptions b = options(600);
  b.hangul_to_jamo = true;
  const Tokenizer bpe = Tokenizer::train_from_text(text, b);
  EXPECT_EQ(bpe.decode(bpe.encode(text)), text);
  EXPECT_NE(bpe.to_json().find("\"NFD\""), std::string::npos);
  EXPECT_EQ(Tokenizer::from_json(bpe.to_json()).encode(text), bpe.encode(text));
}

TEST(HuggingFace, TheirTrainedTokenizerEncodesToTheirIds) {
  const Tokenizer tok = Tokenizer::load(fixture("hf_trained.json").string());
  const auto cases = testing::read_json(fixture("hf_trained_cases.json"));
  int compared = 0;
  for (const auto& c : cases) {
    const std::string text = c["text"];
    std::vector<int32_t> ids;
    try {
      ids = tok.encode(text);
    } catch (const Error& e) {
      // A byte their trainer never saw: Hugging Face drops it, we refuse. Only then may we
      // refuse: their ids must then decode to something other than the text.
      EXPECT_NE(tok.decode(c["ids"].get<std::vector<int32_t>>()), text)
          << "we refused a text Hugging Face encodes losslessly: " << text << " (" << e.what()
          << ")";
      continue;
    }
    EXPECT_EQ(ids, c["ids"].get<std::vector<int32_t>>()) << text;
    ++compared;
  }
  EXPECT_GE(compared, 5);
}

TEST(HuggingFace, OurTrainedTokenizerEncodesTheSameInTheirs) {
  // ours_small.json was trained by llmkit; ours_hf_cases.json holds Hugging Face's ids for it.
  if (!std::filesystem::exists(fixture("ours_hf_cases.json")))
    GTEST_SKIP() << "tests/fixtures/tokenizer/ours_hf_cases.json absent (see make_fixtures.js)";
  const Tokenizer tok = Tokenizer::load(fixture("ours_small.json").string());
  const auto hf_cases = testing::read_json(fixture("ours_hf_cases.json"));
  ASSERT_FALSE(hf_cases.empty()) << "ours_hf_cases.json holds no cases";
  for (const auto& c : hf_cases)
    EXPECT_EQ(tok.encode(c["text"].get<std::string>()), c["ids"].get<std::vector<int32_t>>());
  // and it is still what our trainer makes from the same corpus with the CLI's defaults
  TrainOptions o;
  o.vocab_size = 600;
  const std::vector<std::string> files = {fixture("corpus_small.txt").string()};
  EXPECT_EQ(Tokenizer::train(files, o).to_json(), tok.to_json());
}

}  // namespace
}  // namespace llmkit::tokenizer
