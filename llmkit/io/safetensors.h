// safetensors (Hugging Face's weight format): an 8-byte little-endian header length N, N bytes
// of JSON {"name": {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}},
// then the data, row-major little-endian, offsets relative to the data's start. Loading maps the
// file and returns tensors that borrow the mapping (no copy); the mapping lives until the last
// such tensor dies. Every header field is validated against the file, so a truncated or
// corrupted file is one clear error naming the file and the problem, never a crash.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "llmkit/core/tensor.h"

namespace llmkit::io {

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

struct SafetensorsFile {
  NamedTensors tensors;  // in data order
  std::map<std::string, std::string> metadata;
  std::string path;
  // The tensor called `name`; an Error naming the file and the tensor if absent.
  Tensor get(const std::string& name) const;
};

// Writes atomically. The header lists tensors sorted by name (as the Python library does) and is
// padded with spaces to a multiple of 8 bytes; data follow in the same order.
void save_safetensors(const std::string& path, const NamedTensors& tensors,
                      const std::map<std::string, std::string>& metadata = {});
SafetensorsFile load_safetensors(const std::string& path);

// Parses and validates a whole file held in memory (what load_safetensors does after mapping);
// `name` is used in error messages. The tensors copy the data.
SafetensorsFile parse_safetensors(std::string_view bytes, const std::string& name);

}  // namespace llmkit::io
