#include "llmkit/models/config_file.h"

#include <fstream>

namespace llmkit::models {

nlohmann::json read_config_json(const std::string& path) {
  std::ifstream in(path);
  LLMKIT_CHECK(in.good(), "cannot open model config '", path, "'");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    fail("model config '", path, "' is not valid JSON: ", e.what());
  }
  return j.is_object() && j.contains("model") ? j.at("model") : j;
}

}  // namespace llmkit::models
