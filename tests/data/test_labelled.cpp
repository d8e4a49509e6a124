// Labelled text files (data/labelled.h): TSV with and without a header, JSONL with string and
// number labels, and errors that name the file and line (no tab, bad JSON, missing fields,
// invalid UTF-8, an empty file, a non-numeric regression label).
#include <gtest/gtest.h>

#include <fstream>

#include "common/error_of.h"
#include "llmkit/data/labelled.h"
#include "tests/common/temp_dir.h"

using namespace llmkit;
using llmkit::testing::error_of;

namespace {
std::string write(const llmkit::testing::TempDir& d, const std::string& name,
                  const std::string& text) {
  std::ofstream(d.file(name), std::ios::binary) << text;
  return d.file(name);
}
}  // namespace

TEST(Labelled, ReadsTsvAndJsonl) {
  const llmkit::testing::TempDir d;
  const auto tsv =
      data::read_labelled(write(d, "a.tsv", "text\tlabel\ngood film\tpos\r\n\nbad\tneg\n"));
  ASSERT_EQ(tsv.size(), 2u);
  EXPECT_EQ(tsv[0].text, "good film");
  EXPECT_EQ(tsv[0].label, "pos");
  EXPECT_EQ(tsv[1].label, "neg");
  EXPECT_EQ(tsv[1].line, 4u);
  EXPECT_EQ(data::label_names(tsv), (std::vector<std::string>{"neg", "pos"}));
  const auto js = data::read_labelled(write(
      d, "b.jsonl", "{\"text\": \"x\\ty\", \"label\": 3}\n{\"text\": \"z\", \"label\": -0.5}\n"));
  ASSERT_EQ(js.size(), 2u);
  EXPECT_EQ(js[0].text, "x\ty");
  EXPECT_EQ(js[0].label, "3");
  EXPECT_DOUBLE_EQ(data::label_value(js[1], "b.jsonl", 2), -0.5);
}

TEST(Labelled, ErrorsNameFileAndLine) {
  const llmkit::testing::TempDir d;
  auto err = [&](const std::string& name, const std::string& text) {
    const std::string p = write(d, name, text);
    return error_of([&] { data::read_labelled(p); });
  };
  EXPECT_NE(err("t.tsv", "ok\tpos\nno tab here\n").find("t.tsv:2: no tab"), std::string::npos);
  EXPECT_NE(err("j.jsonl", "{\"text\": \"a\", \"label\": \"x\"}\n{oops\n")
                .find("j.jsonl:2: not valid JSON"),
            std::string::npos);
  EXPECT_NE(err("k.jsonl", "{\"label\": \"x\"}\n").find("k.jsonl:1: no string field \"text\""),
            std::string::npos);
  EXPECT_NE(err("l.jsonl", "{\"text\": \"a\"}\n").find("l.jsonl:1: no field \"label\""),
            std::string::npos);
  EXPECT_NE(err("u.tsv", "bad \xff byte\tpos\n").find("u.tsv:1: not valid UTF-8"),
            std::string::npos);
  EXPECT_NE(err("e.tsv", "\n\n").find("holds no examples"), std::string::npos);
  EXPECT_NE(err("x.csv", "a,b\n").find("neither .tsv nor .jsonl"), std::string::npos);
  EXPECT_NE(error_of([&] { data::read_labelled(d.file("missing.tsv")); }).find("not found"),
            std::string::npos);
  const data::LabelledExample e{"t", "high", 7};
  EXPECT_NE(error_of([&] { data::label_value(e, "r.tsv", 7); }).find("r.tsv:7: label 'high'"),
            std::string::npos);
}
