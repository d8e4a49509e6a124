// GGUF, the llama.cpp / ggml model file (docs/gguf.md): a header ("GGUF", version, counts),
// typed key/value metadata, tensor infos (name, dims, ggml type, offset) and the aligned tensor
// data. Versions 2 and 3 (little-endian) are read; version 1 and big-endian files are refused.
// Loading maps the file read-only and validates every count, length, offset and size against the
// file before allocating anything, so a corrupt file is one llmkit::Error naming the file and the
// problem. Tensors keep their ggml type; to_f32 dequantises (kernels/cpu/quant.h).
// Not here: turning GGUF names and metadata into a model (models/), the embedded tokenizer.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "llmkit/core/tensor.h"
#include "llmkit/kernels/cpu/quant.h"

namespace llmkit::io {

using kernels::GgmlType;

// One metadata value.
struct GgufValue {
  enum class Type : uint32_t {
    U8 = 0,
    I8 = 1,
    U16 = 2,
    I16 = 3,
    U32 = 4,
    I32 = 5,
    F32 = 6,
    BOOL = 7,
    STRING = 8,
    ARRAY = 9,
    U64 = 10,
    I64 = 11,
    F64 = 12
  };
  Type type = Type::U8;
  Type array_type = Type::U8;  // element type when type == ARRAY
  // Scalar payloads. Integers are in i (and, when non-negative, also in u; a U64 above INT64_MAX
  // only in u, and as_int() refuses it). save_gguf writes U64 from u, the other integers from i.
  // Floats are in f (an F32 exactly, as a double).
  int64_t i = 0;
  uint64_t u = 0;
  double f = 0;
  bool b = false;
  std::string s;
  std::vector<GgufValue> array;

  // Accessors; each raises an Error naming the expected and the actual type.
  int64_t as_int() const;                       // any integer type
  double as_float() const;                      // F32, F64 or any integer type
  bool as_bool() const;                         // BOOL
  const std::string& as_string() const;         // STRING
  std::vector<std::string> as_strings() const;  // ARRAY of STRING
  std::vector<float> as_floats() const;         // ARRAY of F32, F64 or integers
  std::vector<int64_t> as_ints() const;         // ARRAY of integers

  // Makers that fill the payload fields consistently (for save_gguf and tests).
  static GgufValue integer(Type t, int64_t v);  // U8 ... I64; range-checked
  static GgufValue u64(uint64_t v);
  static GgufValue floating(Type t, double v);  // F32 (rounded to float) or F64
  static GgufValue boolean(bool v);
  static GgufValue string(std::string v);
  static GgufValue array_of(Type element, std::vector<GgufValue> values);  // types must match
  static GgufValue strings(const std::vector<std::string>& v);
};

// "U32", "STRING", ...; "unknown" otherwise.
const char* gguf_type_name(GgufValue::Type t);

struct GgufTensor {
  std::string name;
  std::vector<int64_t> ne;  // ggml order: ne[0] is the row length (innermost)
  GgmlType type = GgmlType::F32;
  uint64_t offset = 0;  // from the data section's start
  size_t nbytes = 0;
  const uint8_t* data = nullptr;       // into the file's mapping (GgufFile::mapping)
  std::vector<int64_t> shape() const;  // PyTorch order: ne reversed
  int64_t numel() const;
};

class GgufFile {
 public:
  uint32_t version = 0;
  uint64_t alignment = 32;   // general.alignment, else 32
  uint64_t data_offset = 0;  // where the data section starts in the file
  std::string path;
  std::vector<std::pair<std::string, GgufValue>> metadata;  // file order
  std::vector<GgufTensor> tensors;                          // file order

  const GgufValue* find(std::string_view key) const;  // null when absent (linear search)
  const GgufValue& get(std::string_view key) const;   // Error naming the key and the file
  const GgufTensor* find_tensor(std::string_view name) const;
  const GgufTensor& tensor(std::string_view name) const;  // Error naming the tensor and the file
  // An F32 tensor of t.shape() with the dequantised values. An F32 tensor whose bytes are 4-byte
  // aligned views the mapping without a copy (writes to it are private to this process, never
  // reach the file, and are seen by every other view of the same tensor); other types are
  // dequantised in parallel over rows (parallel_for). Error for types quant.h cannot dequantise.
  Tensor to_f32(const GgufTensor& t) const;

  std::shared_ptr<const void> mapping;  // keeps the bytes alive (also after the GgufFile dies)
};

// Maps `path` (MAP_PRIVATE, copy-on-write) and validates it.
GgufFile load_gguf(const std::string& path);
// Parses a whole file held in memory (copied into a buffer the result owns); `name` is used in
// error messages. The same validation as load_gguf; for tests and fuzzing.
GgufFile parse_gguf(std::string_view bytes, const std::string& name);

// A tensor to write: its raw bytes in its ggml type (ggml_row_size(type, ne[0]) per row).
struct GgufTensorData {
  std::string name;
  std::vector<int64_t> ne;  // ggml order
  GgmlType type = GgmlType::F32;
  std::string_view bytes;
};

// Writes a GGUF v3 file atomically (temp file, fsync, rename; atomic_file.h): the metadata in the
// order given, then the tensor infos and data in the order given, each tensor padded to
// `alignment` (a power of two). A general.alignment entry is added when alignment is not 32 and
// the metadata has none; one that is there must be a U32 equal to `alignment`. Error on repeated
// keys or names, unknown types, byte counts that do not match the dims.
void save_gguf(const std::string& path,
               const std::vector<std::pair<std::string, GgufValue>>& metadata,
               const std::vector<GgufTensorData>& tensors, uint64_t alignment = 32);

}  // namespace llmkit::io
