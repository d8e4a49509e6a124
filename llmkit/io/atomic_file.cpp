#include "llmkit/io/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "llmkit/core/error.h"

namespace llmkit::io {

AtomicFile::AtomicFile(const std::string& path) : path_(path) {
  tmp_ = path + ".tmp." + std::to_string(getpid());
  f_ = std::fopen(tmp_.c_str(), "wb");
  LLMKIT_CHECK(f_ != nullptr, "cannot write '", path, "': ", std::strerror(errno));
}

AtomicFile::~AtomicFile() {
  if (f_ != nullptr) {
    std::fclose(f_);
    std::remove(tmp_.c_str());
  }
}

void AtomicFile::write(const void* data, size_t n) {
  LLMKIT_CHECK(f_ != nullptr, "write to '", path_, "' after commit");
  if (n > 0 && std::fwrite(data, 1, n, f_) != n)
    fail("cannot write '", path_, "': ", std::strerror(errno));
}

void AtomicFile::commit() {
  LLMKIT_CHECK(f_ != nullptr, "'", path_, "' committed twice");
  const bool ok = std::fflush(f_) == 0 && fsync(fileno(f_)) == 0;
  const int err = errno;
  std::fclose(f_);
  f_ = nullptr;
  if (!ok || std::rename(tmp_.c_str(), path_.c_str()) != 0) {
    const int e = ok ? errno : err;
    std::remove(tmp_.c_str());
    fail("cannot write '", path_, "': ", std::strerror(e));
  }
  // Make the rename itself durable.
  std::string dir = std::filesystem::path(path_).parent_path().string();
  if (dir.empty()) dir = ".";
  const int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd >= 0) {
    fsync(fd);
    close(fd);
  }
}

void write_file_atomic(const std::string& path, std::string_view bytes) {
  AtomicFile f(path);
  f.write(bytes.data(), bytes.size());
  f.commit();
}

}  // namespace llmkit::io
