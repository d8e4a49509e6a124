// Reading a model config from a file: a model directory's config.json, or a training config
// (configs/*.json) whose "model" object is the config. Errors name the file.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "llmkit/core/error.h"

namespace llmkit::models {

// The JSON of `path` (its "model" object when it has one).
nlohmann::json read_config_json(const std::string& path);

// Copies j[key] into `field` when the key is present; an Error names the field when its type is
// wrong.
template <class T>
void read_field(const nlohmann::json& j, const char* key, T& field) {
  const auto it = j.find(key);
  if (it == j.end()) return;
  try {
    it->get_to(field);
  } catch (const nlohmann::json::exception&) {
    fail("config: field '", key, "' has the wrong type (", it->dump(), ")");
  }
}

// Config::from_json of that JSON, with the file named in any error.
template <class Config>
Config load_config_file(const std::string& path) {
  const nlohmann::json j = read_config_json(path);
  try {
    return Config::from_json(j);
  } catch (const Error& e) {
    fail(path, ": ", e.what());
  }
}

}  // namespace llmkit::models
