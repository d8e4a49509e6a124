// Token shards and batches: round trips (u16 and u32), corrupt files as clear errors, reuse of
// prepared shards, and batch windows that are deterministic and resumable.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "common/temp_dir.h"
#include "llmkit/data/batches.h"
#include "llmkit/data/shards.h"

using namespace llmkit;
namespace fs = std::filesystem;

TEST(Shards, RoundTripBothWidths) {
  const llmkit::testing::TempDir tmp;  // unique, removed when the test ends
  const fs::path d = tmp.path;
  for (int32_t vocab : {300, 70000}) {
    std::vector<int32_t> ids;
    for (int i = 0; i < 1000; ++i) ids.push_back((i * 7919) % vocab);
    // (std::string("s") + ...: GCC 12 warns falsely on "literal" + std::string&&, PR 105329)
    const std::string p = (d / (std::string("s") + std::to_string(vocab) + ".bin")).string();
    data::write_shard(p, ids, vocab);
    EXPECT_EQ(fs::file_size(p), 64u + 1000u * (vocab <= 65536 ? 2 : 4));
    const auto s = data::TokenShard::open(p);
    ASSERT_EQ(s.size(), 1000);
    std::vector<int32_t> back(1000);
    s.read(0, 1000, back.data());
    EXPECT_EQ(back, ids);
    EXPECT_THROW(s.read(990, 20, back.data()), Error);
  }
  EXPECT_THROW(data::write_shard((d / "bad.bin").string(), std::vector<int32_t>{5}, 5), Error);
}

TEST(Shards, CorruptFilesAreClearErrors) {
  const llmkit::testing::TempDir tmp;  // unique, removed when the test ends
  const fs::path d = tmp.path;
  const std::string p = (d / "x.bin").string();
  data::write_shard(p, std::vector<int32_t>{1, 2, 3, 4}, 10);
  std::ifstream in(p, std::ios::binary);
  const std::string good((std::istreambuf_iterator<char>(in)), {});
  auto check = [&](std::string bytes, const std::string& want) {
    std::ofstream(p, std::ios::binary) << bytes;
    try {
      data::TokenShard::open(p);
      ADD_FAILURE() << want;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(want), std::string::npos) << e.what();
    }
  };
  check(good.substr(0, 10), "shorter than the header");
  check("XXXXXXXX" + good.substr(8), "not an llmkit token shard");
  check(good.substr(0, good.size() - 2), "truncated: header says 4 tokens but the file holds 3");
  std::string big = good;
  big[64] = 50;  // token 50 >= vocab 10
  check(big, "outside the vocabulary");
}

TEST(Shards, PrepareReusesAndSplits) {
  const llmkit::testing::TempDir tmp;  // unique, removed when the test ends
  const fs::path d = tmp.path;
  const std::string txt = (d / "a.txt").string();
  std::string text;
  for (int i = 0; i < 400; ++i) text += "line " + std::to_string(i) + " of the text\n";
  std::ofstream(txt) << text;
  tokenizer::TrainOptions to;
  to.vocab_size = 300;
  const auto tok = tokenizer::Tokenizer::train_from_text(text, to);
  const std::vector<std::string> files = {txt};
  const auto a = data::prepare_shards(files, tok, (d / "s").string(), 0.1);
  EXPECT_FALSE(a.reused);
  EXPECT_NEAR(double(a.val_tokens) / (a.train_tokens + a.val_tokens), 0.1, 0.01);
  const auto b = data::prepare_shards(files, tok, (d / "s").string(), 0.1);
  EXPECT_TRUE(b.reused);
  EXPECT_EQ(b.train_tokens, a.train_tokens);
  std::ofstream(txt, std::ios::app) << "more text\n";
  EXPECT_FALSE(data::prepare_shards(files, tok, (d / "s").string(), 0.1).reused);
  std::ofstream((d / "empty.txt").string());
  const std::vector<std::string> empty = {(d / "empty.txt").string()};
  EXPECT_THROW(data::prepare_shards(empty, tok, (d / "e").string()), Error);
}

TEST(Batches, WindowsShiftedDeterministicAndResumable) {
  const llmkit::testing::TempDir tmp;  // unique, removed when the test ends
  const fs::path d = tmp.path;
  std::vector<int32_t> ids(500);
  for (int i = 0; i < 500; ++i) ids[i] = i % 97;
  const std::string p = (d / "b.bin").string();
  data::write_shard(p, ids, 100);
  const auto s = data::TokenShard::open(p);
  data::BatchSampler a(s, 4, 16, 3), b(s, 4, 16, 3);
  std::vector<int32_t> x(64), y(64), x2(64), y2(64);
  a.next(x.data(), y.data());
  for (int r = 0; r < 4; ++r)
    for (int t = 0; t + 1 < 16; ++t) EXPECT_EQ(y[r * 16 + t], x[r * 16 + t + 1]);
  b.next(x2.data(), y2.data());
  EXPECT_EQ(x, x2);
  const uint64_t pos = a.position();
  a.next(x.data(), y.data());
  data::BatchSampler c(s, 4, 16, 3);
  c.set_position(pos);
  c.next(x2.data(), y2.data());
  EXPECT_EQ(x, x2);
  EXPECT_THROW(data::BatchSampler(s, 1, 500, 0), Error);
}
