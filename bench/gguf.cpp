// GGUF dequantisation speed: dequantize_row per ggml type over 1M elements in rows of 4096, one
// thread, the AVX-512 kernels (Dequant) and the generic per-block loops (DequantGeneric); and the
// time to load the SmolLM2-135M-Instruct GGUF (mmap + parse) and dequantise every tensor to f32
// with to_f32 (parallel over rows), skipped when the model is not in the cache
// (scripts/get-models.sh).
//
// All times are wall-clock (UseRealTime). Counters: GB/s = f32 bytes written / wall time (in_GB/s:
// quantised bytes read); for the model, params/s and the load+dequantise time per iteration.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "llmkit/core/parallel.h"
#include "llmkit/io/gguf.h"
#include "llmkit/kernels/cpu/quant.h"
#include "tests/common/reference.h"

namespace {

using llmkit::kernels::GgmlType;

constexpr int64_t kRow = 4096, kRows = 256;  // 1M elements

// Random blocks with finite fp16 scales (and finite F16 values).
std::vector<uint8_t> random_blocks(GgmlType t) {
  std::vector<uint8_t> b(llmkit::kernels::ggml_row_size(t, kRow) * kRows);
  std::mt19937 rng(1);
  for (auto& x : b) x = static_cast<uint8_t>(rng());
  const size_t bytes = llmkit::kernels::ggml_type_size(t);
  if (t == GgmlType::F32 || t == GgmlType::BF16) return b;
  const size_t d_at = t == GgmlType::Q6_K ? 208 : 0;
  for (size_t at = 0; at < b.size(); at += bytes) b[at + d_at + 1] &= 0x3B;
  return b;
}

template <bool kGeneric>
void BM_Dequant(benchmark::State& state, GgmlType t) {
  const std::vector<uint8_t> src = random_blocks(t);
  std::vector<float> dst(kRow * kRows);
  const size_t row_bytes = llmkit::kernels::ggml_row_size(t, kRow);
  for (auto _ : state) {
    for (int64_t r = 0; r < kRows; ++r) {
      if (kGeneric)
        llmkit::kernels::dequantize_row_generic(t, src.data() + r * row_bytes,
                                                dst.data() + r * kRow, kRow);
      else
        llmkit::kernels::dequantize_row(t, src.data() + r * row_bytes, dst.data() + r * kRow, kRow);
    }
    benchmark::DoNotOptimize(dst.data());
    benchmark::ClobberMemory();
  }
  const double it = static_cast<double>(state.iterations());
  state.counters["GB/s"] = benchmark::Counter(it * static_cast<double>(dst.size() * 4) / 1e9,
                                              benchmark::Counter::kIsRate);
  state.counters["in_GB/s"] =
      benchmark::Counter(it * static_cast<double>(src.size()) / 1e9, benchmark::Counter::kIsRate);
}

constexpr GgmlType kTypes[] = {GgmlType::F32,  GgmlType::F16,  GgmlType::BF16, GgmlType::Q4_0,
                               GgmlType::Q4_1, GgmlType::Q5_0, GgmlType::Q5_1, GgmlType::Q8_0,
                               GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K};

// Load (mmap + parse + validate) and dequantise every tensor of SmolLM2 to f32, 2 threads.
void BM_LoadSmolLM2ToF32(benchmark::State& state) {
  const std::string path = llmkit::testing::model_path("smollm2");
  if (path.empty()) {
    state.SkipWithError("SmolLM2 GGUF not in the model cache (scripts/get-models.sh)");
    return;
  }
  llmkit::set_num_threads(2);
  int64_t params = 0;
  for (auto _ : state) {
    const llmkit::io::GgufFile f = llmkit::io::load_gguf(path);
    params = 0;
    for (const auto& t : f.tensors) {
      const llmkit::Tensor x = f.to_f32(t);
      benchmark::DoNotOptimize(x.raw_data());
      params += x.numel();
    }
  }
  state.counters["params"] = static_cast<double>(params);
  state.counters["params/s"] =
      benchmark::Counter(static_cast<double>(params) * static_cast<double>(state.iterations()),
                         benchmark::Counter::kIsRate);
}

// Load only: mmap, parse and validate the header, metadata (49152-token vocabulary) and infos.
void BM_LoadSmolLM2Header(benchmark::State& state) {
  const std::string path = llmkit::testing::model_path("smollm2");
  if (path.empty()) {
    state.SkipWithError("SmolLM2 GGUF not in the model cache (scripts/get-models.sh)");
    return;
  }
  for (auto _ : state) benchmark::DoNotOptimize(llmkit::io::load_gguf(path).tensors.size());
}

int register_all() {
  for (GgmlType t : kTypes) {
    const std::string name = llmkit::kernels::ggml_type_name(t);
    benchmark::RegisterBenchmark(("Dequant/" + name).c_str(), BM_Dequant<false>, t)->UseRealTime();
    benchmark::RegisterBenchmark(("DequantGeneric/" + name).c_str(), BM_Dequant<true>, t)
        ->UseRealTime();
  }
  benchmark::RegisterBenchmark("LoadSmolLM2Header", BM_LoadSmolLM2Header)
      ->Unit(benchmark::kMillisecond)
      ->UseRealTime();
  benchmark::RegisterBenchmark("LoadSmolLM2ToF32", BM_LoadSmolLM2ToF32)
      ->Unit(benchmark::kMillisecond)
      ->UseRealTime();
  return 0;
}
const int registered = register_all();

}  // namespace

BENCHMARK_MAIN();
