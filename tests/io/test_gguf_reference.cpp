// GGUF against the `gguf` Python package (llama.cpp's gguf-py, run by tests/io/gguf_reference.py
// in ref_python()): its GGUFWriter's blocks of all 11 types we dequantise, read by our reader,
// must dequantise bit for bit as gguf.quants.dequantize does (the first mismatching block is
// printed); the real SmolLM2 file's every key/value and tensor info must equal GGUFReader's and
// several real tensors must dequantise identically; our save_gguf output must read back in
// GGUFReader as written. Each test skips visibly without the package or the model.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iomanip>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "llmkit/io/gguf.h"
#include "llmkit/io/safetensors.h"
#include "tests/common/reference.h"
#include "tests/common/temp_dir.h"

using llmkit::Tensor;
using llmkit::kernels::GgmlType;
using namespace llmkit::io;
using VT = GgufValue::Type;
using nlohmann::json;

namespace {

using llmkit::testing::TempDir;

#define SKIP_WITHOUT_GGUF()                                                                        \
  if (!llmkit::testing::ref_python_has("gguf"))                                                    \
  GTEST_SKIP() << "the `gguf` Python package does not import in " << llmkit::testing::ref_python() \
               << " (scripts/install-deps.sh --test installs it): reference check skipped"

// Runs tests/io/gguf_reference.py with `args`; false (and the command printed) on failure.
bool run_reference(const std::string& args) {
  const std::string cmd = llmkit::testing::ref_python() + " " + llmkit::testing::source_dir() +
                          "/tests/io/gguf_reference.py " + args;
  const int rc = std::system(cmd.c_str());
  if (rc != 0) ADD_FAILURE() << "failed (" << rc << "): " << cmd;
  return rc == 0;
}

json read_json(const std::string& path) {
  std::ifstream f(path);
  return json::parse(f);
}

std::string hex(const void* p, size_t n) {
  std::ostringstream os;
  for (size_t k = 0; k < n; ++k)
    os << std::hex << std::setw(2) << std::setfill('0')
       << static_cast<unsigned>(static_cast<const uint8_t*>(p)[k]);
  return os.str();
}

uint32_t bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

// Every element of `ours` equals `theirs` bit for bit; else the first differing block, printed.
void expect_bits_equal(const GgufTensor& t, const std::vector<float>& ours,
                       const std::vector<float>& theirs) {
  ASSERT_EQ(ours.size(), theirs.size()) << t.name;
  const int64_t block = llmkit::kernels::ggml_block_size(t.type);
  for (size_t i = 0; i < ours.size(); ++i) {
    if (bits(ours[i]) == bits(theirs[i])) continue;
    const size_t b = i / block, bytes = llmkit::kernels::ggml_type_size(t.type);
    std::ostringstream os;
    os << t.name << " (" << llmkit::kernels::ggml_type_name(t.type) << "): block " << b
       << " differs first at element " << i << ": ours " << std::setprecision(9) << ours[i]
       << " (0x" << std::hex << bits(ours[i]) << "), gguf-py " << std::dec << theirs[i] << " (0x"
       << std::hex << bits(theirs[i]) << ")\n  block bytes: " << hex(t.data + b * bytes, bytes);
    ADD_FAILURE() << os.str();
    return;
  }
}

std::vector<float> values_of(const Tensor& t) {
  return t.contiguous().to_vector<float>();
}

// Dequantises t row by row with dequantize_row (what to_f32 runs in parallel), `rows` rows.
std::vector<float> rows_of(const GgufTensor& t, int64_t rows) {
  const int64_t ne0 = t.ne.empty() ? 1 : t.ne[0];
  const size_t row_bytes = llmkit::kernels::ggml_row_size(t.type, ne0);
  std::vector<float> out(static_cast<size_t>(rows * ne0));
  for (int64_t r = 0; r < rows; ++r)
    llmkit::kernels::dequantize_row(t.type, t.data + r * row_bytes, out.data() + r * ne0, ne0);
  return out;
}

TEST(GgufReference, DequantisationMatchesGgufPyBlockByBlock) {
  SKIP_WITHOUT_GGUF();
  TempDir d;
  for (int seed : {1, 2}) {
    ASSERT_TRUE(run_reference("blocks " + d.path.string() + " " + std::to_string(seed)));
    const GgufFile f = load_gguf(d.file("blocks.gguf"));
    const SafetensorsFile expected = load_safetensors(d.file("expected.safetensors"));
    std::set<std::string> types;
    ASSERT_EQ(expected.tensors.size(), f.tensors.size());
    for (const auto& [name, want] : expected.tensors) {
      const GgufTensor& t = f.tensor(name);
      types.insert(llmkit::kernels::ggml_type_name(t.type));
      const std::vector<float> theirs = values_of(want);
      expect_bits_equal(t, rows_of(t, t.numel() / t.ne[0]), theirs);
      expect_bits_equal(t, values_of(f.to_f32(t)), theirs);
    }
    EXPECT_EQ(types, (std::set<std::string>{"F32", "F16", "BF16", "Q4_0", "Q4_1", "Q5_0", "Q5_1",
                                            "Q8_0", "Q4_K", "Q5_K", "Q6_K"}));
  }
}

// One value against its JSON from gguf_reference.py dump (strings as hex).
void expect_value(const GgufValue& v, VT type, const json& j, const std::string& key) {
  switch (type) {
    case VT::STRING:
      EXPECT_EQ(hex(v.s.data(), v.s.size()), j.get<std::string>()) << key;
      break;
    case VT::U64:
      EXPECT_EQ(v.u, j.get<uint64_t>()) << key;
      break;
    case VT::F32:
    case VT::F64:
      EXPECT_EQ(v.f, j.get<double>()) << key;
      break;
    case VT::BOOL:
      EXPECT_EQ(v.b, j.get<bool>()) << key;
      break;
    default:
      EXPECT_EQ(v.i, j.get<int64_t>()) << key;
      break;
  }
}

// Our reading of `f` equals GGUFReader's dump `j`: header, every key/value, every tensor info.
void expect_same_as_reader(const GgufFile& f, const json& j) {
  EXPECT_EQ(f.version, j["version"].get<uint32_t>());
  EXPECT_EQ(f.alignment, j["alignment"].get<uint64_t>());
  EXPECT_EQ(f.data_offset, j["data_offset"].get<uint64_t>());
  const json& meta = j["metadata"];
  ASSERT_EQ(f.metadata.size(), meta.size());
  for (size_t k = 0; k < meta.size(); ++k) {
    const auto& [key, v] = f.metadata[k];
    const json& m = meta[k];
    ASSERT_EQ(key, m["key"].get<std::string>());
    ASSERT_EQ(static_cast<int>(v.type), m["type"].get<int>()) << key;
    if (v.type != VT::ARRAY) {
      expect_value(v, v.type, m["value"], key);
      continue;
    }
    ASSERT_EQ(v.array.size(), m["value"].size()) << key;
    if (!v.array.empty()) {
      EXPECT_EQ(static_cast<int>(v.array_type), m["array_type"].get<int>());
    }
    for (size_t e = 0; e < v.array.size(); ++e)
      expect_value(v.array[e], v.array_type, m["value"][e], key + "[" + std::to_string(e) + "]");
  }
  const json& ts = j["tensors"];
  ASSERT_EQ(f.tensors.size(), ts.size());
  for (size_t k = 0; k < ts.size(); ++k) {
    const GgufTensor& t = f.tensors[k];
    EXPECT_EQ(t.name, ts[k]["name"].get<std::string>());
    EXPECT_EQ(static_cast<int>(t.type), ts[k]["type"].get<int>()) << t.name;
    EXPECT_EQ(t.ne, ts[k]["ne"].get<std::vector<int64_t>>()) << t.name;
    EXPECT_EQ(t.offset, ts[k]["offset"].get<uint64_t>()) << t.name;
    EXPECT_EQ(t.nbytes, ts[k]["nbytes"].get<size_t>()) << t.name;
  }
}

TEST(GgufReference, SmolLM2MatchesGGUFReader) {
  SKIP_WITHOUT_GGUF();
  const std::string model = llmkit::testing::model_path("smollm2");
  if (model.empty())
    GTEST_SKIP() << "SmolLM2-135M-Instruct GGUF not in " << llmkit::testing::models_dir()
                 << " (scripts/get-models.sh fetches it)";
  TempDir d;
  // Real tensors of each type in the file: Q8_0 (the first 64 rows of the embedding), Q4_1, F32.
  const std::vector<std::string> names = {"token_embd.weight:64",   "blk.0.attn_q.weight",
                                          "blk.0.ffn_down.weight",  "blk.29.attn_v.weight",
                                          "blk.0.attn_norm.weight", "output_norm.weight"};
  std::string args =
      "dump " + model + " " + d.file("dump.json") + " --values " + d.file("values.safetensors");
  for (const std::string& n : names) args += " " + n;
  ASSERT_TRUE(run_reference(args));
  const GgufFile f = load_gguf(model);
  expect_same_as_reader(f, read_json(d.file("dump.json")));
  EXPECT_EQ(f.get("general.architecture").as_string(), "llama");
  EXPECT_EQ(f.get("tokenizer.ggml.tokens").as_strings().size(), 49152u);
  const SafetensorsFile values = load_safetensors(d.file("values.safetensors"));
  ASSERT_EQ(values.tensors.size(), names.size());
  std::set<GgmlType> types;
  for (const auto& [spec, want] : values.tensors) {
    const std::string name = spec.substr(0, spec.find(':'));
    const GgufTensor& t = f.tensor(name);
    types.insert(t.type);
    const int64_t rows = want.numel() / (t.ne.empty() ? 1 : t.ne[0]);
    expect_bits_equal(t, rows_of(t, rows), values_of(want));
    if (rows == t.numel() / t.ne[0]) {
      expect_bits_equal(t, values_of(f.to_f32(t)), values_of(want));
    }
  }
  EXPECT_EQ(types, (std::set<GgmlType>{GgmlType::Q8_0, GgmlType::Q4_1, GgmlType::F32}));
}

TEST(GgufReference, GGUFReaderReadsOurFile) {
  SKIP_WITHOUT_GGUF();
  TempDir d;
  std::mt19937 rng(7);
  auto random_bytes = [&](GgmlType t, int64_t ne0, int64_t rows) {
    std::string b(llmkit::kernels::ggml_row_size(t, ne0) * rows, '\0');
    for (char& c : b) c = static_cast<char>(rng());
    const size_t bytes = llmkit::kernels::ggml_type_size(t);
    const size_t d_at = t == GgmlType::Q6_K ? 208 : 0;
    for (size_t at = 0; at < b.size(); at += bytes) b[at + d_at + 1] &= 0x3B;  // finite scale
    return b;
  };
  std::vector<float> w(24);
  for (size_t k = 0; k < w.size(); ++k) w[k] = 0.25f * static_cast<float>(k) - 3;
  const std::string f32(reinterpret_cast<const char*>(w.data()), w.size() * 4);
  const std::string q8 = random_bytes(GgmlType::Q8_0, 64, 3);
  const std::string q6 = random_bytes(GgmlType::Q6_K, 256, 2);
  const std::string q41 = random_bytes(GgmlType::Q4_1, 32, 5);
  const std::vector<std::pair<std::string, GgufValue>> meta = {
      {"general.architecture", GgufValue::string("llama")},
      {"u8", GgufValue::integer(VT::U8, 200)},
      {"i8", GgufValue::integer(VT::I8, -3)},
      {"u16", GgufValue::integer(VT::U16, 60000)},
      {"i16", GgufValue::integer(VT::I16, -30000)},
      {"u32", GgufValue::integer(VT::U32, 4000000000)},
      {"i32", GgufValue::integer(VT::I32, -7)},
      {"u64", GgufValue::u64(18446744073709551615ull)},
      {"i64", GgufValue::integer(VT::I64, -1)},
      {"f32", GgufValue::floating(VT::F32, 1e-5)},
      {"f64", GgufValue::floating(VT::F64, 3.141592653589793)},
      {"yes", GgufValue::boolean(true)},
      {"no", GgufValue::boolean(false)},
      {"text", GgufValue::string("안녕 <|im_start|>\n")},
      {"tokens", GgufValue::strings({"a", "Ġb", "", "😀"})},
      {"scores", GgufValue::array_of(VT::F32, {GgufValue::floating(VT::F32, -1.5),
                                               GgufValue::floating(VT::F32, 0)})},
      {"ids", GgufValue::array_of(
                  VT::I32, {GgufValue::integer(VT::I32, 1), GgufValue::integer(VT::I32, -2)})},
  };
  const std::string path = d.file("ours.gguf");
  save_gguf(path, meta,
            {{"w", {4, 6}, GgmlType::F32, f32},
             {"q8", {64, 3}, GgmlType::Q8_0, q8},
             {"q6", {256, 2}, GgmlType::Q6_K, q6},
             {"q41", {32, 5, 1}, GgmlType::Q4_1, q41}},
            64);
  ASSERT_TRUE(run_reference("dump " + path + " " + d.file("dump.json") + " --values " +
                            d.file("values.safetensors") + " w q8 q6 q41"));
  const GgufFile f = load_gguf(path);
  expect_same_as_reader(f, read_json(d.file("dump.json")));
  const SafetensorsFile values = load_safetensors(d.file("values.safetensors"));
  for (const auto& [name, want] : values.tensors) {
    const GgufTensor& t = f.tensor(name);
    EXPECT_EQ(want.shape(), t.shape()) << name;
    expect_bits_equal(t, values_of(f.to_f32(t)), values_of(want));
  }
}

}  // namespace
