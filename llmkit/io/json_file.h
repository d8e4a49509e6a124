// Reading a JSON file (config.json, tokenizer_config.json, trainer_state.json, ...) with errors
// that name the file: one place for what the loader, the trainer and the embedder all need.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace llmkit::io {

// Parses the file at `path`; an Error "cannot open 'path'" or "'path' is not valid JSON: ...".
nlohmann::json read_json_file(const std::string& path);

}  // namespace llmkit::io
