// Quantised matrix products (kernels/cpu/qmatmul.h) at SmolLM2-135M's shapes (n_embd 576,
// k/v 192, ffn 1536, vocab 49152), against the machine's read bandwidth measured here:
// - BM_read_bandwidth: a STREAM-like read (sum of a 512 MiB buffer, num_threads() threads), the
//   ceiling a memory-bound matrix-vector product can reach;
// - BM_matvec/<type>/<rows>x<cols>/{hot,cold}: one token (M = 1), GB/s of weight bytes. "hot"
//   repeats one matrix (it stays in L2 / L3, as small layers do between tokens), "cold" walks
//   over copies filling 512 MiB so every byte comes from DRAM; "pct_bw" is GB/s over the
//   bandwidth measured by BM_read_bandwidth (run it first: benchmarks run in order);
// - BM_prefill/<type>/<rows>x<cols>: M = 512 tokens, tokens/s and weight-MACs/s, and the same
//   product as f32 through kernels::gemm (OpenBLAS) for scale; BM_tokens: M = 2 ... 32 around
//   qmatmul's switch from its int8 kernels to sgemm.
// Threads: llmkit::num_threads() (LLMKIT_THREADS, else all cores). Weights are random blocks
// with sane scales (timing does not depend on the values, only on finite scales).
#include <benchmark/benchmark.h>
#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "llmkit/core/dtype.h"
#include "llmkit/core/parallel.h"
#include "llmkit/kernels/cpu/gemm.h"
#include "llmkit/kernels/cpu/qmatmul.h"

namespace {

using namespace llmkit::kernels;

constexpr size_t kPool = size_t{512} << 20;
double g_bandwidth = 0;  // GB/s, set by BM_read_bandwidth

// 512 MiB of 64-byte-aligned memory, touched.
uint8_t* pool() {
  static uint8_t* p = [] {
    auto* q = static_cast<uint8_t*>(std::aligned_alloc(64, kPool));
    std::mt19937_64 rng(1);
    for (size_t i = 0; i < kPool; i += 8) {
      const uint64_t v = rng();
      std::memcpy(q + i, &v, 8);
    }
    return q;
  }();
  return p;
}

// Sums [p, p + n) as 64-bit lanes (n a multiple of 256, p 64-byte aligned): every byte read
// once, with the widest loads this build has (AVX-512, AVX2, or plain 64-bit words).
uint64_t read_sum(const uint8_t* p, size_t n) {
#if defined(__AVX512F__)
  __m512i acc0 = _mm512_setzero_si512(), acc1 = acc0, acc2 = acc0, acc3 = acc0;
  for (size_t i = 0; i < n; i += 256) {
    acc0 = _mm512_add_epi64(acc0, _mm512_load_si512(p + i));
    acc1 = _mm512_add_epi64(acc1, _mm512_load_si512(p + i + 64));
    acc2 = _mm512_add_epi64(acc2, _mm512_load_si512(p + i + 128));
    acc3 = _mm512_add_epi64(acc3, _mm512_load_si512(p + i + 192));
  }
  alignas(64) uint64_t lanes[8];
  _mm512_store_si512(lanes,
                     _mm512_add_epi64(_mm512_add_epi64(acc0, acc1), _mm512_add_epi64(acc2, acc3)));
#elif defined(__AVX2__)
  __m256i acc0 = _mm256_setzero_si256(), acc1 = acc0, acc2 = acc0, acc3 = acc0;
  for (size_t i = 0; i < n; i += 128) {
    acc0 = _mm256_add_epi64(acc0, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i)));
    acc1 = _mm256_add_epi64(acc1, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 32)));
    acc2 = _mm256_add_epi64(acc2, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 64)));
    acc3 = _mm256_add_epi64(acc3, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 96)));
  }
  alignas(32) uint64_t lanes[4];
  _mm256_store_si256(reinterpret_cast<__m256i*>(lanes),
                     _mm256_add_epi64(_mm256_add_epi64(acc0, acc1), _mm256_add_epi64(acc2, acc3)));
#else
  uint64_t lanes[4] = {0, 0, 0, 0};
  for (size_t i = 0; i < n; i += 32)
    for (int j = 0; j < 4; ++j) {
      uint64_t v;
      std::memcpy(&v, p + i + 8 * j, 8);
      lanes[j] += v;
    }
#endif
  uint64_t total = 0;
  for (uint64_t v : lanes) total += v;
  return total;
}

void BM_read_bandwidth(benchmark::State& state) {
  const uint8_t* p = pool();
  const int nt = llmkit::num_threads();
  const auto t0 = std::chrono::steady_clock::now();
  for (auto _ : state) {
    uint64_t total = 0;
#pragma omp parallel num_threads(nt) reduction(+ : total)
    {
      const int t = omp_get_thread_num(), n = omp_get_num_threads();
      const size_t b = kPool / 256 * t / n * 256, e = kPool / 256 * (t + 1) / n * 256;
      total += read_sum(p + b, e - b);
    }
    benchmark::DoNotOptimize(total);
  }
  const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  g_bandwidth = static_cast<double>(kPool) * state.iterations() / 1e9 / sec;
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kPool));
  state.counters["GB/s"] = benchmark::Counter(static_cast<double>(kPool) * state.iterations() / 1e9,
                                              benchmark::Counter::kIsRate);
  state.counters["threads"] = nt;
}

void put_f16(uint8_t* p, float f) {
  const uint16_t h = llmkit::float_to_f16(f).bits;
  std::memcpy(p, &h, 2);
}

// Rewrites the scale fields of the blocks in [p, p + bytes) to finite, sane values (the random
// bytes would hold infinities and subnormals).
void sane_scales(GgmlType t, uint8_t* p, size_t bytes) {
  const size_t bs = ggml_type_size(t);
  for (size_t i = 0; i + bs <= bytes; i += bs) {
    uint8_t* b = p + i;
    switch (t) {
      case GgmlType::F32: {
        const float f = static_cast<float>(static_cast<int>(b[0]) - 128) / 128;
        std::memcpy(b, &f, 4);
        break;
      }
      case GgmlType::F16:
      case GgmlType::BF16:
        b[1] = static_cast<uint8_t>(0x3c ^ (b[1] & 0x83));  // |value| in [0.5, 2)-ish, both signs
        break;
      case GgmlType::Q4_1:
      case GgmlType::Q5_1:
        put_f16(b + 2, 0.01f);
        [[fallthrough]];
      case GgmlType::Q4_0:
      case GgmlType::Q5_0:
      case GgmlType::Q8_0:
        put_f16(b, 0.01f);
        break;
      case GgmlType::Q4_K:
      case GgmlType::Q5_K:
        put_f16(b, 0.001f);
        put_f16(b + 2, 0.001f);
        break;
      case GgmlType::Q6_K:
        put_f16(b + 208, 0.001f);
        break;
      default:
        break;
    }
  }
}

std::vector<float> random_x(int64_t n) {
  std::mt19937 rng(2);
  std::normal_distribution<float> g;
  std::vector<float> x(n);
  for (auto& v : x) v = g(rng);
  return x;
}

void BM_matvec(benchmark::State& state, GgmlType t, int64_t rows, int64_t cols, bool cold) {
  const size_t bytes = ggml_row_size(t, cols) * rows;
  const size_t copies = cold ? std::max<size_t>(1, kPool / bytes) : 1;
  uint8_t* p = pool();
  sane_scales(t, p, bytes * copies);
  const auto x = random_x(cols);
  std::vector<float> y(rows);
  size_t i = 0;
  for (auto _ : state) {
    const QMatrix W{t, rows, cols, p + bytes * i};
    qmatmul(W, 1, x.data(), cols, y.data(), rows);
    benchmark::DoNotOptimize(y.data());
    i = i + 1 == copies ? 0 : i + 1;
  }
  const double gb = static_cast<double>(bytes) * state.iterations() / 1e9;
  state.counters["GB/s"] = benchmark::Counter(gb, benchmark::Counter::kIsRate);
  if (g_bandwidth > 0)
    state.counters["pct_bw"] =
        benchmark::Counter(gb * 100 / g_bandwidth, benchmark::Counter::kIsRate);
}

void BM_prefill(benchmark::State& state, GgmlType t, int64_t rows, int64_t cols, int64_t M) {
  const size_t bytes = ggml_row_size(t, cols) * rows;
  uint8_t* p = pool();
  sane_scales(t, p, bytes);
  const auto x = random_x(M * cols);
  std::vector<float> y(M * rows);
  const QMatrix W{t, rows, cols, p};
  for (auto _ : state) {
    qmatmul(W, M, x.data(), cols, y.data(), rows);
    benchmark::DoNotOptimize(y.data());
  }
  state.counters["tok/s"] =
      benchmark::Counter(static_cast<double>(M) * state.iterations(), benchmark::Counter::kIsRate);
  state.counters["GMAC/s"] = benchmark::Counter(
      static_cast<double>(M) * rows * cols * state.iterations() / 1e9, benchmark::Counter::kIsRate);
}

void BM_prefill_sgemm(benchmark::State& state, int64_t rows, int64_t cols) {
  constexpr int64_t M = 512;
  const auto w = random_x(rows * cols);
  const auto x = random_x(M * cols);
  std::vector<float> y(M * rows);
  for (auto _ : state) {
    gemm(false, true, M, rows, cols, 1.0f, x.data(), cols, w.data(), cols, 0.0f, y.data(), rows);
    benchmark::DoNotOptimize(y.data());
  }
  state.counters["tok/s"] =
      benchmark::Counter(static_cast<double>(M) * state.iterations(), benchmark::Counter::kIsRate);
  state.counters["GMAC/s"] = benchmark::Counter(
      static_cast<double>(M) * rows * cols * state.iterations() / 1e9, benchmark::Counter::kIsRate);
}

struct Shape {
  int64_t rows, cols;
};
const Shape kShapes[] = {{576, 576}, {192, 576}, {1536, 576}, {576, 1536}, {49152, 576}};
const GgmlType kTypes[] = {GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q5_0, GgmlType::Q5_1,
                           GgmlType::Q8_0, GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K,
                           GgmlType::F16,  GgmlType::BF16, GgmlType::F32};

int register_all() {
  benchmark::RegisterBenchmark("BM_read_bandwidth", BM_read_bandwidth)
      ->UseRealTime()
      ->Unit(benchmark::kMillisecond);
  for (GgmlType t : kTypes) {
    const std::string tn = ggml_type_name(t);
    for (const Shape& s : kShapes) {
      if (s.cols % ggml_block_size(t) != 0) continue;
      const std::string shape = std::to_string(s.rows) + "x" + std::to_string(s.cols);
      for (bool cold : {false, true})
        benchmark::RegisterBenchmark(
            ("BM_matvec/" + tn + "/" + shape + (cold ? "/cold" : "/hot")).c_str(), BM_matvec, t,
            s.rows, s.cols, cold)
            ->UseRealTime()
            ->Unit(benchmark::kMicrosecond);
    }
  }
  const Shape prefill[] = {{576, 576}, {1536, 576}, {576, 1536}};
  for (GgmlType t : kTypes) {
    for (const Shape& s : prefill) {
      if (s.cols % ggml_block_size(t) != 0) continue;
      benchmark::RegisterBenchmark(("BM_prefill/" + std::string(ggml_type_name(t)) + "/" +
                                    std::to_string(s.rows) + "x" + std::to_string(s.cols))
                                       .c_str(),
                                   BM_prefill, t, s.rows, s.cols, int64_t{512})
          ->UseRealTime()
          ->Unit(benchmark::kMillisecond);
    }
  }
  // Batches (batched decode, short prompts) around the switch from the int8 kernels to sgemm
  // at M = 64.
  for (GgmlType t : {GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q8_0, GgmlType::F16})
    for (int64_t M : {2, 4, 8, 16, 32, 64, 128, 256})
      benchmark::RegisterBenchmark(
          ("BM_tokens/" + std::string(ggml_type_name(t)) + "/1536x576/M=" + std::to_string(M))
              .c_str(),
          BM_prefill, t, int64_t{1536}, int64_t{576}, M)
          ->UseRealTime()
          ->Unit(benchmark::kMicrosecond);
  for (const Shape& s : prefill)
    benchmark::RegisterBenchmark(
        ("BM_prefill_sgemm/F32/" + std::to_string(s.rows) + "x" + std::to_string(s.cols)).c_str(),
        BM_prefill_sgemm, s.rows, s.cols)
        ->UseRealTime()
        ->Unit(benchmark::kMillisecond);
  return 0;
}

const int kRegistered = register_all();

}  // namespace

BENCHMARK_MAIN();
