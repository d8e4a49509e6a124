// Row-wise kernels at GPT-2 small shapes, 2 threads: layer_norm and rms_norm forward + backward
// (8192 rows x 768), softmax forward (12 heads x 256 queries, rows of 256 keys), and the fused
// cross-entropy over the GPT-2 vocabulary (8 x 1024 rows x 50257) against the composite it
// replaces (log_softmax materialised, gather; backward through a dense one-hot dy, as an
// unfused log_softmax + nll_loss graph would run it).
//
// Counters: GB/s = bytes each kernel must move (inputs read once, outputs written once,
// accumulated gradients read and written) / wall time; rows/s. Buffers are allocated and touched
// once per process (fresh pages are slow here), never inside the timed loop.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <vector>

#include "llmkit/core/parallel.h"
#include "llmkit/kernels/cpu/loss.h"
#include "llmkit/kernels/cpu/norm.h"
#include "llmkit/kernels/cpu/softmax.h"

namespace {

using namespace llmkit::kernels;

constexpr int kThreads = 2;

// Deterministic pseudo-random fill in [lo, hi), in parallel so first-touch is spread over cores.
void fill(std::vector<float>* v, float lo, float hi, uint64_t seed) {
  float* p = v->data();
  llmkit::parallel_for(static_cast<int64_t>(v->size()), 1 << 16, [=](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      uint64_t z = (static_cast<uint64_t>(i) + seed) * 0x9E3779B97F4A7C15ull;
      z ^= z >> 29;
      z *= 0xBF58476D1CE4E5B9ull;
      z ^= z >> 32;
      p[i] = lo + (hi - lo) * static_cast<float>(z >> 40) * (1.0f / 16777216.0f);
    }
  });
}

std::vector<float> make(int64_t n, float lo, float hi, uint64_t seed) {
  std::vector<float> v(static_cast<size_t>(n));
  fill(&v, lo, hi, seed);
  return v;
}

void set_counters(benchmark::State& state, double bytes, double rows) {
  const double it = static_cast<double>(state.iterations());
  state.counters["GB/s"] = benchmark::Counter(bytes * it / 1e9, benchmark::Counter::kIsRate);
  state.counters["rows/s"] = benchmark::Counter(rows * it, benchmark::Counter::kIsRate);
}

// ---- norms: 8192 x 768 ----------------------------------------------------------------------

constexpr int64_t kNormR = 8192, kNormC = 768;

struct NormData {
  std::vector<float> x = make(kNormR * kNormC, -2, 2, 1), dout = make(kNormR * kNormC, -1, 1, 2);
  std::vector<float> w = make(kNormC, 0.5, 1.5, 3), b = make(kNormC, -0.1f, 0.1f, 4);
  std::vector<float> out = make(kNormR * kNormC, 0, 0, 0), dx = make(kNormR * kNormC, 0, 0, 0);
  std::vector<float> mean = make(kNormR, 0, 0, 0), rstd = make(kNormR, 0, 0, 0);
  std::vector<float> dw = make(kNormC, 0, 0, 0), db = make(kNormC, 0, 0, 0);
};
NormData& norm_data() {
  static NormData d;
  return d;
}

// fwd: read x, write out; bwd: read dout, x, read + write dx (per-row stats and [C] vectors are
// negligible).
constexpr double kNormBytes = 6.0 * kNormR * kNormC * sizeof(float);

void BM_layer_norm_fwd_bwd(benchmark::State& state) {
  llmkit::set_num_threads(kThreads);
  NormData& d = norm_data();
  for (auto _ : state) {
    layer_norm_forward(d.out.data(), d.mean.data(), d.rstd.data(), d.x.data(), d.w.data(),
                       d.b.data(), kNormR, kNormC, 1e-5);
    layer_norm_backward(d.dx.data(), d.dw.data(), d.db.data(), d.dout.data(), d.x.data(),
                        d.w.data(), d.mean.data(), d.rstd.data(), kNormR, kNormC);
    benchmark::ClobberMemory();
  }
  set_counters(state, kNormBytes, kNormR);
}
BENCHMARK(BM_layer_norm_fwd_bwd)->UseRealTime()->Unit(benchmark::kMicrosecond);

void BM_rms_norm_fwd_bwd(benchmark::State& state) {
  llmkit::set_num_threads(kThreads);
  NormData& d = norm_data();
  for (auto _ : state) {
    rms_norm_forward(d.out.data(), d.rstd.data(), d.x.data(), d.w.data(), kNormR, kNormC, 1e-5);
    rms_norm_backward(d.dx.data(), d.dw.data(), d.dout.data(), d.x.data(), d.w.data(),
                      d.rstd.data(), kNormR, kNormC);
    benchmark::ClobberMemory();
  }
  set_counters(state, kNormBytes, kNormR);
}
BENCHMARK(BM_rms_norm_fwd_bwd)->UseRealTime()->Unit(benchmark::kMicrosecond);

// ---- softmax: (12 heads x 256 queries) rows x 256 keys --------------------------------------

constexpr int64_t kSoftR = 12 * 256, kSoftC = 256;

void BM_softmax_fwd(benchmark::State& state) {
  llmkit::set_num_threads(kThreads);
  static const std::vector<float> x = make(kSoftR * kSoftC, -8, 8, 5);
  static std::vector<float> y = make(kSoftR * kSoftC, 0, 0, 0);
  for (auto _ : state) {
    softmax_forward(y.data(), x.data(), kSoftR, kSoftC);
    benchmark::ClobberMemory();
  }
  set_counters(state, 2.0 * kSoftR * kSoftC * sizeof(float), kSoftR);
}
BENCHMARK(BM_softmax_fwd)->UseRealTime()->Unit(benchmark::kMicrosecond);

// ---- cross-entropy: (8 x 1024) rows x 50257 vocab ---------------------------------------------

constexpr int64_t kCeR = 8 * 1024, kCeV = 50257;
constexpr int32_t kIgnore = -100;

struct CeData {
  std::vector<float> logits = make(kCeR * kCeV, -10, 10, 6);
  std::vector<float> dlogits = make(kCeR * kCeV, 0, 0, 0);
  std::vector<float> losses = make(kCeR, 0, 0, 0), lse = make(kCeR, 0, 0, 0);
  std::vector<int32_t> targets = [] {
    std::vector<int32_t> t(kCeR);
    for (int64_t r = 0; r < kCeR; ++r) t[r] = static_cast<int32_t>((r * 7919) % kCeV);
    return t;
  }();
};
CeData& ce_data() {
  static CeData d;
  return d;
}

void BM_cross_entropy_fused_fwd(benchmark::State& state) {
  llmkit::set_num_threads(kThreads);
  CeData& d = ce_data();
  for (auto _ : state) {
    const int64_t n = cross_entropy_forward(d.losses.data(), d.lse.data(), d.logits.data(),
                                            d.targets.data(), kCeR, kCeV, kIgnore);
    benchmark::DoNotOptimize(n);
    benchmark::ClobberMemory();
  }
  set_counters(state, 1.0 * kCeR * kCeV * sizeof(float), kCeR);  // read logits
}
BENCHMARK(BM_cross_entropy_fused_fwd)->UseRealTime()->Unit(benchmark::kMillisecond);

void BM_cross_entropy_fused_fwd_bwd(benchmark::State& state) {
  llmkit::set_num_threads(kThreads);
  CeData& d = ce_data();
  for (auto _ : state) {
    const int64_t n = cross_entropy_forward(d.losses.data(), d.lse.data(), d.logits.data(),
                                            d.targets.data(), kCeR, kCeV, kIgnore);
    cross_entropy_backward(d.dlogits.data(), d.logits.data(), d.lse.data(), d.targets.data(),
                           1.0f / static_cast<float>(n), kCeR, kCeV, kIgnore);
    benchmark::ClobberMemory();
  }
  // fwd: read logits; bwd: read logits, read + write dlogits.
  set_counters(state, 4.0 * kCeR * kCeV * sizeof(float), kCeR);
}
BENCHMARK(BM_cross_entropy_fused_fwd_bwd)->UseRealTime()->Unit(benchmark::kMillisecond);

// Composite baseline: logp = log_softmax(logits) materialised; loss = -logp[target]; backward
// builds the dense dlogp = -scale * onehot and runs log_softmax_backward.
void BM_cross_entropy_composite_fwd_bwd(benchmark::State& state) {
  llmkit::set_num_threads(kThreads);
  CeData& d = ce_data();
  static std::vector<float> logp = make(kCeR * kCeV, 0, 0, 0);
  static std::vector<float> dlogp = make(kCeR * kCeV, 0, 0, 0);
  for (auto _ : state) {
    log_softmax_forward(logp.data(), d.logits.data(), kCeR, kCeV);
    int64_t n = 0;
    for (int64_t r = 0; r < kCeR; ++r) {
      const int32_t t = d.targets[r];
      d.losses[r] = t == kIgnore ? 0.0f : -logp[r * kCeV + t];
      n += t != kIgnore;
    }
    const float scale = 1.0f / static_cast<float>(n);
    float* g = dlogp.data();
    const int32_t* tg = d.targets.data();
    llmkit::parallel_for(kCeR, 1, [=](int64_t b, int64_t e) {
      for (int64_t r = b; r < e; ++r) {
        float* gr = g + r * kCeV;
        for (int64_t v = 0; v < kCeV; ++v) gr[v] = 0.0f;
        if (tg[r] != kIgnore) gr[tg[r]] = -scale;
      }
    });
    log_softmax_backward(d.dlogits.data(), dlogp.data(), logp.data(), kCeR, kCeV);
    benchmark::ClobberMemory();
  }
  // fwd: read logits, write logp; bwd: write dlogp, read dlogp + logp, read + write dlogits.
  set_counters(state, 7.0 * kCeR * kCeV * sizeof(float), kCeR);
}
BENCHMARK(BM_cross_entropy_composite_fwd_bwd)->UseRealTime()->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
