// Quantisation speed: quantize_row per ggml type over 1M N(0, 1) elements in rows of 4096, one
// thread. The K-quants' scale searches dominate (Q4_K tries 22 grids per 32 elements, Q6_K 19 per
// 16); the 32-element types are a single pass. A 135M-parameter model takes about
// 135 x (ms per 1M elements) of this figure single-threaded.
//
// Time is wall-clock (UseRealTime) per 2^20 elements, i.e. ~ms per million elements; Melem/s =
// millions of elements per second. *_generic: quantize_row_generic (the K-quant searches one
// sub-block at a time, as ggml's reference runs them), for comparison.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <random>
#include <vector>

#include "llmkit/kernels/cpu/quant.h"
#include "llmkit/kernels/cpu/quantize.h"

namespace {

using llmkit::kernels::GgmlType;

constexpr int64_t kRow = 4096, kRows = 256;  // 1M elements

void run(benchmark::State& state, GgmlType t, bool generic) {
  std::vector<float> src(kRow * kRows);
  std::mt19937 rng(1);
  std::normal_distribution<float> gauss(0.0f, 0.02f);  // the scale of real weights
  for (float& x : src) x = gauss(rng);
  const size_t row_bytes = llmkit::kernels::ggml_row_size(t, kRow);
  std::vector<uint8_t> dst(row_bytes * kRows);
  for (auto _ : state) {
    for (int64_t r = 0; r < kRows; ++r)
      (generic ? llmkit::kernels::quantize_row_generic : llmkit::kernels::quantize_row)(
          t, src.data() + r * kRow, dst.data() + r * row_bytes, kRow);
    benchmark::DoNotOptimize(dst.data());
    benchmark::ClobberMemory();
  }
  const double it = static_cast<double>(state.iterations());
  const double elems = static_cast<double>(src.size());
  state.counters["Melem/s"] = benchmark::Counter(it * elems / 1e6, benchmark::Counter::kIsRate);
}

void BM_Quantize(benchmark::State& state, GgmlType t) {
  run(state, t, false);
}
void BM_QuantizeGeneric(benchmark::State& state, GgmlType t) {
  run(state, t, true);
}

#define QUANTIZE_BENCH(BM, T) \
  BENCHMARK_CAPTURE(BM, T, GgmlType::T)->Unit(benchmark::kMillisecond)->UseRealTime()

QUANTIZE_BENCH(BM_Quantize, F16);
QUANTIZE_BENCH(BM_Quantize, BF16);
QUANTIZE_BENCH(BM_Quantize, Q8_0);
QUANTIZE_BENCH(BM_Quantize, Q4_0);
QUANTIZE_BENCH(BM_Quantize, Q4_1);
QUANTIZE_BENCH(BM_Quantize, Q5_0);
QUANTIZE_BENCH(BM_Quantize, Q5_1);
QUANTIZE_BENCH(BM_Quantize, Q4_K);
QUANTIZE_BENCH(BM_Quantize, Q5_K);
QUANTIZE_BENCH(BM_Quantize, Q6_K);
QUANTIZE_BENCH(BM_QuantizeGeneric, Q4_K);
QUANTIZE_BENCH(BM_QuantizeGeneric, Q5_K);
QUANTIZE_BENCH(BM_QuantizeGeneric, Q6_K);

}  // namespace

BENCHMARK_MAIN();
