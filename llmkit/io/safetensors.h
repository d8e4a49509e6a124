// safetensors (Hugging Face's weight format): an 8-byte little-endian header length N, N bytes
// of JSON {"name": {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}},
// then the data, row-major little-endian, offsets relative to the data's start. Loading maps the
// file and returns tensors that borrow the mapping (no copy); the mapping lives until the last
// such tensor dies. Every header field is validated against the file, so a truncated or
// corrupted file is one clear error naming the file and the problem, never a crash.
// Not here: Hugging Face name maps and GPT-2's Conv1D transposes (no importer exists yet).
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "llmkit/core/tensor.h"

namespace llmkit::io {

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

struct SafetensorsFile {
  NamedTensors tensors;  // in data order (ascending data_offsets; ties by name)
  std::map<std::string, std::string> metadata;
  std::string path;
  // Tensors left out because their dtype (I64, BOOL, ...) has no llmkit type; filled only when
  // the loader was asked to skip them (e.g. Hugging Face BERT's int64 "embeddings.position_ids"
  // buffer). Sorted in data order.
  std::vector<std::string> skipped;
  // The tensor called `name`; an Error naming the file and the tensor if absent. Linear search.
  Tensor get(const std::string& name) const;
};

// Writes atomically (temp file, fsync, rename; see atomic_file.h). The header's keys come out
// sorted by name (as the Python library's do) and it is padded with spaces to a multiple of 8
// bytes. The data are laid out by element size, largest first, then by name, as the Rust
// reference does: every tensor then starts at a multiple of its element size, so loading can
// view the mapping without copying. Non-contiguous tensors are written in logical order.
// Names must be distinct, valid UTF-8 and not "__metadata__".
void save_safetensors(const std::string& path, const NamedTensors& tensors,
                      const std::map<std::string, std::string>& metadata = {});

// Maps `path` (opened read-only; MAP_PRIVATE, copy-on-write: writing into a loaded tensor never
// changes the file) and validates it as the Rust reference does, plus duplicate names: the data
// section must be covered exactly by the tensors, without holes or overlaps. Tensors whose bytes
// are not aligned to their element size (files from writers that do not pad) are copied.
// Truncating the file on disk while its tensors are alive is undefined (SIGBUS), as for any mmap.
// skip_unsupported: a tensor of a valid dtype llmkit has no type for is listed in `skipped`
// instead of being an Error.
SafetensorsFile load_safetensors(const std::string& path, bool skip_unsupported = false);

// Parses and validates a whole file held in memory (what load_safetensors does after mapping);
// `name` is used in error messages. The tensors copy the data.
SafetensorsFile parse_safetensors(std::string_view bytes, const std::string& name,
                                  bool skip_unsupported = false);

}  // namespace llmkit::io
