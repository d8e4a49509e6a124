// The web chat page's files (llmkit/serve/web/), compiled into the binary by CMake
// (cmake/embed_files.cmake), so `llmkit serve` needs nothing beside it at run time.
#pragma once

#include <span>
#include <string_view>

namespace llmkit::serve {

struct WebAsset {
  std::string_view path;     // "/index.html", "/app.js", ...
  std::string_view content;  // the file's bytes
};

std::span<const WebAsset> web_assets();

}  // namespace llmkit::serve
