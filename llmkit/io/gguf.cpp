// GGUF reading and writing (gguf.h, docs/gguf.md). The parser walks the bytes with a cursor that
// checks every read against what is left, bounds every count by the bytes left before reserving
// memory, and reports the first problem as one Error "<file>: <what>" (the byte offset where it
// helps). The checks follow ggml's gguf.cpp (the C reference) where it is stricter than the
// Python reader: duplicate keys and names, at most 4 dims, ne products that fit in int64,
// general.alignment a U32 power of two, tensor data aligned, in bounds and not overlapping.
#include "llmkit/io/gguf.h"

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <limits>
#include <unordered_set>

#include "llmkit/core/parallel.h"
#include "llmkit/io/atomic_file.h"
#include "llmkit/io/mapped_file.h"

namespace llmkit::io {

static_assert(std::endian::native == std::endian::little, "GGUF I/O assumes little-endian");

namespace {

using VT = GgufValue::Type;

constexpr uint32_t kMagic = 0x46554747;  // "GGUF" read as a little-endian uint32
constexpr int kMaxDims = 4;              // GGML_MAX_DIMS
constexpr int kMaxDepth = 8;             // arrays of arrays ... (ggml allows none)
// Values of all arrays together: far above any real vocabulary (~10^5 - 10^6 tokens), low enough
// that a GgufValue per element (~100 bytes) stays bounded.
constexpr uint64_t kMaxValues = uint64_t{1} << 24;

bool is_integer(VT t) {
  switch (t) {
    case VT::U8:
    case VT::I8:
    case VT::U16:
    case VT::I16:
    case VT::U32:
    case VT::I32:
    case VT::U64:
    case VT::I64:
      return true;
    default:
      return false;
  }
}
bool is_float(VT t) {
  return t == VT::F32 || t == VT::F64;
}

// Bytes of a scalar of type t (0 for STRING / ARRAY / unknown).
size_t scalar_size(VT t) {
  switch (t) {
    case VT::U8:
    case VT::I8:
    case VT::BOOL:
      return 1;
    case VT::U16:
    case VT::I16:
      return 2;
    case VT::U32:
    case VT::I32:
    case VT::F32:
      return 4;
    case VT::U64:
    case VT::I64:
    case VT::F64:
      return 8;
    default:
      return 0;
  }
}

// The fewest bytes a value of type t occupies (a string: its length; an array: type + count).
size_t min_size(VT t) {
  if (t == VT::STRING) return 8;
  if (t == VT::ARRAY) return 12;
  return scalar_size(t);
}

bool known_value_type(uint32_t t) {
  return t <= static_cast<uint32_t>(VT::F64);
}

class Cursor {
 public:
  Cursor(std::string_view bytes, const std::string& file) : b_(bytes), file_(file) {}
  size_t pos() const { return pos_; }
  size_t left() const { return b_.size() - pos_; }
  const std::string& file() const { return file_; }

  void need(size_t n, const char* what) const {
    if (n > left())
      fail(file_, ": truncated: ", what, " at byte ", pos_, " needs ", n, " bytes but only ",
           left(), " are left");
  }
  template <typename T>
  T read(const char* what) {
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, b_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  std::string str(const char* what) {
    const size_t at = pos_;
    const uint64_t n = read<uint64_t>(what);
    if (n > left())
      fail(file_, ": ", what, " at byte ", at, " has length ", n, ", past the end of the file (",
           left(), " bytes left)");
    std::string s(b_.data() + pos_, n);
    pos_ += n;
    return s;
  }

 private:
  std::string_view b_;
  size_t pos_ = 0;
  const std::string& file_;
};

GgufValue read_value(Cursor& c, VT type, int depth, uint64_t* budget, const std::string& key);

GgufValue read_scalar(Cursor& c, VT type, const std::string& key) {
  GgufValue v;
  v.type = type;
  const char* what = "a metadata value";
  auto set_int = [&](int64_t x) {
    v.i = x;
    v.u = static_cast<uint64_t>(x);
  };
  switch (type) {
    case VT::U8:
      set_int(c.read<uint8_t>(what));
      break;
    case VT::I8:
      set_int(c.read<int8_t>(what));
      break;
    case VT::U16:
      set_int(c.read<uint16_t>(what));
      break;
    case VT::I16:
      set_int(c.read<int16_t>(what));
      break;
    case VT::U32:
      set_int(c.read<uint32_t>(what));
      break;
    case VT::I32:
      set_int(c.read<int32_t>(what));
      break;
    case VT::I64:
      set_int(c.read<int64_t>(what));
      break;
    case VT::U64:
      v.u = c.read<uint64_t>(what);
      v.i = v.u <= static_cast<uint64_t>(INT64_MAX) ? static_cast<int64_t>(v.u) : 0;
      break;
    case VT::F32:
      v.f = c.read<float>(what);
      break;
    case VT::F64:
      v.f = c.read<double>(what);
      break;
    case VT::BOOL:
      v.b = c.read<uint8_t>(what) != 0;
      break;
    case VT::STRING:
      v.s = c.str("a metadata string");
      break;
    default:
      fail(c.file(), ": key '", key, "': internal: bad scalar type");
  }
  return v;
}

GgufValue read_value(Cursor& c, VT type, int depth, uint64_t* budget, const std::string& key) {
  if (type != VT::ARRAY) return read_scalar(c, type, key);
  if (depth >= kMaxDepth)
    fail(c.file(), ": key '", key, "': arrays nested more than ", kMaxDepth, " deep");
  const size_t at = c.pos();
  const uint32_t et = c.read<uint32_t>("an array's element type");
  if (!known_value_type(et))
    fail(c.file(), ": key '", key, "': array at byte ", at, " has unknown element type ", et);
  const uint64_t n = c.read<uint64_t>("an array's length");
  const VT etype = static_cast<VT>(et);
  if (n > c.left() / min_size(etype))
    fail(c.file(), ": key '", key, "': array at byte ", at, " claims ", n, " elements of ",
         gguf_type_name(etype), ", more than the ", c.left(), " bytes left can hold");
  if (n > *budget)
    fail(c.file(), ": key '", key, "': array of ", n,
         " elements: the file's arrays hold more than ", kMaxValues,
         " values in all, which llmkit refuses");
  *budget -= n;
  GgufValue v;
  v.type = VT::ARRAY;
  v.array_type = etype;
  v.array.reserve(n);
  for (uint64_t k = 0; k < n; ++k) v.array.push_back(read_value(c, etype, depth + 1, budget, key));
  return v;
}

// The magic and the version (2 or 3), each refused with the reason.
uint32_t read_magic_version(Cursor& c, std::string_view bytes, const std::string& file) {
  if (bytes.size() < 8)
    fail(file, ": not a GGUF file (", bytes.size(), " bytes, shorter than magic and version)");
  if (c.read<uint32_t>("magic") != kMagic) {
    std::string shown;
    for (int k = 0; k < 4; ++k) {
      const auto ch = static_cast<unsigned char>(bytes[k]);
      if (ch >= 32 && ch < 127) {
        shown += static_cast<char>(ch);
      } else {
        shown += "\\x";
        shown += "0123456789abcdef"[ch >> 4];
        shown += "0123456789abcdef"[ch & 15];
      }
    }
    fail(file, ": not a GGUF file (magic '", shown, "', expected 'GGUF')");
  }
  const uint32_t version = c.read<uint32_t>("version");
  if (version == 2 || version == 3) return version;
  if (version == 1)
    fail(file,
         ": GGUF version 1 (32-bit counts, 2023) is not supported; llmkit reads versions 2 "
         "and 3 (convert the model again with a current llama.cpp)");
  if ((version & 0xFFFF) == 0)
    fail(file, ": a big-endian GGUF file (version field ", version,
         "); llmkit reads little-endian GGUF v2 and v3");
  fail(file, ": GGUF version ", version, " is not supported (llmkit reads versions 2 and 3)");
}

// One tensor info: name, dims, type, offset; its byte size computed and overflow-checked.
GgufTensor read_tensor_info(Cursor& c, std::unordered_set<std::string>* names) {
  const std::string& file = c.file();
  const size_t at = c.pos();
  GgufTensor t;
  t.name = c.str("a tensor name");
  const std::string where = "tensor '" + t.name + "' (info at byte " + std::to_string(at) + ")";
  if (!names->insert(t.name).second) fail(file, ": ", where, ": the name appears twice");
  const uint32_t n_dims = c.read<uint32_t>("a tensor's dim count");
  if (n_dims > kMaxDims) fail(file, ": ", where, " has ", n_dims, " dims (at most 4)");
  // The product of the non-zero dims must fit too (as for every llmkit Tensor, check_shape):
  // an empty tensor [0, 2^40, 2^40] has no bytes but no shape either.
  int64_t numel = 1, nonzero = 1;
  for (uint32_t d = 0; d < n_dims; ++d) {
    const uint64_t n = c.read<uint64_t>("a tensor dim");
    if (n > static_cast<uint64_t>(INT64_MAX) ||
        __builtin_mul_overflow(nonzero, std::max<int64_t>(static_cast<int64_t>(n), 1), &nonzero))
      fail(file, ": ", where, ": dims overflow (dim ", d, " is ", n, ")");
    numel *= static_cast<int64_t>(n);  // <= nonzero
    t.ne.push_back(static_cast<int64_t>(n));
  }
  const uint32_t type = c.read<uint32_t>("a tensor type");
  if (!kernels::ggml_type_known(type))
    fail(file, ": ", where, " has ggml type ", kernels::ggml_type_name(GgmlType(type)), " (", type,
         "), which llmkit does not read");
  t.type = GgmlType(type);
  t.offset = c.read<uint64_t>("a tensor offset");
  const int64_t ne0 = t.ne.empty() ? 1 : t.ne[0];
  const int64_t block = kernels::ggml_block_size(t.type);
  if (ne0 % block != 0)
    fail(file, ": ", where, ": row length ", ne0, " is not a multiple of ",
         kernels::ggml_type_name(t.type), "'s block of ", block);
  const uint64_t rows = ne0 == 0 ? 0 : static_cast<uint64_t>(numel / ne0);
  uint64_t nbytes = 0;
  if (__builtin_mul_overflow(static_cast<uint64_t>(ne0 / block),
                             static_cast<uint64_t>(kernels::ggml_type_size(t.type)), &nbytes) ||
      __builtin_mul_overflow(nbytes, rows, &nbytes) || nbytes > SIZE_MAX)
    fail(file, ": ", where, ": byte size overflows");
  t.nbytes = nbytes;
  return t;
}

// Sets the alignment and the data section after the infos (which end at `end`), checks every
// tensor's bytes (aligned, inside the file, not overlapping) and points them into `base`.
void place_tensors(GgufFile& out, uint64_t end, uint64_t size, const uint8_t* base) {
  const std::string& file = out.path;
  if (const GgufValue* a = out.find("general.alignment")) {
    if (a->type != VT::U32)
      fail(file, ": general.alignment is a ", gguf_type_name(a->type), ", not a U32");
    if (a->u == 0 || (a->u & (a->u - 1)) != 0)
      fail(file, ": general.alignment ", a->u, " is not a power of two");
    out.alignment = a->u;
  }
  out.data_offset = (end + out.alignment - 1) / out.alignment * out.alignment;
  const uint64_t data_size = out.data_offset <= size ? size - out.data_offset : 0;
  if (!out.tensors.empty() && out.data_offset > size)
    fail(file, ": truncated: the data section should start at byte ", out.data_offset,
         " but the file has ", size, " bytes");
  std::vector<const GgufTensor*> order;
  for (GgufTensor& t : out.tensors) {
    if (t.offset % out.alignment != 0)
      fail(file, ": tensor '", t.name, "' has offset ", t.offset, ", not a multiple of the ",
           "alignment ", out.alignment);
    if (t.offset > data_size || t.nbytes > data_size - t.offset)
      fail(file, ": tensor '", t.name, "' (", t.nbytes, " bytes at offset ", t.offset,
           ") lies outside the data section (", data_size, " bytes): truncated or corrupt");
    t.data = base + out.data_offset + t.offset;
    order.push_back(&t);
  }
  std::sort(order.begin(), order.end(),
            [](const GgufTensor* a, const GgufTensor* b) { return a->offset < b->offset; });
  for (size_t k = 1; k < order.size(); ++k)
    if (order[k - 1]->nbytes > 0 && order[k - 1]->offset + order[k - 1]->nbytes > order[k]->offset)
      fail(file, ": tensor '", order[k]->name, "' (offset ", order[k]->offset,
           ") overlaps tensor '", order[k - 1]->name, "' (", order[k - 1]->nbytes,
           " bytes at offset ", order[k - 1]->offset, ")");
}

// Everything the header says, validated against a file of bytes.size() bytes; the tensors'
// data pointers are set from `base` (the first byte of the file).
GgufFile parse(std::string_view bytes, const std::string& file, const uint8_t* base) {
  Cursor c(bytes, file);
  GgufFile out;
  out.path = file;
  out.version = read_magic_version(c, bytes, file);
  const uint64_t n_tensors = c.read<uint64_t>("tensor count");
  const uint64_t n_kv = c.read<uint64_t>("metadata count");
  // A key/value takes at least 13 bytes (key length, type, a 1-byte value); a tensor info 24.
  if (n_kv > c.left() / 13)
    fail(file, ": metadata count ", n_kv, " is impossible: only ", c.left(),
         " bytes are left (truncated or corrupt)");
  if (n_tensors > c.left() / 24)
    fail(file, ": tensor count ", n_tensors, " is impossible: only ", c.left(),
         " bytes are left (truncated or corrupt)");

  uint64_t budget = kMaxValues;
  std::unordered_set<std::string> keys;
  out.metadata.reserve(n_kv);
  for (uint64_t k = 0; k < n_kv; ++k) {
    const size_t at = c.pos();
    std::string key = c.str("a metadata key");
    const uint32_t t = c.read<uint32_t>("a metadata value type");
    if (!known_value_type(t))
      fail(file, ": key '", key, "' (byte ", at, ") has unknown value type ", t);
    if (!keys.insert(key).second) fail(file, ": key '", key, "' appears twice (byte ", at, ")");
    GgufValue v = read_value(c, static_cast<VT>(t), 0, &budget, key);
    out.metadata.emplace_back(std::move(key), std::move(v));
  }
  std::unordered_set<std::string> names;
  out.tensors.reserve(n_tensors);
  for (uint64_t k = 0; k < n_tensors; ++k) out.tensors.push_back(read_tensor_info(c, &names));
  place_tensors(out, c.pos(), bytes.size(), base);
  return out;
}

[[noreturn]] void mismatch(const GgufValue& v, const char* want) {
  if (v.type == VT::ARRAY)
    fail("GGUF value: expected ", want, ", got an ARRAY of ", gguf_type_name(v.array_type));
  fail("GGUF value: expected ", want, ", got ", gguf_type_name(v.type));
}

// ---- writing ------------------------------------------------------------------------------------

template <typename T>
void put(std::string& out, T v) {
  out.append(reinterpret_cast<const char*>(&v), sizeof(T));
}
void put_str(std::string& out, const std::string& s) {
  put<uint64_t>(out, s.size());
  out += s;
}

void put_value(std::string& out, const GgufValue& v, const std::string& key) {
  auto in_range = [&](int64_t lo, int64_t hi) {
    if (v.i < lo || v.i > hi)
      fail("save_gguf: key '", key, "': ", v.i, " does not fit in a ", gguf_type_name(v.type));
  };
  switch (v.type) {
    case VT::U8:
      in_range(0, UINT8_MAX);
      put<uint8_t>(out, v.i);
      break;
    case VT::I8:
      in_range(INT8_MIN, INT8_MAX);
      put<int8_t>(out, v.i);
      break;
    case VT::U16:
      in_range(0, UINT16_MAX);
      put<uint16_t>(out, v.i);
      break;
    case VT::I16:
      in_range(INT16_MIN, INT16_MAX);
      put<int16_t>(out, v.i);
      break;
    case VT::U32:
      in_range(0, UINT32_MAX);
      put<uint32_t>(out, v.i);
      break;
    case VT::I32:
      in_range(INT32_MIN, INT32_MAX);
      put<int32_t>(out, v.i);
      break;
    case VT::U64:
      put<uint64_t>(out, v.u);
      break;
    case VT::I64:
      put<int64_t>(out, v.i);
      break;
    case VT::F32:
      put<float>(out, static_cast<float>(v.f));
      break;
    case VT::F64:
      put<double>(out, v.f);
      break;
    case VT::BOOL:
      put<uint8_t>(out, v.b ? 1 : 0);
      break;
    case VT::STRING:
      put_str(out, v.s);
      break;
    case VT::ARRAY:
      if (!known_value_type(static_cast<uint32_t>(v.array_type)))
        fail("save_gguf: key '", key, "': unknown array element type");
      put<uint32_t>(out, static_cast<uint32_t>(v.array_type));
      put<uint64_t>(out, v.array.size());
      for (const GgufValue& e : v.array) {
        if (e.type != v.array_type)
          fail("save_gguf: key '", key, "': an array of ", gguf_type_name(v.array_type),
               " holds a ", gguf_type_name(e.type));
        put_value(out, e, key);
      }
      break;
    default:
      fail("save_gguf: key '", key, "': unknown value type ", static_cast<uint32_t>(v.type));
  }
}

// Writes n zero bytes in pieces (an alignment may be up to 2^31: never allocate that much).
void write_zeros(AtomicFile& f, uint64_t n) {
  static const char zeros[4096] = {};
  for (; n > 0; n -= std::min<uint64_t>(n, sizeof zeros))
    f.write(zeros, std::min<uint64_t>(n, sizeof zeros));
}

}  // namespace

// ---- GgufValue ----------------------------------------------------------------------------------

const char* gguf_type_name(GgufValue::Type t) {
  static const char* const names[] = {"U8",   "I8",     "U16",   "I16", "U32", "I32", "F32",
                                      "BOOL", "STRING", "ARRAY", "U64", "I64", "F64"};
  const auto k = static_cast<uint32_t>(t);
  return k < std::size(names) ? names[k] : "unknown";
}

int64_t GgufValue::as_int() const {
  if (!is_integer(type)) mismatch(*this, "an integer");
  if (type == VT::U64 && u > static_cast<uint64_t>(INT64_MAX))
    fail("GGUF value: the U64 ", u, " does not fit in an int64");
  return i;
}

double GgufValue::as_float() const {
  if (is_float(type)) return f;
  if (type == VT::U64) return static_cast<double>(u);
  if (is_integer(type)) return static_cast<double>(i);
  mismatch(*this, "a number");
}

bool GgufValue::as_bool() const {
  if (type != VT::BOOL) mismatch(*this, "a BOOL");
  return b;
}

const std::string& GgufValue::as_string() const {
  if (type != VT::STRING) mismatch(*this, "a STRING");
  return s;
}

std::vector<std::string> GgufValue::as_strings() const {
  if (type != VT::ARRAY || array_type != VT::STRING) mismatch(*this, "an ARRAY of STRING");
  std::vector<std::string> out;
  out.reserve(array.size());
  for (const GgufValue& e : array) out.push_back(e.s);
  return out;
}

std::vector<float> GgufValue::as_floats() const {
  if (type != VT::ARRAY || !(is_float(array_type) || is_integer(array_type)))
    mismatch(*this, "an ARRAY of numbers");
  std::vector<float> out;
  out.reserve(array.size());
  for (const GgufValue& e : array) out.push_back(static_cast<float>(e.as_float()));
  return out;
}

std::vector<int64_t> GgufValue::as_ints() const {
  if (type != VT::ARRAY || !is_integer(array_type)) mismatch(*this, "an ARRAY of integers");
  std::vector<int64_t> out;
  out.reserve(array.size());
  for (const GgufValue& e : array) out.push_back(e.as_int());
  return out;
}

GgufValue GgufValue::integer(Type t, int64_t v) {
  if (!is_integer(t)) fail("GgufValue::integer: ", gguf_type_name(t), " is not an integer type");
  GgufValue out;
  out.type = t;
  out.i = v;
  out.u = static_cast<uint64_t>(v);
  if (t == VT::U64 && v < 0) fail("GgufValue::integer: negative U64 ", v);
  std::string check;
  put_value(check, out, "GgufValue::integer");  // range check
  return out;
}

GgufValue GgufValue::u64(uint64_t v) {
  GgufValue out;
  out.type = VT::U64;
  out.u = v;
  out.i = v <= static_cast<uint64_t>(INT64_MAX) ? static_cast<int64_t>(v) : 0;
  return out;
}

GgufValue GgufValue::floating(Type t, double v) {
  if (!is_float(t)) fail("GgufValue::floating: ", gguf_type_name(t), " is not F32 or F64");
  GgufValue out;
  out.type = t;
  out.f = t == VT::F32 ? static_cast<double>(static_cast<float>(v)) : v;
  return out;
}

GgufValue GgufValue::boolean(bool v) {
  GgufValue out;
  out.type = VT::BOOL;
  out.b = v;
  return out;
}

GgufValue GgufValue::string(std::string v) {
  GgufValue out;
  out.type = VT::STRING;
  out.s = std::move(v);
  return out;
}

GgufValue GgufValue::array_of(Type element, std::vector<GgufValue> values) {
  for (const GgufValue& e : values)
    if (e.type != element)
      fail("GgufValue::array_of: an array of ", gguf_type_name(element), " given a ",
           gguf_type_name(e.type));
  GgufValue out;
  out.type = VT::ARRAY;
  out.array_type = element;
  out.array = std::move(values);
  return out;
}

GgufValue GgufValue::strings(const std::vector<std::string>& v) {
  std::vector<GgufValue> values;
  values.reserve(v.size());
  for (const std::string& s : v) values.push_back(string(s));
  return array_of(VT::STRING, std::move(values));
}

// ---- GgufTensor / GgufFile ----------------------------------------------------------------------

std::vector<int64_t> GgufTensor::shape() const {
  return {ne.rbegin(), ne.rend()};
}

int64_t GgufTensor::numel() const {
  int64_t n = 1;
  for (int64_t d : ne) n *= d;  // checked when the file was read
  return n;
}

const GgufValue* GgufFile::find(std::string_view key) const {
  for (const auto& [k, v] : metadata)
    if (k == key) return &v;
  return nullptr;
}

const GgufValue& GgufFile::get(std::string_view key) const {
  if (const GgufValue* v = find(key)) return *v;
  fail(path, ": no metadata key '", key, "'");
}

const GgufTensor* GgufFile::find_tensor(std::string_view name) const {
  for (const GgufTensor& t : tensors)
    if (t.name == name) return &t;
  return nullptr;
}

const GgufTensor& GgufFile::tensor(std::string_view name) const {
  if (const GgufTensor* t = find_tensor(name)) return *t;
  fail(path, ": no tensor '", name, "' (the file has ", tensors.size(), " tensors)");
}

Tensor GgufFile::to_f32(const GgufTensor& t) const {
  if (!kernels::ggml_can_dequantize(t.type))
    fail(path, ": tensor '", t.name, "' has type ", kernels::ggml_type_name(t.type),
         ", which llmkit cannot dequantise (F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, ",
         "Q5_K, Q6_K)");
  LLMKIT_CHECK(t.data != nullptr || t.nbytes == 0, path, ": tensor '", t.name, "' has no data");
  const Shape shape = t.shape();
  if (t.type == GgmlType::F32 && reinterpret_cast<uintptr_t>(t.data) % 4 == 0 && t.nbytes > 0) {
    // The Storage holds a reference to the mapping, so the view outlives this GgufFile.
    auto* keep = new std::shared_ptr<const void>(mapping);
    std::shared_ptr<Storage> storage;
    try {
      storage = std::make_shared<Storage>(
          const_cast<uint8_t*>(t.data), t.nbytes,
          [](void*, void* ctx) { delete static_cast<std::shared_ptr<const void>*>(ctx); }, keep);
    } catch (...) {
      delete keep;
      throw;
    }
    return Tensor::from_blob(storage, shape, DType::F32);
  }
  Tensor out = Tensor::empty(shape, DType::F32);
  const int64_t ne0 = t.ne.empty() ? 1 : t.ne[0];
  if (t.numel() == 0) return out;
  const int64_t rows = t.numel() / ne0;
  const size_t row_bytes = kernels::ggml_row_size(t.type, ne0);
  float* y = out.data<float>();
  const uint8_t* src = t.data;
  const GgmlType type = t.type;
  parallel_for(rows, std::max<int64_t>(1, (1 << 16) / ne0), [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r)
      kernels::dequantize_row(type, src + r * row_bytes, y + r * ne0, ne0);
  });
  return out;
}

GgufFile parse_gguf(std::string_view bytes, const std::string& name) {
  std::shared_ptr<uint8_t[]> copy(new uint8_t[std::max<size_t>(bytes.size(), 1)]);
  if (!bytes.empty()) std::memcpy(copy.get(), bytes.data(), bytes.size());
  GgufFile f = parse(std::string_view(reinterpret_cast<const char*>(copy.get()), bytes.size()),
                     name, copy.get());
  f.mapping = std::shared_ptr<const void>(copy, copy.get());
  return f;
}

GgufFile load_gguf(const std::string& path) {
  // Private, writable pages (mapped_file.h): an F32 view handed out by to_f32 may be written
  // (copy-on-write) without touching the file.
  const FileMapping fm = map_file(path);
  if (fm.size < 8) {
    unmap_file(fm);
    fail(path, ": not a GGUF file (", fm.size, " bytes, shorter than magic and version)");
  }
  std::shared_ptr<const void> mapping(fm.addr, [fm](const void*) { unmap_file(fm); });
  GgufFile f = parse(std::string_view(static_cast<const char*>(fm.addr), fm.size), path,
                     static_cast<const uint8_t*>(fm.addr));
  f.mapping = std::move(mapping);
  return f;
}

void save_gguf(const std::string& path,
               const std::vector<std::pair<std::string, GgufValue>>& metadata,
               const std::vector<GgufTensorData>& tensors, uint64_t alignment) {
  if (alignment == 0 || (alignment & (alignment - 1)) != 0)
    fail("save_gguf '", path, "': alignment ", alignment, " is not a power of two");
  std::vector<std::pair<std::string, GgufValue>> kv = metadata;
  bool has_alignment = false;
  std::unordered_set<std::string> keys;
  for (const auto& [k, v] : kv) {
    if (!keys.insert(k).second) fail("save_gguf '", path, "': key '", k, "' appears twice");
    if (k == "general.alignment") {
      if (v.type != VT::U32 || v.i < 0 || static_cast<uint64_t>(v.i) != alignment)
        fail("save_gguf '", path, "': general.alignment must be the U32 ", alignment);
      has_alignment = true;
    }
  }
  if (!has_alignment && alignment != 32) {
    if (alignment > UINT32_MAX) fail("save_gguf '", path, "': alignment ", alignment, " too big");
    kv.emplace_back("general.alignment",
                    GgufValue::integer(VT::U32, static_cast<int64_t>(alignment)));
  }
  std::string head;
  put<uint32_t>(head, kMagic);
  put<uint32_t>(head, 3);
  put<uint64_t>(head, tensors.size());
  put<uint64_t>(head, kv.size());
  for (const auto& [k, v] : kv) {
    put_str(head, k);
    put<uint32_t>(head, static_cast<uint32_t>(v.type));
    put_value(head, v, k);
  }
  std::unordered_set<std::string> names;
  uint64_t offset = 0;
  for (const GgufTensorData& t : tensors) {
    const std::string where = "save_gguf '" + path + "': tensor '" + t.name + "'";
    if (!names.insert(t.name).second) fail(where, ": the name appears twice");
    if (!kernels::ggml_type_known(static_cast<uint32_t>(t.type)))
      fail(where, ": unknown ggml type ", static_cast<uint32_t>(t.type));
    if (t.ne.size() > kMaxDims) fail(where, ": more than 4 dims");
    const int64_t numel = shape_numel(t.ne);  // checks overflow
    for (int64_t d : t.ne)
      if (d < 0) fail(where, ": negative dim");
    const int64_t ne0 = t.ne.empty() ? 1 : t.ne[0];
    const size_t need = ne0 == 0 ? 0 : kernels::ggml_row_size(t.type, ne0) * (numel / ne0);
    if (t.bytes.size() != need)
      fail(where, ": ", t.bytes.size(), " bytes given, ", kernels::ggml_type_name(t.type),
           " with ne ", shape_str(t.ne), " needs ", need);
    put_str(head, t.name);
    put<uint32_t>(head, static_cast<uint32_t>(t.ne.size()));
    for (int64_t d : t.ne) put<uint64_t>(head, static_cast<uint64_t>(d));
    put<uint32_t>(head, static_cast<uint32_t>(t.type));
    put<uint64_t>(head, offset);
    offset += (need + alignment - 1) / alignment * alignment;
  }
  AtomicFile f(path);
  f.write(head.data(), head.size());
  write_zeros(f, (alignment - head.size() % alignment) % alignment);
  for (const GgufTensorData& t : tensors) {
    f.write(t.bytes.data(), t.bytes.size());
    write_zeros(f, (alignment - t.bytes.size() % alignment) % alignment);
  }
  f.commit();
}

}  // namespace llmkit::io
