// libFuzzer target: gguf (see tests/fuzz/entries.h; run with `make fuzz`).
#include "tests/fuzz/entries.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  llmkit::fuzz::gguf(data, size);
  return 0;
}
