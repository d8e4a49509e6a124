// Reading a model config from a file: a model directory's config.json, or a training config
// (configs/*.json) whose "model" object is the config. Errors name the file.
#pragma once

#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <string>
#include <type_traits>
#include <utility>

#include <nlohmann/json.hpp>

#include "llmkit/core/error.h"

namespace llmkit::models {

// The JSON of `path` (its "model" object when it has one).
nlohmann::json read_config_json(const std::string& path);

// Copies j[key] into `field` when the key is present; an Error names the field when its type is
// wrong. An integer field takes a JSON integer, or a number with no fraction (1e12), that fits the
// field: nlohmann would cast 1e30 or 2^64-1 into an int64 silently (undefined or wrapped).
template <class T>
void read_field(const nlohmann::json& j, const char* key, T& field) {
  const auto it = j.find(key);
  if (it == j.end()) return;
  if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
    bool fits = false;
    if (it->is_number_unsigned())
      fits = it->get<uint64_t>() <= static_cast<uint64_t>(std::numeric_limits<T>::max());
    else if (it->is_number_integer())
      fits = it->get<int64_t>() >= static_cast<int64_t>(std::numeric_limits<T>::min()) &&
             it->get<int64_t>() <= static_cast<int64_t>(std::numeric_limits<T>::max());
    else if (it->is_number_float()) {
      const double v = it->get<double>();
      // [min, 2^digits) holds exactly the doubles that convert to T without overflow.
      fits = std::isfinite(v) && v == std::floor(v) &&
             v >= static_cast<double>(std::numeric_limits<T>::min()) &&
             v < std::ldexp(1.0, std::numeric_limits<T>::digits);
    }
    if (!it->is_number()) fail("config: field '", key, "' has the wrong type (", it->dump(), ")");
    if (!fits)
      fail("config: field '", key, "' must be an integer that fits ", sizeof(T) * 8, " bits, got ",
           it->dump());
    field = it->is_number_float() ? static_cast<T>(it->get<double>()) : it->get<T>();
    return;
  }
  try {
    it->get_to(field);
  } catch (const nlohmann::json::exception&) {
    fail("config: field '", key, "' has the wrong type (", it->dump(), ")");
  }
}

// Size arithmetic for config checks that saturates at INT64_MAX instead of overflowing, so an
// absurd config compares as too large instead of wrapping to something small. Arguments >= 0.
inline int64_t size_mul(int64_t a, int64_t b) {
  int64_t r;
  return __builtin_mul_overflow(a, b, &r) ? std::numeric_limits<int64_t>::max() : r;
}
inline int64_t size_add(int64_t a, int64_t b) {
  int64_t r;
  return __builtin_add_overflow(a, b, &r) ? std::numeric_limits<int64_t>::max() : r;
}

// The most elements (parameters, or one sequence's activation in one layer) a model config may
// ask for: 2^40, ~4 TB of float32, far past any model this toolkit trains or loads, far below
// where size arithmetic overflows.
constexpr int64_t kMaxModelElements = int64_t(1) << 40;

// An Error naming `what` when `elements` passes kMaxModelElements; called by each config's
// validate() before anything is allocated.
inline void check_model_size(int64_t elements, const char* what) {
  LLMKIT_CHECK(elements <= kMaxModelElements, "config: ", what, " would be ",
               elements == std::numeric_limits<int64_t>::max() ? std::string("more than 2^63")
                                                               : std::to_string(elements),
               " elements, more than the 2^40 limit (check n_layer, n_embd, block_size, "
               "vocab_size)");
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

// Each named size must be at most kMaxModelElements (so that the products validate() forms from
// them are meaningful) and vocab_size must fit the int32 token ids; call after the positivity
// checks.
inline void check_dims(std::initializer_list<std::pair<const char*, int64_t>> dims,
                       int64_t vocab_size) {
  for (const auto& [name, v] : dims)
    LLMKIT_CHECK(v <= kMaxModelElements, "config: ", name, " ", v,
                 " is absurdly large (more than 2^40)");
  LLMKIT_CHECK(vocab_size <= std::numeric_limits<int32_t>::max(), "config: vocab_size ", vocab_size,
               " does not fit 32-bit token ids");
}

}  // namespace llmkit::models
