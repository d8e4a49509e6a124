// safetensors: round trip of every dtype, a hand-built file from the spec, and every kind of
// corruption or truncation as a clear error (never a crash); atomic writes; the SVG plot.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "llmkit/io/atomic_file.h"
#include "llmkit/io/safetensors.h"
#include "llmkit/io/svg_plot.h"

using namespace llmkit;
namespace fs = std::filesystem;

static std::string tmp(const std::string& name) {
  return (fs::temp_directory_path() / ("llmkit_io_" + std::to_string(getpid()) + "_" + name)).string();
}

static std::string file_bytes(const std::string& header, const std::string& data) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[i] = static_cast<char>(static_cast<uint64_t>(header.size()) >> (8 * i));
  return s + header + data;
}

static void expect_error(const std::string& bytes, const std::string& want) {
  try {
    io::parse_safetensors(bytes, "x.safetensors");
    ADD_FAILURE() << "no error, wanted: " << want;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(want), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("x.safetensors"), std::string::npos) << e.what();
  }
}

TEST(Safetensors, RoundTripEveryDtype) {
  const std::string p = tmp("rt.safetensors");
  io::NamedTensors ts = {
      {"f32", Tensor::from_vector(std::vector<float>{1.5f, -2, 3, 4, 5, 6}, {2, 3})},
      {"f64", Tensor::from_vector(std::vector<double>{3.25}, {})},
      {"i32", Tensor::from_vector(std::vector<int32_t>{-7, 8}, {2})},
      {"u8", Tensor::from_vector(std::vector<uint8_t>{1, 2, 3}, {3, 1})},
      {"bf16", Tensor::from_vector(std::vector<float>{1, 2}, {2}).to(DType::BF16)},
      {"f16", Tensor::from_vector(std::vector<float>{0.5f, -1}, {1, 2}).to(DType::F16)},
      {"empty", Tensor::zeros({0, 4})},
      {"strided", Tensor::from_vector(std::vector<float>{1, 2, 3, 4}, {2, 2}).transpose(0, 1)}};
  io::save_safetensors(p, ts, {{"step", "12"}});
  io::SafetensorsFile f = io::load_safetensors(p);
  EXPECT_EQ(f.metadata.at("step"), "12");
  ASSERT_EQ(f.tensors.size(), ts.size());
  for (const auto& [name, t] : ts) {
    Tensor l = f.get(name);
    EXPECT_EQ(l.shape(), t.shape()) << name;
    EXPECT_EQ(l.dtype(), t.dtype()) << name;
    EXPECT_EQ(l.to_vector<double>(), t.to_vector<double>()) << name;
  }
  Tensor kept = f.get("f32");
  f = io::SafetensorsFile{};  // the mapping lives on in `kept`
  EXPECT_EQ(kept.to_vector<float>()[0], 1.5f);
  EXPECT_THROW(io::load_safetensors(p).get("nope"), Error);
  fs::remove(p);
}

TEST(Safetensors, HandBuiltFileFromTheSpec) {
  std::string data(8, '\0');
  const float v[2] = {1.0f, -2.0f};
  std::memcpy(data.data(), v, 8);
  const std::string b =
      file_bytes(R"({"__metadata__":{"a":"b"},"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", data);
  io::SafetensorsFile f = io::parse_safetensors(b, "x.safetensors");
  EXPECT_EQ(f.get("w").to_vector<float>(), (std::vector<float>{1.0f, -2.0f}));
  EXPECT_EQ(f.metadata.at("a"), "b");
}

TEST(Safetensors, CorruptionIsAClearError) {
  const std::string d8(8, '\0');
  expect_error("abc", "shorter than the 8-byte");
  expect_error(std::string("\xff\xff\xff\xff\xff\xff\x00\x00", 8) + "{}", "absurd");
  expect_error(file_bytes("{\"w\":", ""), "not valid JSON");
  expect_error(file_bytes("[1,2]", ""), "not a JSON object");
  expect_error(file_bytes(R"({"w":{"shape":[2],"data_offsets":[0,8]}})", d8), "no dtype");
  expect_error(file_bytes(R"({"w":{"dtype":"F32","data_offsets":[0,8]}})", d8), "no shape");
  expect_error(file_bytes(R"({"w":{"dtype":"F32","shape":[2]}})", d8), "no data_offsets");
  expect_error(file_bytes(R"({"w":{"dtype":"Q4","shape":[2],"data_offsets":[0,8]}})", d8), "unsupported dtype 'Q4'");
  expect_error(file_bytes(R"({"w":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", d8), "bad shape");
  expect_error(file_bytes(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}})", d8), "begin > end");
  expect_error(file_bytes(R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", d8), "truncated");
  expect_error(file_bytes(R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", d8), "needs 12 bytes");
  expect_error(file_bytes(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", d8), "overlaps");
  expect_error(file_bytes(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", d8), "unused bytes");
  expect_error(file_bytes(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", d8), "after the last tensor");
  expect_error(file_bytes(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", d8), "appears twice");
}

TEST(Safetensors, EveryTruncationThrows) {
  const std::string p = tmp("trunc.safetensors");
  io::save_safetensors(p, {{"a", Tensor::ones({3, 5})}, {"b", Tensor::zeros({7}, DType::I32)}});
  std::ifstream in(p, std::ios::binary);
  const std::string whole((std::istreambuf_iterator<char>(in)), {});
  EXPECT_NO_THROW(io::parse_safetensors(whole, "x.safetensors"));
  for (size_t n = 0; n < whole.size(); ++n)
    EXPECT_THROW(io::parse_safetensors(whole.substr(0, n), "x.safetensors"), Error) << n;
  fs::remove(p);
}

TEST(AtomicFile, CommitReplacesAbandonLeavesOld) {
  const std::string p = tmp("atomic.txt");
  io::write_file_atomic(p, "old");
  {
    io::AtomicFile f(p);
    f.write("new", 3);
  }  // not committed
  std::ifstream a(p);
  EXPECT_EQ(std::string((std::istreambuf_iterator<char>(a)), {}), "old");
  EXPECT_FALSE(fs::exists(p + ".tmp." + std::to_string(getpid())));
  io::write_file_atomic(p, "new");
  std::ifstream b(p);
  EXPECT_EQ(std::string((std::istreambuf_iterator<char>(b)), {}), "new");
  EXPECT_THROW(io::write_file_atomic("/nonexistent-dir/x", "y"), Error);
  fs::remove(p);
}

TEST(SvgPlot, WellFormedWithLegendAndEscapes) {
  io::PlotOptions o;
  o.title = "loss <&>";
  const std::string s = io::line_plot_svg(
      {{"train", {1, 2, 3}, {3.0, 2.0, NAN}}, {"val & test", {1, 3}, {3.5, 2.5}}, {"empty", {}, {}}}, o);
  EXPECT_EQ(s.rfind("<svg", 0), 0u);
  EXPECT_NE(s.find("</svg>"), std::string::npos);
  size_t lines = 0;
  for (size_t at = s.find("<polyline"); at != std::string::npos; at = s.find("<polyline", at + 1)) ++lines;
  EXPECT_EQ(lines, 2u);
  EXPECT_NE(s.find("val &amp; test"), std::string::npos);
  EXPECT_NE(s.find("loss &lt;&amp;&gt;"), std::string::npos);
  o.log_y = true;
  EXPECT_NO_THROW(io::line_plot_svg({{"z", {1, 2}, {0.0, -1.0}}}, o));
}
