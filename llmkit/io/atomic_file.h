// Atomic file writes: the bytes go to a temporary file in the same directory, which is flushed
// to disk and renamed over the target, so readers see the old file or the new one, never a
// partial one, and a crash loses nothing already saved. Used for checkpoints, tokenizers,
// configs, shards and logs.
#pragma once

#include <cstdio>
#include <string>
#include <string_view>

namespace llmkit::io {

// Writes `bytes` to `path` atomically. Errors name the path and the system's reason.
void write_file_atomic(const std::string& path, std::string_view bytes);

// Streaming form: write() pieces, then commit(). Destroying an uncommitted AtomicFile removes
// the temporary file and leaves `path` untouched.
class AtomicFile {
 public:
  explicit AtomicFile(const std::string& path);
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void write(const void* data, size_t n);
  void commit();

 private:
  std::string path_, tmp_;
  std::FILE* f_ = nullptr;
};

}  // namespace llmkit::io
