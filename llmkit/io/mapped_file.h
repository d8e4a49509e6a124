// A file mapped into memory for the weight readers (safetensors, GGUF): opened read-only, mapped
// private and writable, so writing into a loaded tensor is copy-on-write and never touches the
// file. One place for the open / fstat / mmap checks and their errors.
#pragma once

#include <cstddef>
#include <string>

namespace llmkit::io {

struct FileMapping {
  void* addr = nullptr;  // null for an empty file
  size_t size = 0;
};

// Maps `path`; an Error names the file when it cannot be opened, is a directory or not a regular
// file, or cannot be mapped. The caller owns the mapping (unmap_file).
FileMapping map_file(const std::string& path);
void unmap_file(const FileMapping& m);

}  // namespace llmkit::io
