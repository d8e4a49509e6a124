// The Hugging Face pipeline without Python: the four small tokenizer.json files of the fuzz seeds
// (tests/fuzz/make_seeds.py: WordPiece + BertNormalizer, Unigram + Metaspace + byte fallback,
// SentencePiece BPE + byte fallback, BPE with prefix/suffix behind Split/Digits/Punctuation) with
// the ids the tokenizers wheel 0.20.3 gives for one text, added tokens with lstrip/rstrip/
// single_word and the post-processors included; plus the errors for what is not implemented.
#include <gtest/gtest.h>

#include "llmkit/core/error.h"
#include "llmkit/tokenizer/gguf_vocab.h"
#include "llmkit/tokenizer/tokenizer.h"
#include "tests/tokenizer/fixtures.h"

namespace llmkit::tokenizer {
namespace {

std::vector<int32_t> encode_like_hf(const std::string& seed) {
  const auto path = testing::source_dir() / "tests/fuzz/corpus/tokenizer_json" / seed;
  const Tokenizer tok = Tokenizer::load(path.string());
  EncodeOptions o;
  o.allow_special = true;
  o.add_special_tokens = true;
  return tok.encode("hi  ab \xC3\xA9 Ab \xEC\x95\x88! [CLS] 12345 x", o);
}

TEST(HfPipeline, SeedsEncodeLikeTheWheel) {
  EXPECT_EQ(encode_like_hf("seed-hf-wordpiece.json"),
            (std::vector<int32_t>{1, 3, 8, 0, 8, 0, 11, 1, 0, 0, 2}));
  EXPECT_EQ(encode_like_hf("seed-hf-unigram.json"),
            (std::vector<int32_t>{1, 3, 9, 4, 11, 12, 4, 10, 7, 4, 0, 1, 4, 0, 4, 0, 2}));
  EXPECT_EQ(
      encode_like_hf("seed-hf-spm-bpe.json"),
      (std::vector<int32_t>{1, 4, 0, 4, 5, 7, 4, 11, 12, 4, 10, 7, 4, 0, 1, 4, 4, 0, 4, 0, 2}));
  EXPECT_EQ(encode_like_hf("seed-hf-split-digits.json"),
            (std::vector<int32_t>{1, 3, 7, 0, 7, 0, 10, 1, 8, 0, 0, 0, 0, 0, 2}));
}

TEST(HfPipeline, SaveKeepsThePipeline) {
  const auto path = testing::source_dir() / "tests/fuzz/corpus/tokenizer_json/seed-hf-unigram.json";
  const Tokenizer tok = Tokenizer::load(path.string());
  const Tokenizer again = Tokenizer::from_json(tok.to_json(), "saved");
  EXPECT_EQ(again.to_json(), tok.to_json());
  EXPECT_EQ(again.model(), Model::kUnigram);
  EXPECT_EQ(again.encode("ab a"), tok.encode("ab a"));
}

TEST(HfPipeline, GgufErrorsNameTheField) {
  GgufVocab v;
  v.model = "t5";
  v.tokens = {"a"};
  try {
    Tokenizer::from_gguf_vocab(v);
    ADD_FAILURE() << "t5 accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("tokenizer.ggml.model \"t5\""), std::string::npos);
  }
  v.model = "llama";
  v.scores = {};
  EXPECT_THROW(Tokenizer::from_gguf_vocab(v), Error);  // no scores
  v.model = "gpt2";
  v.pre = "deepseek-llm";
  try {
    Tokenizer::from_gguf_vocab(v);
    ADD_FAILURE() << "an unknown pre accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("tokenizer.ggml.pre \"deepseek-llm\""), std::string::npos);
  }
}

}  // namespace
}  // namespace llmkit::tokenizer
