// Encode throughput of llmkit's byte-level BPE, on the corpus and tokenizer named by
// LLMKIT_BENCH_CORPUS and LLMKIT_BENCH_TOKENIZER (bench/tokenizer/run.sh sets them; without them
// a fixture text and the GPT-2 vocabulary in tests/fixtures/gpt2 are used). The corpus is cut
// into ~64 kB texts, as the peers in bench/tokenizer/ are fed; MB/s is bytes of input per second.
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <optional>

#include "llmkit/core/parallel.h"
#include "llmkit/tokenizer/pretokenizer.h"
#include "llmkit/tokenizer/read_file.h"
#include "llmkit/tokenizer/tokenizer.h"

namespace {

using namespace llmkit::tokenizer;

const char* env_or(const char* name, const char* fallback) {
  const char* v = std::getenv(name);
  return v ? v : fallback;
}

struct Data {
  Tokenizer tok = Tokenizer::load(env_or("LLMKIT_BENCH_TOKENIZER", "tests/fixtures/gpt2"));
  std::string text =
      read_file(env_or("LLMKIT_BENCH_CORPUS", "tests/fixtures/tokenizer/corpus_small.txt"));
  std::vector<std::string> chunks;
  Data() {
    size_t pos = 0;
    while (pos < text.size()) {
      size_t end = text.find('\n', std::min(text.size(), pos + (64 << 10)));
      end = end == std::string::npos ? text.size() : end + 1;
      chunks.push_back(text.substr(pos, end - pos));
      pos = end;
    }
  }
};

Data& data() {
  static Data d;
  return d;
}

void BM_EncodeOneThread(benchmark::State& state) {
  Data& d = data();
  llmkit::set_num_threads(1);
  size_t tokens = 0;
  for (auto _ : state) {
    tokens = 0;
    for (const auto& c : d.chunks) tokens += d.tok.encode(c).size();
    benchmark::DoNotOptimize(tokens);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * d.text.size()));
  state.counters["tokens"] = static_cast<double>(tokens);
}

void BM_EncodeAllThreads(benchmark::State& state) {
  Data& d = data();
  llmkit::set_num_threads(static_cast<int>(state.range(0)));
  for (auto _ : state) benchmark::DoNotOptimize(d.tok.encode_batch(d.chunks));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * d.text.size()));
}

void BM_PreTokenizeScanner(benchmark::State& state) {
  Data& d = data();
  for (auto _ : state) {
    size_t n = 0;
    gpt2_split(d.text, [&](std::string_view) { ++n; });
    benchmark::DoNotOptimize(n);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * d.text.size()));
}

void BM_PreTokenizePcre2(benchmark::State& state) {
  Data& d = data();
  const Pcre2Splitter re;
  for (auto _ : state) benchmark::DoNotOptimize(re.split(d.text).size());
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * d.text.size()));
}

// Wall-clock time everywhere, as the peers are timed: CPU time would flatter us on a busy machine.
BENCHMARK(BM_EncodeOneThread)->Unit(benchmark::kMillisecond)->MinTime(1.0)->UseRealTime();
BENCHMARK(BM_EncodeAllThreads)->Arg(2)->Unit(benchmark::kMillisecond)->MinTime(1.0)->UseRealTime();
BENCHMARK(BM_PreTokenizeScanner)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_PreTokenizePcre2)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
