#include "llmkit/io/safetensors.h"

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>
#include <optional>

#include "llmkit/io/atomic_file.h"
#include "llmkit/io/mapped_file.h"

namespace llmkit::io {

using nlohmann::json;

// The format is little-endian and tensors are viewed in place.
static_assert(std::endian::native == std::endian::little, "safetensors I/O assumes little-endian");

namespace {

constexpr uint64_t kMaxHeader = 100u << 20;  // the Rust reference's limit

constexpr std::pair<const char*, DType> kDTypes[] = {{"F64", DType::F64}, {"F32", DType::F32},
                                                     {"I32", DType::I32}, {"BF16", DType::BF16},
                                                     {"F16", DType::F16}, {"U8", DType::U8}};
// Valid in the format, but llmkit has no element type for them.
constexpr const char* kOtherDTypes[] = {"BOOL",    "I8",      "I16",     "I64",     "U16",
                                        "U32",     "U64",     "F8_E4M3", "F8_E5M2", "F8_E8M0",
                                        "F6_E2M3", "F6_E3M2", "F4",      "C64"};

const char* st_dtype(DType t) {
  for (const auto& [n, d] : kDTypes)
    if (d == t) return n;
  fail("safetensors: no dtype name for ", dtype_name(t));
}

struct Entry {
  std::string name;
  DType dtype;
  Shape shape;
  uint64_t begin, end;
  bool skipped = false;  // a dtype llmkit has no type for, skipped on request
};

[[noreturn]] void too_short(const std::string& file, size_t size) {
  fail(file, ": not a safetensors file (", size, " bytes, shorter than the 8-byte header length)");
}

// nullopt: a valid safetensors dtype llmkit has no type for, when `skip_unsupported`.
std::optional<DType> read_dtype(const json& e, const std::string& file, const std::string& where,
                                bool skip_unsupported) {
  const auto it = e.find("dtype");
  if (it == e.end()) fail(file, ": ", where, " has no dtype");
  if (!it->is_string()) fail(file, ": ", where, " has a dtype that is not a string: ", it->dump());
  const std::string s = it->get<std::string>();
  for (const auto& [n, d] : kDTypes)
    if (s == n) return d;
  for (const char* n : kOtherDTypes)
    if (s == n && skip_unsupported) return std::nullopt;
  for (const char* n : kOtherDTypes)
    if (s == n)
      fail(file, ": ", where, " has dtype '", s,
           "', which llmkit does not support (F64, F32, I32, BF16, F16, U8)");
  fail(file, ": ", where, " has unknown dtype '", s, "'");
}

// The shape and its byte size (numel * element size), rejecting overflow.
std::pair<Shape, uint64_t> read_shape(const json& e, DType dtype, const std::string& file,
                                      const std::string& where) {
  const auto it = e.find("shape");
  if (it == e.end()) fail(file, ": ", where, " has no shape");
  if (!it->is_array()) fail(file, ": ", where, " has a shape that is not an array: ", it->dump());
  Shape shape;
  uint64_t nbytes = dtype_size(dtype);
  for (const auto& d : *it) {
    if (d.is_number_integer() && !d.is_number_unsigned())
      fail(file, ": ", where, " has a negative dimension in shape ", it->dump());
    if (!d.is_number_unsigned())
      fail(file, ": ", where, " has a shape that is not a list of integers: ", it->dump());
    const uint64_t n = d.get<uint64_t>();
    if (n > static_cast<uint64_t>(INT64_MAX) || __builtin_mul_overflow(nbytes, n, &nbytes))
      fail(file, ": ", where, " has an impossibly large shape ", it->dump());
    shape.push_back(static_cast<int64_t>(n));
  }
  return {std::move(shape), nbytes};
}

Entry read_entry(const std::string& name, const json& e, uint64_t data_size,
                 const std::string& file, bool skip_unsupported) {
  const std::string where = "tensor '" + name + "'";
  if (!e.is_object()) fail(file, ": ", where, " is not a JSON object: ", e.dump());
  const std::optional<DType> dtype = read_dtype(e, file, where, skip_unsupported);
  Entry en{name, dtype.value_or(DType::U8), {}, 0, 0, !dtype.has_value()};
  uint64_t need = 0;
  // A skipped tensor's byte size is not checked (its element size may be under a byte); its
  // offsets still must lie in the data section and cover it with the others.
  if (!en.skipped) std::tie(en.shape, need) = read_shape(e, en.dtype, file, where);
  const auto it = e.find("data_offsets");
  if (it == e.end()) fail(file, ": ", where, " has no data_offsets");
  if (!it->is_array() || it->size() != 2 || !(*it)[0].is_number_unsigned() ||
      !(*it)[1].is_number_unsigned())
    fail(file, ": ", where, " has data_offsets ", it->dump(),
         ", not [begin, end] with non-negative integers");
  en.begin = (*it)[0].get<uint64_t>();
  en.end = (*it)[1].get<uint64_t>();
  if (en.begin > en.end)
    fail(file, ": ", where, " has data_offsets ", it->dump(), " with begin > end");
  if (en.end > data_size)
    fail(file, ": truncated: ", where, " needs bytes up to ", en.end, " but the data section has ",
         data_size);
  if (!en.skipped && en.end - en.begin != need)
    fail(file, ": ", where, ": shape ", shape_str(en.shape), " of ", st_dtype(en.dtype), " needs ",
         need, " bytes but data_offsets span ", en.end - en.begin);
  return en;
}

// Validates the header against a data section of `data_size` bytes; the entries come back in
// data order.
std::vector<Entry> read_header(const json& h, uint64_t data_size, const std::string& file,
                               std::map<std::string, std::string>* metadata,
                               bool skip_unsupported) {
  if (!h.is_object()) fail(file, ": header is not a JSON object but ", h.type_name());
  std::vector<Entry> entries;
  for (const auto& [name, e] : h.items()) {
    if (name != "__metadata__") {
      entries.push_back(read_entry(name, e, data_size, file, skip_unsupported));
      continue;
    }
    if (!e.is_object()) fail(file, ": __metadata__ is not a JSON object");
    for (const auto& [k, v] : e.items()) {
      if (!v.is_string()) fail(file, ": __metadata__ value of '", k, "' is not a string");
      (*metadata)[k] = v.get<std::string>();
    }
  }
  // The data section must be covered exactly, without overlaps or holes ("the data buffer must
  // be fully indexed", as the Rust reference says). Empty tensors may share an offset.
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return std::tie(a.begin, a.end, a.name) < std::tie(b.begin, b.end, b.name);
  });
  uint64_t at = 0;
  const Entry* prev = nullptr;
  for (const Entry& e : entries) {
    if (e.begin < at)
      fail(file, ": tensor '", e.name, "' (bytes ", e.begin, "..", e.end, ") overlaps tensor '",
           prev->name, "' (bytes ", prev->begin, "..", prev->end, ")");
    if (e.begin > at)
      fail(file, ": bytes ", at, "..", e.begin,
           " of the data section belong to no tensor (the data buffer must be fully indexed)");
    at = e.end;
    prev = &e;
  }
  if (at != data_size)
    fail(file, ": bytes ", at, "..", data_size,
         " of the data section belong to no tensor (the data buffer must be fully indexed)");
  return entries;
}

// Splits a whole file into (header JSON, data offset), validating the length prefix and
// rejecting repeated top-level names (the JSON parser alone would keep the last).
std::pair<json, uint64_t> split_file(std::string_view bytes, const std::string& file) {
  if (bytes.size() < 8) too_short(file, bytes.size());
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  if (n > kMaxHeader)
    fail(file, ": header length ", n, " is absurd (over 100 MB; not a safetensors file?)");
  if (n > bytes.size() - 8)
    fail(file, ": truncated: header length is ", n, " bytes but the file has only ",
         bytes.size() - 8, " after the length");
  std::vector<std::string> keys;
  auto cb = [&](int depth, json::parse_event_t ev, json& parsed) {
    if (ev == json::parse_event_t::key && depth == 1) keys.push_back(parsed.get<std::string>());
    return true;
  };
  json h;
  try {
    h = json::parse(bytes.substr(8, n), cb);
  } catch (const json::exception& e) {
    fail(file, ": header is not valid JSON (", e.what(), ")");
  }
  std::sort(keys.begin(), keys.end());
  const auto dup = std::adjacent_find(keys.begin(), keys.end());
  if (dup != keys.end()) fail(file, ": name '", *dup, "' appears twice in the header");
  return {std::move(h), 8 + n};
}

void unmap(void*, void* ctx) {
  auto* m = static_cast<FileMapping*>(ctx);
  unmap_file(*m);
  delete m;
}

}  // namespace

Tensor SafetensorsFile::get(const std::string& name) const {
  for (const auto& [n, t] : tensors)
    if (n == name) return t;
  fail(path, ": no tensor '", name, "' (the file has ", tensors.size(), " tensors)");
}

void save_safetensors(const std::string& path, const NamedTensors& tensors,
                      const std::map<std::string, std::string>& metadata) {
  std::vector<std::pair<std::string, Tensor>> order(tensors.begin(), tensors.end());
  for (const auto& [name, t] : order)
    LLMKIT_CHECK(t.defined(), "save_safetensors '", path, "': tensor '", name, "' is undefined");
  std::sort(order.begin(), order.end(), [](const auto& a, const auto& b) {
    const size_t sa = dtype_size(a.second.dtype()), sb = dtype_size(b.second.dtype());
    return sa != sb ? sa > sb : a.first < b.first;
  });
  json h = json::object();
  if (!metadata.empty()) h["__metadata__"] = metadata;
  uint64_t offset = 0;
  for (const auto& [name, t] : order) {
    LLMKIT_CHECK(name != "__metadata__" && !h.contains(name), "save_safetensors '", path,
                 "': bad or repeated tensor name '", name, "'");
    const uint64_t n = static_cast<uint64_t>(t.numel()) * dtype_size(t.dtype());
    h[name] = {{"dtype", st_dtype(t.dtype())},
               {"shape", t.shape()},
               {"data_offsets", {offset, offset + n}}};
    offset += n;
  }
  std::string header;
  try {
    header = h.dump();
  } catch (const json::exception& e) {  // a name or metadata string that is not UTF-8
    fail("save_safetensors '", path, "': ", e.what());
  }
  header.append((8 - header.size() % 8) % 8, ' ');
  const uint64_t len = header.size();
  AtomicFile f(path);
  f.write(&len, 8);
  f.write(header.data(), header.size());
  for (const auto& [name, t] : order) {
    const Tensor c = t.contiguous();
    f.write(c.raw_data(), c.numel() * dtype_size(c.dtype()));
  }
  f.commit();
}

SafetensorsFile parse_safetensors(std::string_view bytes, const std::string& name,
                                  bool skip_unsupported) {
  auto [h, data_start] = split_file(bytes, name);
  SafetensorsFile out;
  out.path = name;
  for (const auto& e :
       read_header(h, bytes.size() - data_start, name, &out.metadata, skip_unsupported)) {
    if (e.skipped) {
      out.skipped.push_back(e.name);
      continue;
    }
    Tensor t = Tensor::empty(e.shape, e.dtype);
    if (e.end > e.begin)
      std::memcpy(t.raw_data(), bytes.data() + data_start + e.begin, e.end - e.begin);
    out.tensors.emplace_back(e.name, t);
  }
  return out;
}

SafetensorsFile load_safetensors(const std::string& path, bool skip_unsupported) {
  // Copy-on-write pages (mapped_file.h): callers may update loaded tensors in place (optimizer
  // moments) without touching the file.
  const FileMapping fm = map_file(path);
  const size_t size = fm.size;
  void* addr = fm.addr;
  if (size < 8) {
    unmap_file(fm);
    too_short(path, size);
  }
  // One Storage owns the mapping; every tensor is a view into it, so the last one unmaps it.
  auto* m = new FileMapping(fm);
  std::shared_ptr<Storage> storage;
  try {
    storage = std::make_shared<Storage>(addr, size, &unmap, m);
  } catch (...) {
    unmap(nullptr, m);
    throw;
  }
  const std::string_view bytes(static_cast<const char*>(addr), size);
  auto [h, data_start] = split_file(bytes, path);
  SafetensorsFile out;
  out.path = path;
  for (const auto& e : read_header(h, size - data_start, path, &out.metadata, skip_unsupported)) {
    if (e.skipped) {
      out.skipped.push_back(e.name);
      continue;
    }
    const uint64_t at = data_start + e.begin;
    const size_t esize = dtype_size(e.dtype);
    if (at % esize != 0) {  // unaligned (a writer that does not pad): copy instead of viewing
      Tensor t = Tensor::empty(e.shape, e.dtype);
      if (e.end > e.begin) std::memcpy(t.raw_data(), bytes.data() + at, e.end - e.begin);
      out.tensors.emplace_back(e.name, t);
    } else {
      out.tensors.emplace_back(
          e.name, Tensor::from_blob(storage, e.shape, e.dtype, static_cast<int64_t>(at / esize)));
    }
  }
  return out;
}

}  // namespace llmkit::io
