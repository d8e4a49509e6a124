// Replays every committed fuzz input (tests/fuzz/corpus/<target>/ and regressions/<target>/)
// through the fuzz entry points in the normal build, without libFuzzer: a parser change that
// brings back a crash, an exception other than llmkit::Error, or a broken invariant fails here.
// Inputs that ASan would flag are caught by running this test in `make test-asan`.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "llmkit/core/error.h"
#include "tests/fuzz/entries.h"

namespace llmkit::fuzz {
// ctest's test names show the parameter: print the target's name, not its bytes.
void PrintTo(const Target& t, std::ostream* os) {
  *os << t.name;
}
}  // namespace llmkit::fuzz

namespace fs = std::filesystem;
using llmkit::fuzz::Target;

namespace {

fs::path fuzz_dir() {
  const char* src = std::getenv("LLMKIT_SOURCE_DIR");
  return fs::path(src != nullptr ? src : ".") / "tests" / "fuzz";
}

std::string read_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class FuzzCorpus : public ::testing::TestWithParam<Target> {};

}  // namespace

TEST_P(FuzzCorpus, EveryInputIsAcceptedOrAnError) {
  const Target t = GetParam();
  size_t files = 0;
  for (const char* kind : {"corpus", "regressions"}) {
    const fs::path dir = fuzz_dir() / kind / t.name;
    if (!fs::is_directory(dir)) continue;
    for (const auto& e : fs::directory_iterator(dir)) {
      if (!e.is_regular_file()) continue;
      ++files;
      const std::string bytes = read_bytes(e.path());
      try {
        t.entry(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
      } catch (const llmkit::Error&) {
        // bad input, reported as it should be
      } catch (const std::exception& ex) {
        ADD_FAILURE() << e.path() << ": " << ex.what();
      }
    }
  }
  // The seed corpus is committed: an empty folder means the corpus went missing.
  EXPECT_GE(files, 3u) << "no corpus under " << (fuzz_dir() / "corpus" / t.name);
  std::printf("%s: %zu inputs replayed\n", t.name, files);
}

INSTANTIATE_TEST_SUITE_P(All, FuzzCorpus, ::testing::ValuesIn(llmkit::fuzz::targets()),
                         [](const auto& info) { return std::string(info.param.name); });
