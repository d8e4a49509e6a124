// libFuzzer target: pairs_tsv (see tests/fuzz/entries.h; run with `make fuzz`).
#include "tests/fuzz/entries.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  llmkit::fuzz::pairs_tsv(data, size);
  return 0;
}
