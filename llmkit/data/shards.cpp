#include "llmkit/data/shards.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>

#include "llmkit/core/error.h"
#include "llmkit/io/atomic_file.h"

namespace llmkit::data {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr char kMagic[8] = {'L', 'L', 'M', 'K', 'T', 'O', 'K', 'S'};
constexpr uint32_t kVersion = 1;
constexpr size_t kHeader = 64;

template <typename T>
void put(unsigned char* p, T v) {
  for (size_t i = 0; i < sizeof(T); ++i)
    p[i] = static_cast<unsigned char>(static_cast<uint64_t>(v) >> (8 * i));
}
template <typename T>
T get(const unsigned char* p) {
  uint64_t v = 0;
  for (size_t i = sizeof(T); i-- > 0;) v = (v << 8) | p[i];
  return static_cast<T>(v);
}

std::string fingerprint(const tokenizer::Tokenizer& tok) {
  return std::to_string(std::hash<std::string>{}(tok.to_json())) + ":" +
         std::to_string(tok.vocab_size());
}

json describe_inputs(std::span<const std::string> files, const tokenizer::Tokenizer& tok,
                     double val_fraction) {
  json j = {
      {"tokenizer", fingerprint(tok)}, {"val_fraction", val_fraction}, {"files", json::array()}};
  for (const auto& f : files) {
    LLMKIT_CHECK(fs::exists(f), "data file '", f, "' not found");
    j["files"].push_back({{"path", fs::absolute(f).string()},
                          {"size", fs::file_size(f)},
                          {"mtime", fs::last_write_time(f).time_since_epoch().count()}});
  }
  return j;
}

// Appends the ids of one file to `out`, reading it in chunks that end at a newline.
void tokenize_file(const std::string& path, const tokenizer::Tokenizer& tok,
                   std::vector<int32_t>& out) {
  std::ifstream in(path, std::ios::binary);
  LLMKIT_CHECK(in.good(), "cannot open data file '", path, "'");
  constexpr size_t kChunk = 1 << 20;
  std::vector<std::string> pieces;
  std::string carry, buf(kChunk, '\0');
  while (in) {
    in.read(buf.data(), kChunk);
    const size_t got = static_cast<size_t>(in.gcount());
    if (got == 0) break;
    carry.append(buf.data(), got);
    const size_t cut = carry.rfind('\n');
    if (cut != std::string::npos && in) {
      pieces.push_back(carry.substr(0, cut + 1));
      carry.erase(0, cut + 1);
    }
    if (pieces.size() >= 16) {
      for (const auto& ids : tok.encode_batch(pieces))
        out.insert(out.end(), ids.begin(), ids.end());
      pieces.clear();
    }
  }
  if (!carry.empty()) pieces.push_back(std::move(carry));
  for (const auto& ids : tok.encode_batch(pieces)) out.insert(out.end(), ids.begin(), ids.end());
}

}  // namespace

void write_shard(const std::string& path, std::span<const int32_t> tokens, int32_t vocab_size) {
  LLMKIT_CHECK(vocab_size > 0, "write_shard: vocab_size must be positive");
  const uint32_t width = vocab_size <= 65536 ? 2 : 4;
  unsigned char header[kHeader] = {};
  std::memcpy(header, kMagic, 8);
  put<uint32_t>(header + 8, kVersion);
  put<uint32_t>(header + 12, width);
  put<uint64_t>(header + 16, tokens.size());
  put<uint32_t>(header + 24, static_cast<uint32_t>(vocab_size));
  std::vector<unsigned char> body(tokens.size() * width);
  for (size_t i = 0; i < tokens.size(); ++i) {
    LLMKIT_CHECK(tokens[i] >= 0 && tokens[i] < vocab_size, "write_shard: token ", tokens[i], " at ",
                 i, " outside the vocabulary of ", vocab_size);
    if (width == 2)
      put<uint16_t>(&body[i * 2], static_cast<uint16_t>(tokens[i]));
    else
      put<uint32_t>(&body[i * 4], static_cast<uint32_t>(tokens[i]));
  }
  io::AtomicFile f(path);
  f.write(header, kHeader);
  f.write(body.data(), body.size());
  f.commit();
}

TokenShard TokenShard::open(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY);
  LLMKIT_CHECK(fd >= 0, "cannot open token shard '", path, "': ", std::strerror(errno));
  struct stat st = {};
  fstat(fd, &st);
  const size_t size = static_cast<size_t>(st.st_size);
  if (size < kHeader) {
    close(fd);
    fail(path, ": not an llmkit token shard (", size, " bytes, shorter than the header)");
  }
  void* addr = mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  close(fd);
  LLMKIT_CHECK(addr != MAP_FAILED, "cannot map '", path, "': ", std::strerror(errno));
  TokenShard s;
  s.map_ = std::shared_ptr<const void>(
      addr, [size](const void* p) { munmap(const_cast<void*>(p), size); });
  const auto* h = static_cast<const unsigned char*>(addr);
  s.path_ = path;
  LLMKIT_CHECK(std::memcmp(h, kMagic, 8) == 0, path, ": not an llmkit token shard (bad magic)");
  LLMKIT_CHECK(get<uint32_t>(h + 8) == kVersion, path, ": shard version ", get<uint32_t>(h + 8),
               " is not supported (want ", kVersion, ")");
  s.width_ = static_cast<int32_t>(get<uint32_t>(h + 12));
  LLMKIT_CHECK(s.width_ == 2 || s.width_ == 4, path, ": bad token width ", s.width_);
  s.count_ = static_cast<int64_t>(get<uint64_t>(h + 16));
  const uint32_t vocab = get<uint32_t>(h + 24);
  LLMKIT_CHECK(vocab > 0 && vocab <= static_cast<uint32_t>(INT32_MAX), path, ": bad vocab_size ",
               vocab);
  s.vocab_ = static_cast<int32_t>(vocab);
  const uint64_t held = (size - kHeader) / s.width_;
  LLMKIT_CHECK(static_cast<uint64_t>(s.count_) == held && (size - kHeader) % s.width_ == 0, path,
               ": truncated: header says ", s.count_, " tokens but the file holds ", held);
  s.data_ = h + kHeader;
  // at() of a 4-byte id >= 2^31 is negative: check both ends (the fuzzer found such ids passing).
  for (int64_t i = 0; i < s.count_; ++i)
    LLMKIT_CHECK(s.at(i) >= 0 && s.at(i) < s.vocab_, path, ": token ", s.at(i), " at position ", i,
                 " is outside the vocabulary of ", s.vocab_);
  return s;
}

int32_t TokenShard::at(int64_t i) const {
  return width_ == 2 ? static_cast<int32_t>(get<uint16_t>(data_ + 2 * i))
                     : static_cast<int32_t>(get<uint32_t>(data_ + 4 * i));
}

void TokenShard::read(int64_t start, int64_t n, int32_t* out) const {
  LLMKIT_CHECK(start >= 0 && n >= 0 && start + n <= count_, path_, ": read of [", start, ", ",
               start + n, ") beyond ", count_, " tokens");
  for (int64_t i = 0; i < n; ++i) out[i] = at(start + i);
}

ShardSet prepare_shards(std::span<const std::string> files, const tokenizer::Tokenizer& tok,
                        const std::string& out_dir, double val_fraction) {
  LLMKIT_CHECK(!files.empty(), "no data files given");
  LLMKIT_CHECK(val_fraction > 0 && val_fraction < 1, "val_fraction ", val_fraction,
               " outside (0, 1)");
  fs::create_directories(out_dir);
  ShardSet set;
  set.train = (fs::path(out_dir) / "train.bin").string();
  set.val = (fs::path(out_dir) / "val.bin").string();
  const std::string meta_path = (fs::path(out_dir) / "shards.json").string();
  const json want = describe_inputs(files, tok, val_fraction);
  if (fs::exists(meta_path) && fs::exists(set.train) && fs::exists(set.val)) {
    std::ifstream in(meta_path);
    json have = json::parse(in, nullptr, false);
    if (!have.is_discarded() && have.value("inputs", json()) == want) {
      set.train_tokens = TokenShard::open(set.train).size();
      set.val_tokens = TokenShard::open(set.val).size();
      set.reused = true;
      return set;
    }
  }
  // The old record goes first: a process killed between writing train.bin and val.bin must not
  // leave a shards.json that vouches for a mix of old and new shards.
  fs::remove(meta_path);
  std::vector<int32_t> ids;
  const auto eot = tok.find_token("<|endoftext|>");
  for (const auto& f : files) {
    const size_t before = ids.size();
    tokenize_file(f, tok, ids);
    LLMKIT_CHECK(ids.size() > before, "no text in data file '", f, "'");
    if (eot) ids.push_back(*eot);
  }
  const int64_t n = static_cast<int64_t>(ids.size());
  const int64_t n_val = std::max<int64_t>(1, static_cast<int64_t>(n * val_fraction));
  LLMKIT_CHECK(n - n_val > 1, "data: only ", n, " tokens; too little text to train on");
  write_shard(set.train, std::span(ids).first(n - n_val), tok.vocab_size());
  write_shard(set.val, std::span(ids).subspan(n - n_val), tok.vocab_size());
  set.train_tokens = n - n_val;
  set.val_tokens = n_val;
  io::write_file_atomic(
      meta_path,
      json{{"inputs", want}, {"train_tokens", set.train_tokens}, {"val_tokens", set.val_tokens}}
          .dump(2));
  return set;
}

}  // namespace llmkit::data
