#include "llmkit/io/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>

#include "llmkit/io/atomic_file.h"

namespace llmkit::io {

using nlohmann::json;

namespace {

constexpr uint64_t kMaxHeader = 100u << 20;  // as the reference implementation

const char* st_dtype(DType t) {
  switch (t) {
    case DType::F32: return "F32";
    case DType::F64: return "F64";
    case DType::I32: return "I32";
    case DType::U8: return "U8";
    case DType::BF16: return "BF16";
    case DType::F16: return "F16";
  }
  return "?";
}

bool parse_dtype(const std::string& s, DType* t) {
  static const std::pair<const char*, DType> kNames[] = {
      {"F32", DType::F32}, {"F64", DType::F64}, {"I32", DType::I32},
      {"U8", DType::U8},   {"BF16", DType::BF16}, {"F16", DType::F16}};
  for (auto& [n, d] : kNames)
    if (s == n) {
      *t = d;
      return true;
    }
  return false;
}

struct Entry {
  std::string name;
  DType dtype;
  Shape shape;
  uint64_t begin, end;
};

// Validates the header against a data section of `data_size` bytes.
std::vector<Entry> read_header(const json& h, uint64_t data_size, const std::string& file,
                               std::map<std::string, std::string>* metadata) {
  auto bad = [&](const std::string& what) { fail(file, ": ", what); };
  if (!h.is_object()) bad("header is not a JSON object");
  std::vector<Entry> entries;
  for (auto& [name, e] : h.items()) {
    if (name == "__metadata__") {
      if (!e.is_object()) bad("__metadata__ is not an object");
      for (auto& [k, v] : e.items()) {
        if (!v.is_string()) bad("__metadata__ value of '" + k + "' is not a string");
        (*metadata)[k] = v.get<std::string>();
      }
      continue;
    }
    const std::string where = "tensor '" + name + "'";
    if (!e.is_object()) bad(where + " is not an object");
    if (!e.contains("dtype") || !e["dtype"].is_string()) bad(where + " has no dtype string");
    if (!e.contains("shape") || !e["shape"].is_array()) bad(where + " has no shape array");
    if (!e.contains("data_offsets") || !e["data_offsets"].is_array() ||
        e["data_offsets"].size() != 2)
      bad(where + " has no data_offsets [begin, end]");
    Entry en{name, DType::F32, {}, 0, 0};
    const std::string dt = e["dtype"].get<std::string>();
    if (!parse_dtype(dt, &en.dtype)) bad(where + " has unsupported dtype '" + dt + "'");
    for (const auto& d : e["shape"]) {
      if (!d.is_number_integer() || d.get<int64_t>() < 0)
        bad(where + " has a bad shape " + e["shape"].dump());
      en.shape.push_back(d.get<int64_t>());
    }
    for (const auto& o : e["data_offsets"])
      if (!o.is_number_unsigned()) bad(where + " has bad data_offsets " + e["data_offsets"].dump());
    en.begin = e["data_offsets"][0].get<uint64_t>();
    en.end = e["data_offsets"][1].get<uint64_t>();
    if (en.begin > en.end) bad(where + " has data_offsets with begin > end");
    if (en.end > data_size)
      bad("truncated: " + where + " needs bytes up to " + std::to_string(en.end) +
          " but the data section has " + std::to_string(data_size));
    const uint64_t need = static_cast<uint64_t>(shape_numel(en.shape)) * dtype_size(en.dtype);
    if (en.end - en.begin != need)
      bad(where + ": shape " + shape_str(en.shape) + " of " + dt + " needs " +
          std::to_string(need) + " bytes but data_offsets span " + std::to_string(en.end - en.begin));
    entries.push_back(std::move(en));
  }
  // The data section must be covered exactly, without overlaps or holes (as the reference).
  std::vector<const Entry*> order;
  for (const auto& e : entries) order.push_back(&e);
  std::sort(order.begin(), order.end(),
            [](const Entry* a, const Entry* b) { return a->begin < b->begin || (a->begin == b->begin && a->end < b->end); });
  uint64_t at = 0;
  for (const Entry* e : order) {
    if (e->begin < at) bad("tensor '" + e->name + "' overlaps another tensor");
    if (e->begin > at) bad("data section has unused bytes before tensor '" + e->name + "'");
    at = e->end;
  }
  if (at != data_size)
    bad("data section has " + std::to_string(data_size - at) + " bytes after the last tensor");
  return entries;
}

// Splits a whole file into (header JSON, data offset), validating the length prefix.
std::pair<json, uint64_t> split_file(std::string_view bytes, const std::string& file) {
  LLMKIT_CHECK(bytes.size() >= 8, file, ": not a safetensors file (", bytes.size(),
               " bytes, shorter than the 8-byte header length)");
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(bytes[i]);
  LLMKIT_CHECK(n <= kMaxHeader, file, ": header length ", n, " is absurd (not a safetensors file?)");
  LLMKIT_CHECK(8 + n <= bytes.size(), file, ": truncated: header of ", n, " bytes but the file has ",
               bytes.size() - 8, " after the length");
  json h;
  // Duplicate names are rejected: the parser callback sees every key of the top object.
  std::vector<std::string> keys;
  int depth = 0;
  auto cb = [&](int d, json::parse_event_t ev, json& parsed) {
    depth = d;
    if (ev == json::parse_event_t::key && d == 1) keys.push_back(parsed.get<std::string>());
    return true;
  };
  try {
    h = json::parse(bytes.substr(8, n), cb);
  } catch (const json::exception& e) {
    fail(file, ": header is not valid JSON (", e.what(), ")");
  }
  (void)depth;
  std::sort(keys.begin(), keys.end());
  const auto dup = std::adjacent_find(keys.begin(), keys.end());
  LLMKIT_CHECK(dup == keys.end(), file, ": tensor '", dup == keys.end() ? "" : *dup,
               "' appears twice in the header");
  return {std::move(h), 8 + n};
}

struct Mapping {
  void* addr;
  size_t size;
};

void unmap(void*, void* ctx) {
  auto* m = static_cast<Mapping*>(ctx);
  munmap(m->addr, m->size);
  delete m;
}

}  // namespace

Tensor SafetensorsFile::get(const std::string& name) const {
  for (const auto& [n, t] : tensors)
    if (n == name) return t;
  fail(path, ": no tensor '", name, "'");
}

void save_safetensors(const std::string& path, const NamedTensors& tensors,
                      const std::map<std::string, std::string>& metadata) {
  std::vector<std::pair<std::string, Tensor>> sorted(tensors.begin(), tensors.end());
  std::sort(sorted.begin(), sorted.end(), [](auto& a, auto& b) { return a.first < b.first; });
  json h = json::object();
  if (!metadata.empty()) h["__metadata__"] = metadata;
  uint64_t offset = 0;
  for (size_t i = 0; i < sorted.size(); ++i) {
    const auto& [name, t] = sorted[i];
    LLMKIT_CHECK(name != "__metadata__" && !h.contains(name), "save_safetensors: bad or repeated tensor name '", name, "'");
    const uint64_t n = static_cast<uint64_t>(t.numel()) * dtype_size(t.dtype());
    h[name] = {{"dtype", st_dtype(t.dtype())}, {"shape", t.shape()}, {"data_offsets", {offset, offset + n}}};
    offset += n;
  }
  std::string header = h.dump();
  header.append((8 - header.size() % 8) % 8, ' ');
  AtomicFile f(path);
  unsigned char len[8];
  for (int i = 0; i < 8; ++i) len[i] = static_cast<unsigned char>(static_cast<uint64_t>(header.size()) >> (8 * i));
  f.write(len, 8);
  f.write(header.data(), header.size());
  for (const auto& [name, t] : sorted) {
    const Tensor c = t.contiguous();
    f.write(c.raw_data(), c.numel() * dtype_size(c.dtype()));
  }
  f.commit();
}

SafetensorsFile parse_safetensors(std::string_view bytes, const std::string& name) {
  auto [h, data_start] = split_file(bytes, name);
  SafetensorsFile out;
  out.path = name;
  const auto entries = read_header(h, bytes.size() - data_start, name, &out.metadata);
  for (const auto& e : entries) {
    Tensor t = Tensor::empty(e.shape, e.dtype);
    if (e.end > e.begin) std::memcpy(t.raw_data(), bytes.data() + data_start + e.begin, e.end - e.begin);
    out.tensors.emplace_back(e.name, t);
  }
  return out;
}

SafetensorsFile load_safetensors(const std::string& path) {
  const int fd = open(path.c_str(), O_RDONLY);
  LLMKIT_CHECK(fd >= 0, "cannot open '", path, "': ", std::strerror(errno));
  struct stat st = {};
  fstat(fd, &st);
  const size_t size = static_cast<size_t>(st.st_size);
  void* addr = size > 0 ? mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0) : nullptr;
  close(fd);
  LLMKIT_CHECK(size == 0 || addr != MAP_FAILED, "cannot map '", path, "': ", std::strerror(errno));
  auto* m = new Mapping{addr, size};
  // One Storage owns the mapping; every tensor is a view into it.
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
  const auto entries = read_header(h, size - data_start, path, &out.metadata);
  for (const auto& e : entries) {
    const uint64_t byte_off = data_start + e.begin;
    if (byte_off % dtype_size(e.dtype) != 0) {  // unaligned: copy instead of viewing
      Tensor t = Tensor::empty(e.shape, e.dtype);
      std::memcpy(t.raw_data(), bytes.data() + byte_off, e.end - e.begin);
      out.tensors.emplace_back(e.name, t);
    } else {
      out.tensors.emplace_back(e.name, Tensor::from_blob(storage, e.shape, e.dtype,
                                                         static_cast<int64_t>(byte_off / dtype_size(e.dtype))));
    }
  }
  return out;
}

}  // namespace llmkit::io
