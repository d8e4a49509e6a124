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

// How much of an atomic write reaches the disk before it returns. Every level is atomic (a
// reader sees the old file or the new one); they differ in what survives a power loss.
enum class Durability {
  kFileAndDirectory,  // fsync the data, rename, fsync the directory: the default
  kFile,              // fsync the data, rename; the caller fsyncs the directory once for many
                      // files (a checkpoint: each fsync costs ~10 ms on disk)
  kNone,              // rename only: logs derived from data that is durable elsewhere
};

// Writes `bytes` to `path` atomically. Errors name the path and the system's reason.
void write_file_atomic(const std::string& path, std::string_view bytes,
                       Durability durability = Durability::kFileAndDirectory);

// fsync of a directory, which makes the renames into it durable. Some file systems cannot fsync
// a directory; the data are safe there already, so that is not an error.
void fsync_directory(const std::string& dir);

// Streaming form: write() pieces, then commit() (by default fsync the file, rename it over
// `path`, fsync the directory). Destroying an uncommitted AtomicFile (an exception while writing,
// say) removes the temporary file and leaves `path` untouched. Not thread-safe.
class AtomicFile {
 public:
  explicit AtomicFile(const std::string& path);  // creates the temporary file
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void write(const void* data, size_t n);
  void commit(Durability durability = Durability::kFileAndDirectory);
  const std::string& temp_path() const { return tmp_; }

 private:
  std::string path_, tmp_;
  std::FILE* f_ = nullptr;
};

}  // namespace llmkit::io
