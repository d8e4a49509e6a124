#include "llmkit/io/json_file.h"

#include <fstream>

#include "llmkit/core/error.h"

namespace llmkit::io {

nlohmann::json read_json_file(const std::string& path) {
  std::ifstream in(path);
  LLMKIT_CHECK(in.good(), "cannot open '", path, "'");
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    fail("'", path, "' is not valid JSON: ", e.what());
  }
}

}  // namespace llmkit::io
