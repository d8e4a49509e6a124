// Atomic file writes: the bytes go to a temporary file in the same directory, which is flushed
// to disk and renamed over the target, so readers see the old file or the new one, never a
// partial one, and a crash loses nothing already saved. Used for checkpoints, tokenizers,
// configs, shards and logs.
// The temporary file is `path + ".tmp.<pid>"`: one writer per target path per process at a time.
// The new file gets default permissions (0666 less the umask), not the old file's.
#pragma once

#include <cstdio>
#include <string>
#include <string_view>

namespace llmkit::io {

// Writes `bytes` to `path` atomically. Errors name the path and the system's reason.
void write_file_atomic(const std::string& path, std::string_view bytes);

// Streaming form: write() pieces, then commit() (fsync the file, rename it over `path`, fsync
// the directory). Destroying an uncommitted AtomicFile (an exception while writing, say) removes
// the temporary file and leaves `path` untouched. Not thread-safe.
class AtomicFile {
 public:
  explicit AtomicFile(const std::string& path);  // creates the temporary file
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void write(const void* data, size_t n);
  void commit();
  const std::string& temp_path() const { return tmp_; }

 private:
  std::string path_, tmp_;
  std::FILE* f_ = nullptr;
};

}  // namespace llmkit::io
