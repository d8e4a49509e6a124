// Masked-LM data: the 15% / 80-10-10 statistics over many tokens, special tokens never masked or
// drawn, labels, determinism; BERT input windows with and without next-sentence pairs (layout,
// token types, IsNext really is the next text, the 50/50 split), exact resume, the sequential
// evaluation pass, and errors.
#include <gtest/gtest.h>

#include <filesystem>

#include "common/temp_dir.h"
#include "llmkit/data/mlm.h"

using namespace llmkit;
using data::MaskingOptions;
namespace fs = std::filesystem;

namespace {

constexpr int32_t kV = 1000;  // ids 0..4 special: [PAD] [UNK] [CLS] [SEP] [MASK]

MaskingOptions options() {
  MaskingOptions o;
  o.mask_id = 4;
  o.vocab_size = kV;
  o.special_ids = {0, 1, 2, 3, 4};
  return o;
}

// A row: [CLS] then 100 text tokens with a [SEP] after every 20 -> 100 maskable of 106.
std::vector<int32_t> row(int seed) {
  std::vector<int32_t> r = {2};
  for (int i = 0; i < 100; ++i) {
    r.push_back(5 + (seed * 131 + i * 17) % (kV - 5));
    if (i % 20 == 19) r.push_back(3);
  }
  return r;
}

bool special(int32_t id) {
  return id < 5;
}

// A shard whose token i is 5 + i % 991: consecutive text is easy to recognise.
struct ShardFile {
  llmkit::testing::TempDir dir;
  fs::path path;
  explicit ShardFile(int64_t n) {
    path = dir.path / "shard.bin";
    std::vector<int32_t> t(n);
    for (int64_t i = 0; i < n; ++i) t[i] = static_cast<int32_t>(5 + i % 991);
    data::write_shard(path.string(), t, kV);
  }
};

// The row's text with the masked positions restored from the labels.
std::vector<int32_t> unmask(const int32_t* ids, const int32_t* labels, int64_t n) {
  std::vector<int32_t> out(ids, ids + n);
  for (int64_t i = 0; i < n; ++i)
    if (labels[i] != -100) out[i] = labels[i];
  return out;
}

}  // namespace

TEST(Mlm, MaskingStatisticsFollowBert) {
  const MaskingOptions opt = options();
  Generator gen(11);
  int64_t chosen = 0, to_mask = 0, to_random = 0, kept = 0, maskable = 0;
  for (int s = 0; s < 2000; ++s) {
    std::vector<int32_t> ids = row(s), orig = ids, labels(ids.size());
    const int64_t k = data::mask_tokens(ids, labels, opt, gen);
    EXPECT_EQ(k, 15);  // round(0.15 * 100) exactly, every sequence
    for (size_t i = 0; i < ids.size(); ++i) {
      maskable += !special(orig[i]);
      if (labels[i] == -100) {
        EXPECT_EQ(ids[i], orig[i]);
        continue;
      }
      ASSERT_FALSE(special(orig[i])) << "special token chosen";
      EXPECT_EQ(labels[i], orig[i]);
      ++chosen;
      if (ids[i] == 4)
        ++to_mask;
      else if (ids[i] != orig[i])
        ++to_random;
      else
        ++kept;
      EXPECT_TRUE(ids[i] == 4 || !special(ids[i])) << "random replacement drew a special id";
    }
  }
  EXPECT_EQ(chosen, 2000 * 15);
  EXPECT_NEAR(static_cast<double>(chosen) / maskable, 0.15, 1e-12);
  // 30000 chosen tokens: the standard error of a 10% fraction is 0.0017.
  EXPECT_NEAR(static_cast<double>(to_mask) / chosen, 0.8, 0.01);
  EXPECT_NEAR(static_cast<double>(to_random) / chosen, 0.1, 0.01);
  EXPECT_NEAR(static_cast<double>(kept) / chosen, 0.1, 0.01);
}

TEST(Mlm, PositionsAreUniformAndSpecialsNeverMasked) {
  MaskingOptions opt = options();
  opt.mask_prob = 0.5;
  Generator gen(3);
  std::vector<int64_t> hits(106, 0);
  const std::vector<int32_t> base = row(1);
  for (int s = 0; s < 4000; ++s) {
    std::vector<int32_t> ids = base, labels(ids.size());
    data::mask_tokens(ids, labels, opt, gen);
    for (size_t i = 0; i < ids.size(); ++i) hits[i] += labels[i] != -100;
    for (size_t i = 0; i < ids.size(); ++i)
      if (special(base[i])) {
        ASSERT_EQ(ids[i], base[i]);
      }
  }
  for (size_t i = 0; i < base.size(); ++i) {
    if (special(base[i]))
      EXPECT_EQ(hits[i], 0) << i;
    else
      EXPECT_NEAR(hits[i] / 4000.0, 0.5, 0.04) << i;  // 5 standard errors
  }
  // Nothing maskable: nothing chosen.
  std::vector<int32_t> ids = {2, 3, 0, 0}, labels(4);
  EXPECT_EQ(data::mask_tokens(ids, labels, opt, gen), 0);
  EXPECT_EQ(labels, std::vector<int32_t>(4, -100));
}

TEST(Mlm, SameGeneratorStateSameMasks) {
  const MaskingOptions opt = options();
  Generator a(5), b(5), c(6);
  for (int s = 0; s < 20; ++s) {
    std::vector<int32_t> x = row(s), y = row(s), z = row(s), lx(x.size()), ly(x.size()),
                         lz(x.size());
    data::mask_tokens(x, lx, opt, a);
    data::mask_tokens(y, ly, opt, b);
    data::mask_tokens(z, lz, opt, c);
    EXPECT_EQ(x, y);
    EXPECT_EQ(lx, ly);
    EXPECT_NE(lx, lz);
  }
  EXPECT_EQ(a.offset(), b.offset());
}

TEST(Mlm, MaskingErrors) {
  std::vector<int32_t> ids = row(0), labels(ids.size());
  Generator g(1);
  MaskingOptions o = options();
  o.mask_id = kV;
  EXPECT_THROW(o.validate(), Error);
  o = options();
  o.mask_prob = 0;
  EXPECT_THROW(o.validate(), Error);
  o = options();
  o.random_token_frac = 0.3;
  EXPECT_THROW(o.validate(), Error);
  o = options();
  o.vocab_size = 5;
  o.special_ids = {0, 1, 2, 3, 4};
  EXPECT_THROW(o.validate(), Error);  // nothing left to draw
  std::vector<int32_t> short_labels(3);
  EXPECT_THROW(data::mask_tokens(ids, short_labels, options(), g), Error);
}

TEST(Mlm, WindowsAreClsTextSep) {
  ShardFile f(3000);
  data::TokenShard shard = data::TokenShard::open(f.path.string());
  data::MlmBatcher::Options o;
  o.batch = 4;
  o.block = 32;
  o.seed = 7;
  o.masking = options();
  data::MlmBatcher batcher(shard, o);
  EXPECT_EQ(batcher.content_tokens(), 30);
  for (int step = 0; step < 5; ++step) {
    auto b = batcher.next();
    ASSERT_TRUE(b.has_value());
    EXPECT_EQ(b->ids.shape(), (Shape{4, 32}));
    EXPECT_FALSE(b->nsp_labels.defined());
    for (int64_t r = 0; r < 4; ++r) {
      const int32_t* ids = b->ids.data<int32_t>() + r * 32;
      const int32_t* lab = b->labels.data<int32_t>() + r * 32;
      auto text = unmask(ids, lab, 32);
      EXPECT_EQ(text[0], 2);
      EXPECT_EQ(text[31], 3);
      for (int t = 2; t < 31; ++t) EXPECT_EQ((text[t] - 5) % 991, (text[t - 1] - 5 + 1) % 991);
      int64_t n = 0;
      for (int t = 0; t < 32; ++t) n += lab[t] != -100;
      EXPECT_EQ(n, 5);  // round(0.15 * 30) = 4.5 -> 5
      for (int t = 0; t < 32; ++t) EXPECT_EQ(b->token_type_ids.data<int32_t>()[r * 32 + t], 0);
    }
  }
}

TEST(Mlm, NextSentencePairs) {
  ShardFile f(5000);
  data::TokenShard shard = data::TokenShard::open(f.path.string());
  data::MlmBatcher::Options o;
  o.batch = 16;
  o.block = 24;
  o.nsp = true;
  o.seed = 3;
  o.masking = options();
  data::MlmBatcher batcher(shard, o);
  int64_t next = 0, total = 0;
  for (int step = 0; step < 60; ++step) {
    auto b = batcher.next();
    for (int64_t r = 0; r < 16; ++r) {
      const int32_t* ids = b->ids.data<int32_t>() + r * 24;
      const int32_t* types = b->token_type_ids.data<int32_t>() + r * 24;
      auto text = unmask(ids, b->labels.data<int32_t>() + r * 24, 24);
      ASSERT_EQ(text[0], 2);
      ASSERT_EQ(text[23], 3);
      int sep = -1;
      for (int t = 1; t < 23; ++t)
        if (text[t] == 3) sep = sep < 0 ? t : -2;
      ASSERT_GE(sep, 2) << "one [SEP] between A and B";
      ASSERT_LE(sep, 21);
      for (int t = 0; t < 24; ++t) EXPECT_EQ(types[t], t <= sep ? 0 : 1);
      const bool follows = (text[sep + 1] - 5) % 991 == (text[sep - 1] - 5 + 1) % 991;
      const int32_t label = b->nsp_labels.data<int32_t>()[r];
      if (label == 0) {
        EXPECT_TRUE(follows);
      }
      next += label == 0;
      ++total;
    }
  }
  EXPECT_NEAR(static_cast<double>(next) / total, 0.5, 0.07);  // 960 pairs: 4.3 standard errors
}

TEST(Mlm, ResumeFromPositionAndSequentialPass) {
  ShardFile f(2000);
  data::TokenShard shard = data::TokenShard::open(f.path.string());
  data::MlmBatcher::Options o;
  o.batch = 4;
  o.block = 20;
  o.nsp = true;
  o.seed = 9;
  o.masking = options();
  data::MlmBatcher a(shard, o), b(shard, o);
  for (int i = 0; i < 3; ++i) a.next();
  const auto pos = a.position();
  std::vector<std::vector<int32_t>> want;
  for (int i = 0; i < 3; ++i) {
    auto x = a.next();
    want.push_back(x->ids.to_vector<int32_t>());
    want.push_back(x->labels.to_vector<int32_t>());
    want.push_back(x->nsp_labels.to_vector<int32_t>());
  }
  b.set_position(pos);
  for (int i = 0; i < 3; ++i) {
    auto x = b.next();
    EXPECT_EQ(x->ids.to_vector<int32_t>(), want[3 * i]);
    EXPECT_EQ(x->labels.to_vector<int32_t>(), want[3 * i + 1]);
    EXPECT_EQ(x->nsp_labels.to_vector<int32_t>(), want[3 * i + 2]);
  }
  // Sequential: 2000 / 17 = 117 windows -> 29 batches of 4 and one of 1, then the end.
  o.sequential = true;
  o.nsp = false;
  o.block = 19;
  data::MlmBatcher s(shard, o);
  EXPECT_EQ(s.num_windows(), 117);
  std::vector<int32_t> first, first_ids;
  int64_t batches = 0, rows = 0;
  while (auto x = s.next()) {
    if (batches == 0) {
      first = unmask(x->ids.data<int32_t>(), x->labels.data<int32_t>(), 4 * 19);
      first_ids = x->ids.to_vector<int32_t>();
    }
    ++batches;
    rows += x->ids.size(0);
  }
  EXPECT_EQ(batches, 30);
  EXPECT_EQ(rows, 117);
  s.restart();
  auto again = s.next();
  EXPECT_EQ(again->ids.to_vector<int32_t>(), first_ids);  // the same masks too
  EXPECT_EQ(unmask(again->ids.data<int32_t>(), again->labels.data<int32_t>(), 4 * 19), first);
  EXPECT_EQ(first[1], 5);  // the first window starts at the shard's start
}

TEST(Mlm, BatcherErrors) {
  ShardFile f(100);
  data::TokenShard shard = data::TokenShard::open(f.path.string());
  data::MlmBatcher::Options o;
  o.masking = options();
  o.block = 4;
  o.nsp = true;
  EXPECT_THROW(data::MlmBatcher(shard, o), Error);  // no room for A and B
  o.block = 200;
  o.nsp = false;
  EXPECT_THROW(data::MlmBatcher(shard, o), Error);  // shard shorter than one window
  o.block = 16;
  o.batch = 0;
  EXPECT_THROW(data::MlmBatcher(shard, o), Error);
}
