#include "llmkit/io/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "llmkit/core/error.h"

namespace llmkit::io {

AtomicFile::AtomicFile(const std::string& path)
    : path_(path), tmp_(path + ".tmp." + std::to_string(getpid())) {
  f_ = std::fopen(tmp_.c_str(), "wb");
  LLMKIT_CHECK(f_ != nullptr, "cannot write '", path_, "' (creating '", tmp_,
               "'): ", std::strerror(errno));
}

AtomicFile::~AtomicFile() {
  if (f_ != nullptr) {
    std::fclose(f_);
    std::remove(tmp_.c_str());
  }
}

void AtomicFile::write(const void* data, size_t n) {
  LLMKIT_CHECK(f_ != nullptr, "cannot write '", path_, "': already committed");
  if (n > 0 && std::fwrite(data, 1, n, f_) != n)
    fail("cannot write '", path_, "': ", std::strerror(errno));
}

void AtomicFile::commit(Durability durability) {
  LLMKIT_CHECK(f_ != nullptr, "cannot commit '", path_, "': already committed");
  int err = 0;
  if (std::fflush(f_) != 0) err = errno;
  if (err == 0 && durability != Durability::kNone && fsync(fileno(f_)) != 0) err = errno;
  if (std::fclose(f_) != 0 && err == 0) err = errno;
  f_ = nullptr;
  if (err == 0 && std::rename(tmp_.c_str(), path_.c_str()) != 0) err = errno;
  if (err != 0) {
    std::remove(tmp_.c_str());
    fail("cannot write '", path_, "': ", std::strerror(err));
  }
  if (durability == Durability::kFileAndDirectory) {
    const std::filesystem::path dir = std::filesystem::path(path_).parent_path();
    fsync_directory(dir.empty() ? "." : dir.string());
  }
}

void write_file_atomic(const std::string& path, std::string_view bytes, Durability durability) {
  AtomicFile f(path);
  f.write(bytes.data(), bytes.size());
  f.commit(durability);
}

void fsync_directory(const std::string& dir) {
  const int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    fsync(fd);
    close(fd);
  }
}

}  // namespace llmkit::io
