// safetensors: round trips of every dtype, a file built byte by byte from the spec, every kind
// of corruption as one clear Error, truncation and byte flips at every position without a crash,
// and mapped tensors that outlive the SafetensorsFile.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "llmkit/io/safetensors.h"
#include "tests/common/temp_dir.h"

namespace fs = std::filesystem;
using llmkit::DType;
using llmkit::Error;
using llmkit::Shape;
using llmkit::Tensor;
using namespace llmkit::io;

namespace {

using llmkit::testing::TempDir;

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}

// A file from its parts: 8-byte little-endian header length, header, data.
std::string st_bytes(const std::string& header, const std::string& data) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((header.size() >> (8 * i)) & 0xff);
  return out + header + data;
}

std::string bytes_of(const Tensor& t) {
  const Tensor c = t.contiguous();
  return std::string(static_cast<const char*>(c.raw_data()), c.numel() * dtype_size(c.dtype()));
}

// A tensor of any dtype filled with a byte pattern (no arithmetic, so every bit pattern is fine).
Tensor patterned(const Shape& shape, DType dtype, int seed) {
  Tensor t = Tensor::empty(shape, dtype);
  auto* p = static_cast<unsigned char*>(t.raw_data());
  for (size_t i = 0; i < t.numel() * dtype_size(dtype); ++i) p[i] = (i * 37 + seed * 11) & 0xff;
  return t;
}

// Loading `bytes` from a file and from memory both fail, naming the file and every word given.
void expect_load_error(const std::string& bytes, std::initializer_list<const char*> words) {
  TempDir d;
  const std::string p = d.file("bad.safetensors");
  write_bytes(p, bytes);
  for (int in_memory = 0; in_memory < 2; ++in_memory) {
    try {
      if (in_memory)
        parse_safetensors(bytes, p);
      else
        load_safetensors(p);
      ADD_FAILURE() << "no error for " << *words.begin();
    } catch (const Error& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find(p), std::string::npos) << msg;
      EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
      for (const char* w : words) EXPECT_NE(msg.find(w), std::string::npos) << w << " | " << msg;
    }
  }
}

const std::string kF32x2 = std::string("\x00\x00\x80\x3f\x00\x00\x20\xc0", 8);  // 1.0, -2.5

}  // namespace

TEST(Safetensors, RoundTripEveryDtype) {
  TempDir d;
  const std::string p = d.file("all.safetensors");
  NamedTensors in = {
      {"f32", patterned({2, 3}, DType::F32, 1)},
      {"f64", patterned({3}, DType::F64, 2)},
      {"i32", patterned({2, 2}, DType::I32, 3)},
      {"u8", patterned({5}, DType::U8, 4)},
      {"bf16", patterned({4, 1}, DType::BF16, 5)},
      {"f16", patterned({3, 3}, DType::F16, 6)},
      {"scalar", patterned({}, DType::F32, 7)},
      {"empty", patterned({0, 3}, DType::F32, 8)},
      {"empty_u8", patterned({0}, DType::U8, 9)},
      {"transposed", Tensor::from_vector<float>({1, 2, 3, 4, 5, 6}, {2, 3}).transpose(0, 1)}};
  const std::map<std::string, std::string> meta = {{"format", "pt"}, {"step", "7"}, {"k", ""}};
  save_safetensors(p, in, meta);
  EXPECT_EQ(fs::directory_iterator(d.path)->path().filename(), "all.safetensors");  // no temp

  const std::string raw = slurp(p);
  uint64_t n = 0;
  std::memcpy(&n, raw.data(), 8);
  EXPECT_EQ(n % 8, 0u);
  EXPECT_EQ(raw[8], '{');

  SafetensorsFile f = load_safetensors(p);
  EXPECT_EQ(f.metadata, meta);
  EXPECT_EQ(f.path, p);
  ASSERT_EQ(f.tensors.size(), in.size());
  for (const auto& [name, t] : in) {
    const Tensor got = f.get(name);
    EXPECT_EQ(got.dtype(), t.dtype()) << name;
    EXPECT_EQ(got.shape(), t.shape()) << name;
    EXPECT_TRUE(got.is_contiguous()) << name;
    EXPECT_EQ(bytes_of(got), bytes_of(t)) << name;
    // Written aligned, so every tensor is a zero-copy view of the mapping.
    EXPECT_EQ(got.storage()->nbytes(), raw.size()) << name;
    EXPECT_EQ(reinterpret_cast<uintptr_t>(got.raw_data()) % dtype_size(got.dtype()), 0u) << name;
  }
  EXPECT_EQ(f.get("transposed").shape(), (Shape{3, 2}));
  EXPECT_EQ(f.get("transposed").to_vector<float>(), (std::vector<float>{1, 4, 2, 5, 3, 6}));
  // Tensors come back in data order: largest element size first, then by name.
  EXPECT_EQ(f.tensors.front().first, "f64");
  EXPECT_EQ(parse_safetensors(raw, p).get("f16").to_vector<float>(),
            f.get("f16").to_vector<float>());
}

TEST(Safetensors, EmptyFileOfTensors) {
  TempDir d;
  const std::string p = d.file("none.safetensors");
  save_safetensors(p, {});
  EXPECT_EQ(slurp(p), st_bytes("{}      ", ""));
  SafetensorsFile f = load_safetensors(p);
  EXPECT_TRUE(f.tensors.empty());
  EXPECT_TRUE(f.metadata.empty());
}

// A file written by hand from the spec; also what save_safetensors must produce byte for byte
// (nlohmann sorts keys, so "__metadata__" comes first and each entry's fields are sorted).
TEST(Safetensors, KnownBytes) {
  const std::string header =
      R"({"__metadata__":{"k":"v"},"a":{"data_offsets":[0,8],"dtype":"F32","shape":[2]},)"
      R"("b":{"data_offsets":[8,11],"dtype":"U8","shape":[1,3]}})";
  const std::string padded = header + std::string((8 - header.size() % 8) % 8, ' ');
  const std::string data = kF32x2 + "\x07\x08\x09";
  const std::string expected = st_bytes(padded, data);

  TempDir d;
  const std::string p = d.file("known.safetensors");
  write_bytes(p, expected);
  SafetensorsFile f = load_safetensors(p);
  EXPECT_EQ(f.metadata.at("k"), "v");
  EXPECT_EQ(f.get("a").to_vector<float>(), (std::vector<float>{1.0f, -2.5f}));
  EXPECT_EQ(f.get("b").shape(), (Shape{1, 3}));
  EXPECT_EQ(f.get("b").to_vector<uint8_t>(), (std::vector<uint8_t>{7, 8, 9}));

  const std::string q = d.file("saved.safetensors");
  save_safetensors(q, {{"b", f.get("b")}, {"a", f.get("a")}}, {{"k", "v"}});
  EXPECT_EQ(slurp(q), expected);
}

// Other writers need not pad the header: an unaligned tensor is copied, not viewed.
TEST(Safetensors, UnpaddedHeaderIsCopied) {
  const std::string header = R"({"x": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}})";
  ASSERT_NE((8 + header.size()) % 4, 0u);
  TempDir d;
  const std::string p = d.file("unpadded.safetensors");
  write_bytes(p, st_bytes(header, kF32x2));
  const Tensor x = load_safetensors(p).get("x");
  EXPECT_EQ(x.to_vector<float>(), (std::vector<float>{1.0f, -2.5f}));
}

TEST(Safetensors, GetNamesFileAndTensor) {
  TempDir d;
  const std::string p = d.file("g.safetensors");
  save_safetensors(p, {{"w", patterned({2}, DType::F32, 0)}});
  SafetensorsFile f = load_safetensors(p);
  try {
    f.get("h.0.attn.c_attn.weight");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(p), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("h.0.attn.c_attn.weight"), std::string::npos);
  }
}

TEST(Safetensors, CorruptionsAreClearErrors) {
  // One tensor "a" described by `entry`, then `data`.
  auto one = [](const std::string& entry, const std::string& data = kF32x2) {
    return st_bytes(R"({"a":)" + entry + "}", data);
  };
  auto f32 = [](const std::string& shape, const std::string& offsets) {
    return R"({"dtype":"F32","shape":)" + shape + R"(,"data_offsets":)" + offsets + "}";
  };
  std::string len_only(8, '\0');
  len_only[0] = 100;
  std::string absurd(8, '\0');
  absurd[3] = 0x10;  // 256 MiB
  // The length prefix.
  expect_load_error("", {"shorter than the 8-byte"});
  expect_load_error("abc", {"shorter than the 8-byte"});
  expect_load_error(len_only + "{}", {"truncated", "header length is 100", "only 2"});
  expect_load_error(absurd + "{}", {"absurd"});
  // The JSON.
  expect_load_error(st_bytes("{not json", ""), {"not valid JSON"});
  expect_load_error(st_bytes("", ""), {"not valid JSON"});
  expect_load_error(st_bytes("[1, 2]", ""), {"not a JSON object"});
  expect_load_error(one("5"), {"tensor 'a'", "not a JSON object"});
  expect_load_error(st_bytes(R"({"__metadata__": [1]})", ""), {"__metadata__", "not a JSON"});
  expect_load_error(st_bytes(R"({"__metadata__": {"k": 1}})", ""), {"__metadata__", "'k'"});
  // Entry fields.
  expect_load_error(one(R"({"shape":[2],"data_offsets":[0,8]})"), {"'a'", "no dtype"});
  expect_load_error(one(R"({"dtype":4,"shape":[2],"data_offsets":[0,8]})"), {"dtype", "string"});
  expect_load_error(one(R"({"dtype":"F32","data_offsets":[0,8]})"), {"'a'", "no shape"});
  expect_load_error(one(R"({"dtype":"F32","shape":2,"data_offsets":[0,8]})"), {"not an array"});
  expect_load_error(one(f32("[2.0]", "[0,8]")), {"not a list of integers"});
  expect_load_error(one(f32(R"(["2"])", "[0,8]")), {"not a list of integers"});
  expect_load_error(one(R"({"dtype":"F32","shape":[2]})"), {"'a'", "no data_offsets"});
  expect_load_error(one(f32("[2]", "[0]")), {"[begin, end]"});
  expect_load_error(one(f32("[2]", "[0,8,9]")), {"[begin, end]"});
  expect_load_error(one(f32("[2]", "[-1,7]")), {"[begin, end]"});
  expect_load_error(one(f32("[2]", "{}")), {"[begin, end]"});
  expect_load_error(one(R"({"dtype":"Q4","shape":[2],"data_offsets":[0,8]})"),
                    {"unknown dtype 'Q4'"});
  expect_load_error(one(R"({"dtype":"I64","shape":[1],"data_offsets":[0,8]})"),
                    {"'I64'", "does not support"});
  expect_load_error(one(f32("[-2]", "[0,8]")), {"negative dimension"});
  expect_load_error(one(f32("[4294967296,4294967296,16]", "[0,8]")), {"impossibly large"});
  // Offsets against the data.
  expect_load_error(one(f32("[2]", "[8,0]")), {"begin > end"});
  expect_load_error(one(f32("[4]", "[0,16]")),
                    {"truncated: tensor 'a' needs bytes up to 16 but the data section has 8"});
  expect_load_error(one(f32("[3]", "[0,8]")),
                    {"shape [3] of F32 needs 12 bytes but data_offsets span 8"});
  expect_load_error(one(f32("[1]", "[0,4]")), {"bytes 4..8", "fully indexed"});
  expect_load_error(
      st_bytes(R"({"a":)" + f32("[1]", "[0,4]") + R"(,"b":)" + f32("[1]", "[8,12]") + "}",
               kF32x2 + "abcd"),
      {"bytes 4..8", "no tensor"});
  expect_load_error(
      st_bytes(R"({"a":)" + f32("[2]", "[0,8]") + R"(,"b":)" + f32("[1]", "[4,8]") + "}", kF32x2),
      {"'b'", "overlaps", "'a'"});
  expect_load_error(
      st_bytes(R"({"a":)" + f32("[1]", "[0,4]") + R"(,"a":)" + f32("[1]", "[4,8]") + "}", kF32x2),
      {"'a'", "appears twice"});
}

TEST(Safetensors, FileSystemErrors) {
  TempDir d;
  try {
    load_safetensors(d.file("missing.safetensors"));
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("No such file"), std::string::npos) << e.what();
  }
  try {
    load_safetensors(d.path.string());
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("directory"), std::string::npos) << e.what();
  }
  EXPECT_THROW(save_safetensors(d.file("no/dir/x.safetensors"), {}), Error);
}

TEST(Safetensors, SaveRejectsBadNames) {
  TempDir d;
  const Tensor t = patterned({2}, DType::F32, 0);
  const std::string p = d.file("x.safetensors");
  EXPECT_THROW(save_safetensors(p, {{"w", t}, {"w", t}}), Error);
  EXPECT_THROW(save_safetensors(p, {{"__metadata__", t}}), Error);
  EXPECT_THROW(save_safetensors(p, {{"bad\xff", t}}), Error);
  EXPECT_THROW(save_safetensors(p, {{"w", Tensor()}}), Error);
  EXPECT_FALSE(fs::exists(p));
  EXPECT_TRUE(fs::is_empty(d.path));
}

// Every proper prefix of a valid file is an Error, from disk and from memory; flipping any byte
// gives a valid file or an Error, never a crash (run under ASan/UBSan).
TEST(Safetensors, TruncationAndByteFlipsNeverCrash) {
  TempDir d;
  const std::string p = d.file("v.safetensors");
  save_safetensors(p,
                   {{"a", patterned({3, 2}, DType::F32, 1)},
                    {"b", patterned({5}, DType::U8, 2)},
                    {"c", patterned({2}, DType::F64, 3)}},
                   {{"m", "x"}});
  const std::string good = slurp(p);
  const std::string cut = d.file("cut.safetensors");
  for (size_t n = 0; n < good.size(); ++n) {
    write_bytes(cut, good.substr(0, n));
    EXPECT_THROW(load_safetensors(cut), Error) << n << " of " << good.size() << " bytes";
    EXPECT_THROW(parse_safetensors(std::string_view(good).substr(0, n), cut), Error) << n;
  }
  int loaded = 0, rejected = 0;
  for (size_t i = 0; i < good.size(); ++i)
    for (unsigned char x : {0x01, 0x20, 0x80, 0xff}) {
      std::string bad = good;
      bad[i] = static_cast<char>(bad[i] ^ x);
      try {
        SafetensorsFile f = parse_safetensors(bad, "flipped");
        for (const auto& [name, t] : f.tensors) (void)bytes_of(t);
        ++loaded;
      } catch (const Error&) {
        ++rejected;
      }
    }
  EXPECT_GT(rejected, 0);
  EXPECT_GT(loaded, 0);  // flips inside the data section are still valid files
}

namespace {
bool mapped(const std::string& path) {
  return slurp("/proc/self/maps").find(fs::canonical(path).string()) != std::string::npos;
}
}  // namespace

// The mapping belongs to the tensors' Storage: it outlives the SafetensorsFile and goes away
// with the last tensor. Writes to a loaded tensor are private (copy-on-write).
TEST(Safetensors, BorrowedTensorsOutliveTheFile) {
  TempDir d;
  const std::string p = d.file("m.safetensors");
  save_safetensors(p, {{"w", Tensor::from_vector<float>({1, 2, 3, 4}, {2, 2})},
                       {"v", Tensor::from_vector<int32_t>({7, 8}, {2})}});
  Tensor w;
  {
    SafetensorsFile f = load_safetensors(p);
    w = f.get("w");
    EXPECT_TRUE(mapped(p));
  }
  EXPECT_TRUE(mapped(p));
  EXPECT_EQ(w.to_vector<float>(), (std::vector<float>{1, 2, 3, 4}));
  w.data<float>()[0] = 100;
  EXPECT_EQ(w.to_vector<float>(), (std::vector<float>{100, 2, 3, 4}));
  EXPECT_EQ(load_safetensors(p).get("w").to_vector<float>(), (std::vector<float>{1, 2, 3, 4}));
  w = Tensor();
  EXPECT_FALSE(mapped(p));
}

// PyTorch reads our file with nothing but the spec (json + torch.frombuffer) and writes one back.
// There is no Python safetensors package in Debian, so this is the only outside cross-check.
TEST(Safetensors, PyTorchReadsAndWrites) {
  if (std::system("/usr/bin/python3 -c 'import torch' >/dev/null 2>&1") != 0)
    GTEST_SKIP() << "PyTorch not installed (Debian python3-torch): skipping the cross-check";
  TempDir d;
  const std::string ours = d.file("ours.safetensors"), theirs = d.file("theirs.safetensors");
  save_safetensors(ours, {{"x", Tensor::from_vector<float>({1.5f, -2, 3, 4, 5, 6}, {2, 3})},
                          {"i", Tensor::from_vector<int32_t>({-7, 9}, {2})}});
  const std::string script = d.file("check.py");
  std::ofstream(script) << R"(import json, struct, sys, torch
src, dst = sys.argv[1], sys.argv[2]
raw = open(src, "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
h = json.loads(raw[8:8 + n])
data = bytearray(raw[8 + n:])
def get(k, dt):
    b, e = h[k]["data_offsets"]
    return torch.frombuffer(data[b:e], dtype=dt).reshape(h[k]["shape"])
assert get("x", torch.float32).tolist() == [[1.5, -2, 3], [4, 5, 6]]
assert get("i", torch.int32).tolist() == [-7, 9]
t = torch.arange(6, dtype=torch.float64).reshape(3, 2) / 4
b = t.numpy().tobytes() if hasattr(t, "numpy") else bytes(t.untyped_storage())
hdr = json.dumps({"t": {"dtype": "F64", "shape": [3, 2], "data_offsets": [0, len(b)]}}).encode()
hdr += b" " * (-len(hdr) % 8)
open(dst, "wb").write(struct.pack("<Q", len(hdr)) + hdr + b)
)";
  ASSERT_EQ(std::system(("/usr/bin/python3 " + script + " " + ours + " " + theirs).c_str()), 0);
  EXPECT_EQ(load_safetensors(theirs).get("t").to_vector<double>(),
            (std::vector<double>{0, 0.25, 0.5, 0.75, 1, 1.25}));
}
