// A fresh directory under the system's temp directory for one test, removed with everything in
// it when the test ends. mkdtemp makes the name unique across processes (ctest -j) and tests.
#pragma once

#include <stdlib.h>

#include <filesystem>
#include <string>

namespace llmkit::testing {

struct TempDir {
  std::filesystem::path path;
  TempDir() {
    std::string t = (std::filesystem::temp_directory_path() / "llmkit_test_XXXXXX").string();
    path = mkdtemp(t.data());
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string file(const std::string& name) const { return (path / name).string(); }
};

}  // namespace llmkit::testing
