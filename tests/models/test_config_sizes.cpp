// Absurd model configs are refused by from_json with a one-line Error naming the size, before
// anything is allocated: 2^40 elements at most (parameters, one sequence's activation or attention
// scores), integer fields that fit their type (1e30 or 2^64-1 used to be cast silently), and
// arithmetic that cannot overflow (ffn_hidden 2^62 used to wrap and crash).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "llmkit/core/error.h"
#include "llmkit/models/bert.h"
#include "llmkit/models/gpt.h"
#include "llmkit/models/rnn_lm.h"
#include "llmkit/models/t5.h"

using namespace llmkit;
using nlohmann::json;

namespace {

template <class Config>
std::string error_of(const json& j) {
  try {
    Config::from_json(j);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

template <class Config>
void expect_refused(json base, const char* key, const json& v, const std::string& want) {
  base[key] = v;
  const std::string msg = error_of<Config>(base);
  EXPECT_NE(msg.find(want), std::string::npos)
      << key << " = " << v.dump() << ": message \"" << msg << "\" lacks \"" << want << "\"";
  EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
}

const json kGpt = {{"arch", "gpt"}, {"n_layer", 2},     {"n_head", 2},
                   {"n_embd", 16},  {"block_size", 32}, {"vocab_size", 100}};

TEST(ConfigSizes, ReasonableConfigsPass) {
  EXPECT_EQ(error_of<models::GPTConfig>(kGpt), "");
  json gpt2 = {{"arch", "gpt"},  {"n_layer", 48},      {"n_head", 25},
               {"n_embd", 1600}, {"block_size", 1024}, {"vocab_size", 50257}};
  EXPECT_EQ(error_of<models::GPTConfig>(gpt2), "") << "GPT-2 XL must pass";
  EXPECT_EQ(error_of<models::BertConfig>(json{{"arch", "bert"}}), "");
  EXPECT_EQ(error_of<models::T5Config>(json{{"arch", "t5"}}), "");
  EXPECT_EQ(error_of<models::RNNLMConfig>(json{{"arch", "rnn"}}), "");
}

TEST(ConfigSizes, GptAbsurdSizesAreRefused) {
  using C = models::GPTConfig;
  expect_refused<C>(kGpt, "n_embd", 1e12, "parameter count");
  expect_refused<C>(kGpt, "n_layer", 1000000000, "parameter count");
  expect_refused<C>(kGpt, "block_size", int64_t(1) << 40, "parameter count");  // learned wpe
  json rope = kGpt;
  rope["pos_encoding"] = "rope";
  expect_refused<C>(rope, "block_size", int64_t(1) << 30, "attention scores");
  expect_refused<C>(kGpt, "ffn_hidden", int64_t(1) << 62, "ffn_hidden");
  expect_refused<C>(kGpt, "vocab_size", int64_t(1) << 33, "32-bit token ids");
  expect_refused<C>(kGpt, "vocab_size", 0, "vocab_size must be positive");
  expect_refused<C>(kGpt, "n_layer", -1, "n_layer must be positive");
  expect_refused<C>(kGpt, "vocab_size", 1e30, "must be an integer");
  expect_refused<C>(kGpt, "n_embd", 16.5, "must be an integer");
  expect_refused<C>(kGpt, "n_embd", json(uint64_t(18446744073709551615ull)), "must be an integer");
  expect_refused<C>(kGpt, "n_embd", "big", "wrong type");
}

TEST(ConfigSizes, IntegralFloatsAreIntegers) {
  json j = kGpt;
  j["n_embd"] = 16.0;
  EXPECT_EQ(models::GPTConfig::from_json(j).n_embd, 16);
}

TEST(ConfigSizes, OtherFamiliesRefuseAbsurdSizes) {
  expect_refused<models::BertConfig>(json{{"arch", "bert"}}, "n_embd", int64_t(1) << 39,
                                     "parameter count");
  expect_refused<models::BertConfig>(json{{"arch", "bert"}}, "type_vocab_size", int64_t(1) << 50,
                                     "type_vocab_size");
  expect_refused<models::T5Config>(json{{"arch", "t5"}}, "n_layer", int64_t(1) << 39,
                                   "parameter count");
  expect_refused<models::T5Config>(json{{"arch", "t5"}}, "block_size", int64_t(1) << 21,
                                   "attention scores");
  expect_refused<models::RNNLMConfig>(json{{"arch", "rnn"}}, "hidden", int64_t(1) << 30,
                                      "parameter count");
  expect_refused<models::RNNLMConfig>(json{{"arch", "rnn"}}, "block_size", int64_t(1) << 38,
                                      "activation");
}

}  // namespace
