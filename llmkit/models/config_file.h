// Reading a model config from a file: a model directory's config.json, or a training config
// (configs/*.json) whose "model" object is the config. Errors name the file.
#pragma once

#include <cmath>
#include <limits>
#include <string>
#include <type_traits>

#include <nlohmann/json.hpp>

#include "llmkit/core/error.h"

namespace llmkit::models {

// The JSON of `path` (its "model" object when it has one).
nlohmann::json read_config_json(const std::string& path);

// v.get_to(out), except that an integer field takes only a whole number that fits T; false when
// it does not. nlohmann casts a float to an integer unchecked (undefined behaviour for 1e28, found
// by fuzz_config_json) and wraps integers that do not fit. Throws nlohmann's type_error as
// get_to does for a value of the wrong type.
template <class T>
bool json_get_checked(const nlohmann::json& v, T& out) {
  if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
    using Limits = std::numeric_limits<T>;
    if (v.is_number_float()) {
      const double d = v.get<double>();
      const double hi = std::ldexp(1.0, Limits::digits);  // 2^63 for int64: T's bound, exactly
      if (!(d >= (std::is_signed_v<T> ? -hi : 0.0) && d < hi) || d != std::trunc(d)) return false;
      out = static_cast<T>(d);
      return true;
    }
    if (v.is_number_unsigned()) {  // nlohmann's type for every integer >= 0
      const auto u = v.get<uint64_t>();
      if (u > static_cast<uint64_t>(Limits::max())) return false;
      out = static_cast<T>(u);
      return true;
    }
    if (v.is_number_integer()) {  // negative
      const auto i = v.get<int64_t>();
      if (i < static_cast<int64_t>(Limits::min())) return false;
      out = static_cast<T>(i);
      return true;
    }
  }
  v.get_to(out);
  return true;
}

// Copies j[key] into `field` when the key is present; an Error names the field when its type is
// wrong or its number does not fit.
template <class T>
void read_field(const nlohmann::json& j, const char* key, T& field) {
  const auto it = j.find(key);
  if (it == j.end()) return;
  bool fits = false;
  try {
    fits = json_get_checked(*it, field);
  } catch (const nlohmann::json::exception&) {
    fail("config: field '", key, "' has the wrong type (", it->dump(), ")");
  }
  if (!fits) fail("config: field '", key, "' must be a whole number that fits (", it->dump(), ")");
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
