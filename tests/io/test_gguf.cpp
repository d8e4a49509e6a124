// GGUF reader and writer without Python: a file built byte by byte from the spec, save/load round
// trips of every value type and of quantised tensors, to_f32 (a view for F32, dequantisation in
// parallel otherwise), and every kind of malformed input as one Error naming the file and the
// problem (bad magic, versions 1 and 4, truncation at every byte, impossible counts and lengths,
// tensors out of bounds, misaligned, overlapping, of unknown type, with overflowing dims or
// repeated names). The checks against the `gguf` Python package are in test_gguf_reference.cpp.
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <initializer_list>
#include <string>
#include <vector>

#include "llmkit/core/parallel.h"
#include "llmkit/io/gguf.h"
#include "tests/common/temp_dir.h"

using llmkit::DType;
using llmkit::Error;
using llmkit::Tensor;
using namespace llmkit::io;
using VT = GgufValue::Type;

namespace {

using llmkit::testing::TempDir;

// Little-endian byte builder for hand-made files.
struct Bytes {
  std::string b;
  template <typename T>
  Bytes& put(T v) {
    b.append(reinterpret_cast<const char*>(&v), sizeof(T));
    return *this;
  }
  Bytes& str(const std::string& s) {
    put<uint64_t>(s.size());
    b += s;
    return *this;
  }
  Bytes& pad(size_t a) {
    b.append((a - b.size() % a) % a, '\0');
    return *this;
  }
};

struct TensorSpec {
  std::string name;
  std::vector<uint64_t> ne;
  uint32_t type;
  uint64_t offset;
};

// Header + one U32 key "k" = 7 + the given tensor infos, padded to 32; then `data`.
std::string gguf_file(const std::vector<TensorSpec>& tensors, const std::string& data,
                      uint32_t version = 3) {
  Bytes f;
  f.put<uint32_t>(0x46554747).put<uint32_t>(version).put<uint64_t>(tensors.size()).put<uint64_t>(1);
  f.str("k").put<uint32_t>(4).put<uint32_t>(7);
  for (const TensorSpec& t : tensors) {
    f.str(t.name).put<uint32_t>(static_cast<uint32_t>(t.ne.size()));
    for (uint64_t d : t.ne) f.put<uint64_t>(d);
    f.put<uint32_t>(t.type).put<uint64_t>(t.offset);
  }
  f.pad(32);
  return f.b + data;
}

std::string floats(std::initializer_list<float> v) {
  return std::string(reinterpret_cast<const char*>(std::data(v)), v.size() * 4);
}

// parse_gguf and load_gguf of `bytes` both fail with a message naming the file and every word.
void expect_error(const std::string& bytes, std::initializer_list<const char*> words) {
  TempDir d;
  const std::string path = d.file("bad.gguf");
  std::ofstream(path, std::ios::binary) << bytes;
  for (int mapped = 0; mapped < 2; ++mapped) {
    try {
      if (mapped)
        (void)load_gguf(path);
      else
        (void)parse_gguf(bytes, path);
      ADD_FAILURE() << "no error (mapped=" << mapped << "); expected one naming " << *words.begin();
    } catch (const Error& e) {
      const std::string m = e.what();
      EXPECT_NE(m.find(path), std::string::npos) << m;
      for (const char* w : words)
        EXPECT_NE(m.find(w), std::string::npos) << "'" << w << "' in: " << m;
    }
  }
}

TEST(Gguf, ReadsHandMadeFile) {
  const std::string data = floats({1, 2, 3, 4, 5, 6}) + std::string(8, '\0') + floats({-1, 0.5f});
  const std::string bytes =
      gguf_file({{"w", {3, 2}, 0, 0}, {"b", {2}, 0, 32}}, data + std::string(24, '\0'));
  for (const GgufFile& f : {parse_gguf(bytes, "mem.gguf")}) {
    EXPECT_EQ(f.version, 3u);
    EXPECT_EQ(f.alignment, 32u);
    ASSERT_EQ(f.metadata.size(), 1u);
    EXPECT_EQ(f.get("k").as_int(), 7);
    EXPECT_EQ(f.get("k").type, VT::U32);
    ASSERT_EQ(f.tensors.size(), 2u);
    const GgufTensor& w = f.tensor("w");
    EXPECT_EQ(w.ne, (std::vector<int64_t>{3, 2}));
    EXPECT_EQ(w.shape(), (std::vector<int64_t>{2, 3}));
    EXPECT_EQ(w.numel(), 6);
    EXPECT_EQ(w.nbytes, 24u);
    EXPECT_EQ(f.to_f32(w).to_vector<float>(), (std::vector<float>{1, 2, 3, 4, 5, 6}));
    EXPECT_EQ(f.to_f32(f.tensor("b")).to_vector<float>(), (std::vector<float>{-1, 0.5f}));
    EXPECT_EQ(f.find("nope"), nullptr);
    EXPECT_EQ(f.find_tensor("nope"), nullptr);
  }
}

TEST(Gguf, Version2IsRead) {
  const GgufFile f = parse_gguf(gguf_file({{"w", {2}, 0, 0}}, floats({1, 2}), 2), "v2.gguf");
  EXPECT_EQ(f.version, 2u);
  EXPECT_EQ(f.to_f32(f.tensor("w")).to_vector<float>(), (std::vector<float>{1, 2}));
}

std::vector<std::pair<std::string, GgufValue>> every_kind_of_value() {
  return {
      {"u8", GgufValue::integer(VT::U8, 255)},
      {"i8", GgufValue::integer(VT::I8, -128)},
      {"u16", GgufValue::integer(VT::U16, 65535)},
      {"i16", GgufValue::integer(VT::I16, -32768)},
      {"u32", GgufValue::integer(VT::U32, 4000000000)},
      {"i32", GgufValue::integer(VT::I32, -2000000000)},
      {"u64", GgufValue::u64(18446744073709551615ull)},
      {"i64", GgufValue::integer(VT::I64, -9000000000000000000)},
      {"f32", GgufValue::floating(VT::F32, 0.1)},
      {"f64", GgufValue::floating(VT::F64, 0.1)},
      {"bool", GgufValue::boolean(true)},
      {"str", GgufValue::string("héllo\n\0x")},
      {"empty", GgufValue::string("")},
      {"strs", GgufValue::strings({"a", "", "안녕"})},
      {"ints", GgufValue::array_of(
                   VT::I32, {GgufValue::integer(VT::I32, -1), GgufValue::integer(VT::I32, 5)})},
      {"floats", GgufValue::array_of(VT::F32, {GgufValue::floating(VT::F32, 1.5),
                                               GgufValue::floating(VT::F32, -2)})},
      {"nested", GgufValue::array_of(VT::ARRAY, {GgufValue::strings({"x"})})},
      {"none", GgufValue::array_of(VT::U8, {})},
  };
}

void expect_same_value(const GgufValue& a, const GgufValue& b, const std::string& key) {
  EXPECT_EQ(a.type, b.type) << key;
  EXPECT_EQ(a.i, b.i) << key;
  EXPECT_EQ(a.u, b.u) << key;
  EXPECT_EQ(a.f, b.f) << key;
  EXPECT_EQ(a.b, b.b) << key;
  EXPECT_EQ(a.s, b.s) << key;
  ASSERT_EQ(a.array.size(), b.array.size()) << key;
  if (a.type == VT::ARRAY) {
    EXPECT_EQ(a.array_type, b.array_type) << key;
  }
  for (size_t k = 0; k < a.array.size(); ++k) expect_same_value(a.array[k], b.array[k], key);
}

TEST(Gguf, SaveLoadRoundTrip) {
  TempDir d;
  const auto meta = every_kind_of_value();
  std::string q8(34 * 2 * 3, '\0');  // Q8_0, ne [64, 3]
  for (size_t k = 0; k < q8.size(); ++k) q8[k] = static_cast<char>(k * 7 + 1);
  for (size_t k = 0; k < q8.size(); k += 34) q8[k + 1] = 0x38;  // d = 0.5ish: finite
  const std::string f32 = floats({1, 2, 3});
  const std::string scalar = floats({42});
  for (uint64_t alignment : {32u, 64u, 1u}) {
    const std::string path = d.file("rt" + std::to_string(alignment) + ".gguf");
    save_gguf(path, meta,
              {{"q", {64, 3}, llmkit::kernels::GgmlType::Q8_0, q8},
               {"x", {3}, llmkit::kernels::GgmlType::F32, f32},
               {"s", {}, llmkit::kernels::GgmlType::F32, scalar},
               {"empty", {0, 4}, llmkit::kernels::GgmlType::F32, ""}},
              alignment);
    const GgufFile f = load_gguf(path);
    EXPECT_EQ(f.version, 3u);
    EXPECT_EQ(f.alignment, alignment);
    ASSERT_EQ(f.metadata.size(), meta.size() + (alignment != 32));
    for (size_t k = 0; k < meta.size(); ++k) {
      EXPECT_EQ(f.metadata[k].first, meta[k].first);
      expect_same_value(f.metadata[k].second, meta[k].second, meta[k].first);
    }
    if (alignment != 32) {
      EXPECT_EQ(f.get("general.alignment").as_int(), int64_t(alignment));
    }
    const GgufTensor& q = f.tensor("q");
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(q.data), q.nbytes), q8);
    EXPECT_EQ(q.offset % alignment, 0u);
    std::vector<float> expect(64 * 3);
    llmkit::kernels::dequantize_row(q.type, q8.data(), expect.data(), 64 * 3);
    EXPECT_EQ(f.to_f32(q).to_vector<float>(), expect);
    EXPECT_EQ(f.to_f32(q).shape(), (llmkit::Shape{3, 64}));
    EXPECT_EQ(f.to_f32(f.tensor("x")).to_vector<float>(), (std::vector<float>{1, 2, 3}));
    EXPECT_EQ(f.to_f32(f.tensor("s")).item<float>(), 42.0f);
    EXPECT_EQ(f.to_f32(f.tensor("empty")).shape(), (llmkit::Shape{4, 0}));
  }
}

TEST(Gguf, AccessorsNameTheMismatch) {
  const auto meta = every_kind_of_value();
  auto v = [&](const char* key) -> const GgufValue& {
    for (const auto& [k, x] : meta)
      if (k == key) return x;
    throw std::runtime_error(key);
  };
  EXPECT_EQ(v("u8").as_int(), 255);
  EXPECT_EQ(v("i64").as_int(), -9000000000000000000);
  EXPECT_EQ(v("f32").as_float(), static_cast<double>(0.1f));
  EXPECT_EQ(v("u32").as_float(), 4e9);
  EXPECT_TRUE(v("bool").as_bool());
  EXPECT_EQ(v("strs").as_strings(), (std::vector<std::string>{"a", "", "안녕"}));
  EXPECT_EQ(v("ints").as_ints(), (std::vector<int64_t>{-1, 5}));
  EXPECT_EQ(v("ints").as_floats(), (std::vector<float>{-1, 5}));
  EXPECT_EQ(v("floats").as_floats(), (std::vector<float>{1.5f, -2}));
  EXPECT_EQ(v("u64").as_float(), 18446744073709551615.0);
  auto msg = [](auto&& f) -> std::string {
    try {
      f();
    } catch (const Error& e) {
      return e.what();
    }
    return "(no error)";
  };
  EXPECT_NE(msg([&] { v("u64").as_int(); }).find("does not fit"), std::string::npos);
  EXPECT_NE(msg([&] { v("str").as_int(); }).find("got STRING"), std::string::npos);
  EXPECT_NE(msg([&] { v("u8").as_string(); }).find("got U8"), std::string::npos);
  EXPECT_NE(msg([&] { v("ints").as_strings(); }).find("ARRAY of I32"), std::string::npos);
  EXPECT_NE(msg([&] { v("strs").as_floats(); }).find("ARRAY of STRING"), std::string::npos);
  EXPECT_NE(msg([&] { v("f32").as_bool(); }).find("got F32"), std::string::npos);
  EXPECT_NE(msg([&] { GgufValue::integer(VT::U8, 256); }).find("256"), std::string::npos);
  const GgufFile f = parse_gguf(gguf_file({}, ""), "meta.gguf");
  EXPECT_NE(msg([&] { f.get("llama.block_count"); }).find("llama.block_count"), std::string::npos);
  EXPECT_NE(msg([&] { f.get("x"); }).find("meta.gguf"), std::string::npos);
  EXPECT_NE(msg([&] { f.tensor("w"); }).find("'w'"), std::string::npos);
}

TEST(Gguf, F32IsAViewThatOutlivesTheFile) {
  TempDir d;
  const std::string path = d.file("v.gguf");
  save_gguf(path, {}, {{"w", {2, 2}, llmkit::kernels::GgmlType::F32, floats({1, 2, 3, 4})}});
  Tensor w;
  {
    const GgufFile f = load_gguf(path);
    w = f.to_f32(f.tensor("w"));
    EXPECT_EQ(w.raw_data(), static_cast<const void*>(f.tensor("w").data));  // no copy
  }
  EXPECT_EQ(w.to_vector<float>(), (std::vector<float>{1, 2, 3, 4}));
  w.data<float>()[0] = 100;  // private to this process
  const GgufFile again = load_gguf(path);
  EXPECT_EQ(again.to_f32(again.tensor("w")).to_vector<float>()[0], 1.0f);
}

TEST(Gguf, DequantisesInParallelLikeOneThread) {
  // A Q4_0 tensor of 300 rows of 256: the threaded result equals row-by-row dequantize_row.
  std::string q(18 * 8 * 300, '\0');
  for (size_t k = 0; k < q.size(); ++k) q[k] = static_cast<char>((k * 131) ^ (k >> 3));
  for (size_t k = 0; k < q.size(); k += 18) q[k + 1] = 0x2C;
  TempDir d;
  const std::string path = d.file("p.gguf");
  save_gguf(path, {}, {{"q", {256, 300}, llmkit::kernels::GgmlType::Q4_0, q}});
  const GgufFile f = load_gguf(path);
  const int before = llmkit::num_threads();
  llmkit::set_num_threads(2);
  const std::vector<float> got = f.to_f32(f.tensor("q")).to_vector<float>();
  llmkit::set_num_threads(before);
  std::vector<float> expect(256 * 300);
  for (int r = 0; r < 300; ++r)
    llmkit::kernels::dequantize_row(llmkit::kernels::GgmlType::Q4_0, q.data() + r * 18 * 8,
                                    expect.data() + r * 256, 256);
  EXPECT_EQ(got, expect);
}

TEST(Gguf, UnsupportedDequantisationNamesTheType) {
  const GgufFile f =
      parse_gguf(gguf_file({{"q", {256}, 11, 0}}, std::string(110, '\0')), "q3.gguf");
  EXPECT_EQ(f.tensor("q").type, llmkit::kernels::GgmlType::Q3_K);
  try {
    (void)f.to_f32(f.tensor("q"));
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("Q3_K"), std::string::npos) << e.what();
  }
}

// ---- malformed inputs ---------------------------------------------------------------------------

TEST(GgufMalformed, MagicAndVersion) {
  std::string bytes = gguf_file({}, "");
  expect_error("GGML" + bytes.substr(4), {"not a GGUF file", "GGML"});
  expect_error("abc", {"not a GGUF file"});
  expect_error("", {"not a GGUF file"});
  bytes[4] = 1;
  expect_error(bytes, {"version 1"});
  bytes[4] = 4;
  expect_error(bytes, {"version 4"});
  bytes[4] = 0;
  bytes[7] = 3;
  expect_error(bytes, {"big-endian"});
}

TEST(GgufMalformed, TruncatedAnywhere) {
  const std::string full =
      gguf_file({{"w", {3, 2}, 0, 0}, {"b", {2}, 0, 32}},
                floats({1, 2, 3, 4, 5, 6}) + std::string(8, '\0') + floats({1, 2}));
  ASSERT_NO_THROW(parse_gguf(full, "full.gguf"));
  for (size_t n = 0; n < full.size(); ++n) {
    try {
      (void)parse_gguf(full.substr(0, n), "cut.gguf");
      ADD_FAILURE() << "no error at length " << n;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("cut.gguf"), std::string::npos) << e.what();
    }
  }
  expect_error(full.substr(0, 40), {"truncated"});
  expect_error(full.substr(0, full.size() - 1), {"tensor 'b'", "outside the data section"});
}

TEST(GgufMalformed, ImpossibleCountsAndLengths) {
  Bytes h;
  h.put<uint32_t>(0x46554747).put<uint32_t>(3).put<uint64_t>(0).put<uint64_t>(1ull << 60);
  expect_error(h.b + std::string(64, '\0'), {"metadata count", "impossible"});
  Bytes t;
  t.put<uint32_t>(0x46554747).put<uint32_t>(3).put<uint64_t>(~0ull).put<uint64_t>(0);
  expect_error(t.b + std::string(64, '\0'), {"tensor count", "impossible"});
  Bytes s;  // a key whose length runs past the end
  s.put<uint32_t>(0x46554747).put<uint32_t>(3).put<uint64_t>(0).put<uint64_t>(1);
  s.put<uint64_t>(1000).b += "abc";
  expect_error(s.b + std::string(10, '\0'), {"metadata key", "past the end"});
  Bytes a;  // an array of 2^40 U32
  a.put<uint32_t>(0x46554747).put<uint32_t>(3).put<uint64_t>(0).put<uint64_t>(1);
  a.str("arr").put<uint32_t>(9).put<uint32_t>(4).put<uint64_t>(1ull << 40);
  expect_error(a.b + std::string(64, '\0'), {"'arr'", "elements"});
  Bytes v;  // a string value too long
  v.put<uint32_t>(0x46554747).put<uint32_t>(3).put<uint64_t>(0).put<uint64_t>(1);
  v.str("s").put<uint32_t>(8).put<uint64_t>(1ull << 62);
  expect_error(v.b, {"string", "past the end"});
  Bytes u;  // unknown value type
  u.put<uint32_t>(0x46554747).put<uint32_t>(3).put<uint64_t>(0).put<uint64_t>(1);
  u.str("x").put<uint32_t>(13).put<uint64_t>(0);
  expect_error(u.b, {"'x'", "unknown value type 13"});
  Bytes dup;  // the same key twice
  dup.put<uint32_t>(0x46554747).put<uint32_t>(3).put<uint64_t>(0).put<uint64_t>(2);
  dup.str("k").put<uint32_t>(0).put<uint8_t>(1).str("k").put<uint32_t>(0).put<uint8_t>(2);
  expect_error(dup.b, {"'k'", "twice"});
  Bytes deep;  // arrays nested 100 deep
  deep.put<uint32_t>(0x46554747).put<uint32_t>(3).put<uint64_t>(0).put<uint64_t>(1);
  deep.str("d").put<uint32_t>(9);
  for (int k = 0; k < 100; ++k) deep.put<uint32_t>(9).put<uint64_t>(1);
  expect_error(deep.b + std::string(64, '\0'), {"'d'", "nested"});
}

TEST(GgufMalformed, BadTensorInfos) {
  const std::string data(64, '\0');
  expect_error(gguf_file({{"w", {4}, 0, 64}}, data), {"tensor 'w'", "outside the data section"});
  expect_error(gguf_file({{"w", {4}, 0, ~0ull - 31}}, data), {"tensor 'w'", "outside"});
  expect_error(gguf_file({{"w", {4}, 0, 4}}, data), {"tensor 'w'", "offset 4", "alignment 32"});
  expect_error(gguf_file({{"w", {32}, 16, 0}}, data), {"tensor 'w'", "IQ2_XXS", "does not read"});
  expect_error(gguf_file({{"w", {32}, 77, 0}}, data), {"tensor 'w'", "77"});
  expect_error(gguf_file({{"w", {1ull << 32, 1ull << 32}, 0, 0}}, data),
               {"tensor 'w'", "overflow"});
  expect_error(gguf_file({{"w", {1ull << 63}, 0, 0}}, data), {"tensor 'w'", "overflow"});
  expect_error(gguf_file({{"w", {1ull << 61}, 0, 0}}, data), {"tensor 'w'", "outside"});
  expect_error(gguf_file({{"w", {1ull << 62}, 0, 0}}, data), {"tensor 'w'", "overflow"});
  expect_error(gguf_file({{"w", {1, 1, 1, 1, 1}, 0, 0}}, data), {"tensor 'w'", "5 dims"});
  expect_error(gguf_file({{"w", {4}, 0, 0}, {"w", {4}, 0, 32}}, data), {"tensor 'w'", "twice"});
  expect_error(gguf_file({{"w", {16}, 0, 0}, {"v", {4}, 0, 32}}, data), {"'v'", "overlaps", "'w'"});
  expect_error(gguf_file({{"q", {33}, 2, 0}}, data), {"tensor 'q'", "33", "Q4_0"});
}

TEST(GgufMalformed, BadAlignment) {
  auto with_alignment = [](uint32_t type, uint64_t value) {
    Bytes f;
    f.put<uint32_t>(0x46554747).put<uint32_t>(3).put<uint64_t>(0).put<uint64_t>(1);
    f.str("general.alignment").put<uint32_t>(type);
    if (type == 4)
      f.put<uint32_t>(static_cast<uint32_t>(value));
    else
      f.put<uint64_t>(value);
    return f.b;
  };
  expect_error(with_alignment(4, 0), {"general.alignment", "power of two"});
  expect_error(with_alignment(4, 48), {"general.alignment", "48"});
  expect_error(with_alignment(10, 64), {"general.alignment", "U64"});
  EXPECT_EQ(parse_gguf(with_alignment(4, 64), "a.gguf").alignment, 64u);
}

TEST(GgufMalformed, SaveRefusesBadInput) {
  TempDir d;
  const std::string p = d.file("x.gguf");
  auto msg = [](auto&& f) -> std::string {
    try {
      f();
    } catch (const Error& e) {
      return e.what();
    }
    return "(no error)";
  };
  using llmkit::kernels::GgmlType;
  EXPECT_NE(msg([&] {
              save_gguf(p, {}, {{"w", {4}, GgmlType::F32, "abc"}});
            }).find("3 bytes"),
            std::string::npos);
  EXPECT_NE(
      msg([&] {
        save_gguf(p, {}, {{"w", {1}, GgmlType::F32, "abcd"}, {"w", {1}, GgmlType::F32, "abcd"}});
      }).find("twice"),
      std::string::npos);
  EXPECT_NE(msg([&] {
              save_gguf(p, {}, {{"w", {32}, GgmlType(16), ""}});
            }).find("unknown"),
            std::string::npos);
  EXPECT_NE(msg([&] { save_gguf(p, {}, {}, 48); }).find("power of two"), std::string::npos);
  EXPECT_NE(msg([&] {
              save_gguf(p, {{"general.alignment", GgufValue::integer(VT::U32, 64)}}, {}, 32);
            }).find("general.alignment"),
            std::string::npos);
  EXPECT_FALSE(std::ifstream(p).good());  // nothing was written
}

}  // namespace
