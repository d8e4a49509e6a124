#include "llmkit/io/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "llmkit/core/error.h"

namespace llmkit::io {

FileMapping map_file(const std::string& path) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  LLMKIT_CHECK(fd >= 0, "cannot open '", path, "': ", std::strerror(errno));
  struct stat st = {};
  const int stat_rc = fstat(fd, &st);
  if (stat_rc != 0 || !S_ISREG(st.st_mode)) {
    const int err = stat_rc != 0 ? errno : 0;
    close(fd);
    fail("cannot read '", path, "': ",
         err != 0              ? std::strerror(err)
         : S_ISDIR(st.st_mode) ? "it is a directory"
                               : "not a regular file");
  }
  const size_t size = static_cast<size_t>(st.st_size);
  if (size == 0) {
    close(fd);
    return {};
  }
  void* addr = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
  const int err = errno;
  close(fd);
  LLMKIT_CHECK(addr != MAP_FAILED, "cannot map '", path, "': ", std::strerror(err));
  return {addr, size};
}

void unmap_file(const FileMapping& m) {
  if (m.addr != nullptr) munmap(m.addr, m.size);
}

}  // namespace llmkit::io
