// Fused attention (kernels/cpu/attention) against the composite it replaces: a naive version that
// materialises the T x T probabilities per head (scores = q k^T, softmax, p v) and keeps them for
// its backward, as an unfused autograd graph would. Causal, NH = 12, HS = 64, 2 threads.
// Counters: GFLOP/s (causal counted as half the square; backward as 2.5x forward), tokens/s, and
// score_MiB, the score/probability memory each variant holds.
#include <benchmark/benchmark.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "llmkit/core/parallel.h"
#include "llmkit/kernels/cpu/attention.h"

namespace {

using llmkit::kernels::AttentionShape;
constexpr int64_t kNH = 12, kHS = 64;
constexpr int kThreads = 2;

struct Problem {
  AttentionShape s;
  std::vector<float> q, k, v, out, lse, dout, dq, dk, dv;
  explicit Problem(int64_t B, int64_t T)
      : s{B, kNH, kNH, T, T, kHS, true, 1.0 / std::sqrt(double(kHS))} {
    const size_t n = B * kNH * T * kHS;
    std::mt19937 rng(1);
    std::uniform_real_distribution<float> u(-1, 1);
    for (auto* x : {&q, &k, &v, &dout}) {
      x->resize(n);
      for (float& e : *x) e = u(rng);
    }
    out.resize(n), dq.resize(n), dk.resize(n), dv.resize(n), lse.resize(B * kNH * T);
  }
};

// ---- naive materialising reference (per head: full scores, softmax, matmuls) ----------------

// P [T][T] = causal softmax(scale q k^T); out = P v. kt [HS][T] is scratch for k transposed.
void naive_head_forward(float* out, float* P, float* kt, const float* q, const float* k,
                        const float* v, int64_t T, float scale) {
  for (int64_t j = 0; j < T; ++j)
    for (int64_t d = 0; d < kHS; ++d) kt[d * T + j] = k[j * kHS + d];
  for (int64_t i = 0; i < T; ++i) {
    float* p = P + i * T;
    std::fill(p, p + T, 0.0f);
    for (int64_t d = 0; d < kHS; ++d)
      for (int64_t j = 0; j <= i; ++j) p[j] += q[i * kHS + d] * kt[d * T + j];
    float mx = -INFINITY, sum = 0;
    for (int64_t j = 0; j <= i; ++j) mx = std::max(mx, p[j] * scale);
    for (int64_t j = 0; j <= i; ++j) sum += p[j] = std::exp(p[j] * scale - mx);
    for (int64_t j = 0; j <= i; ++j) p[j] /= sum;
    float* o = out + i * kHS;
    std::fill(o, o + kHS, 0.0f);
    for (int64_t j = 0; j <= i; ++j)
      for (int64_t d = 0; d < kHS; ++d) o[d] += p[j] * v[j * kHS + d];
  }
}

// dv += P^T dout, dS = P (dP - rowsum(P dP)) with dP = dout v^T, dq += scale dS k,
// dk += scale dS^T q. dP [T][T] and vt [HS][T] are scratch.
void naive_head_backward(float* dq, float* dk, float* dv, float* dP, float* vt, const float* P,
                         const float* dout, const float* q, const float* k, const float* v,
                         int64_t T, float scale) {
  for (int64_t j = 0; j < T; ++j)
    for (int64_t d = 0; d < kHS; ++d) vt[d * T + j] = v[j * kHS + d];
  for (int64_t i = 0; i < T; ++i) {
    const float* p = P + i * T;
    float* g = dP + i * T;
    std::fill(g, g + T, 0.0f);
    for (int64_t d = 0; d < kHS; ++d)
      for (int64_t j = 0; j <= i; ++j) g[j] += dout[i * kHS + d] * vt[d * T + j];
    float D = 0;
    for (int64_t j = 0; j <= i; ++j) D += p[j] * g[j];
    for (int64_t j = 0; j <= i; ++j) g[j] = scale * p[j] * (g[j] - D);
    for (int64_t j = 0; j <= i; ++j)
      for (int64_t d = 0; d < kHS; ++d) {
        dq[i * kHS + d] += g[j] * k[j * kHS + d];
        dk[j * kHS + d] += g[j] * q[i * kHS + d];
        dv[j * kHS + d] += p[j] * dout[i * kHS + d];
      }
  }
}

struct Naive {
  std::vector<float> P, dP, kt;  // P kept for backward: [B*NH][T][T]
  explicit Naive(const Problem& p)
      : P(p.s.B * kNH * p.s.Tq * p.s.Tq),
        dP(kThreads * p.s.Tq * p.s.Tq),
        kt(kThreads * kHS * p.s.Tq) {}
  void forward(Problem& p) {
    const int64_t T = p.s.Tq, n = p.s.B * kNH;
#pragma omp parallel for num_threads(kThreads) schedule(dynamic, 1)
    for (int64_t bh = 0; bh < n; ++bh)
      naive_head_forward(&p.out[bh * T * kHS], &P[bh * T * T], &kt[omp_get_thread_num() * kHS * T],
                         &p.q[bh * T * kHS], &p.k[bh * T * kHS], &p.v[bh * T * kHS], T,
                         float(p.s.scale));
  }
  void backward(Problem& p) {
    const int64_t T = p.s.Tq, n = p.s.B * kNH;
#pragma omp parallel for num_threads(kThreads) schedule(dynamic, 1)
    for (int64_t bh = 0; bh < n; ++bh) {
      const int t = omp_get_thread_num();
      naive_head_backward(&p.dq[bh * T * kHS], &p.dk[bh * T * kHS], &p.dv[bh * T * kHS],
                          &dP[t * T * T], &kt[t * kHS * T], &P[bh * T * T], &p.dout[bh * T * kHS],
                          &p.q[bh * T * kHS], &p.k[bh * T * kHS], &p.v[bh * T * kHS], T,
                          float(p.s.scale));
    }
  }
};

// ---- benchmarks --------------------------------------------------------------------------------

void set_counters(benchmark::State& state, const AttentionShape& s, bool backward,
                  double score_bytes) {
  const double fwd = 4.0 * s.B * s.NH * s.Tq * s.Tk * s.HS / 2;  // causal: half the square
  const double flops = backward ? 3.5 * fwd : fwd;
  state.counters["FLOP/s"] =
      benchmark::Counter(flops, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["tokens/s"] =
      benchmark::Counter(double(s.B * s.Tq), benchmark::Counter::kIsIterationInvariantRate);
  state.counters["score_MiB"] = score_bytes / (1 << 20);
}

// Scores held by the fused kernel: per thread, one 64 x 64 tile (two in backward: P and dP).
double fused_score_bytes(bool backward) {
  return kThreads * (backward ? 2 : 1) * 64.0 * 64 * sizeof(float);
}

void BM_FusedForward(benchmark::State& state) {
  llmkit::set_num_threads(kThreads);
  Problem p(state.range(0), state.range(1));
  for (auto _ : state) {
    llmkit::kernels::attention_forward(p.out.data(), p.lse.data(), p.q.data(), p.k.data(),
                                       p.v.data(), nullptr, nullptr,
                                       static_cast<const float*>(nullptr), p.s);
    benchmark::ClobberMemory();
  }
  set_counters(state, p.s, false, fused_score_bytes(false));
}

void BM_FusedForwardBackward(benchmark::State& state) {
  llmkit::set_num_threads(kThreads);
  Problem p(state.range(0), state.range(1));
  for (auto _ : state) {
    llmkit::kernels::attention_forward(p.out.data(), p.lse.data(), p.q.data(), p.k.data(),
                                       p.v.data(), nullptr, nullptr,
                                       static_cast<const float*>(nullptr), p.s);
    llmkit::kernels::attention_backward(p.dq.data(), p.dk.data(), p.dv.data(),
                                        static_cast<float*>(nullptr), p.dout.data(), p.q.data(),
                                        p.k.data(), p.v.data(), p.out.data(), p.lse.data(), nullptr,
                                        nullptr, static_cast<const float*>(nullptr), p.s);
    benchmark::ClobberMemory();
  }
  set_counters(state, p.s, true, fused_score_bytes(true));
}

void BM_NaiveForward(benchmark::State& state) {
  Problem p(state.range(0), state.range(1));
  Naive naive(p);
  for (auto _ : state) {
    naive.forward(p);
    benchmark::ClobberMemory();
  }
  set_counters(state, p.s, false, double(naive.P.size()) * sizeof(float));
}

void BM_NaiveForwardBackward(benchmark::State& state) {
  Problem p(state.range(0), state.range(1));
  Naive naive(p);
  for (auto _ : state) {
    naive.forward(p);
    naive.backward(p);
    benchmark::ClobberMemory();
  }
  set_counters(state, p.s, true, double(naive.P.size() + naive.dP.size()) * sizeof(float));
}

void shapes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"B", "T"})->Args({1, 256})->Args({4, 256})->Args({1, 1024});
  b->Unit(benchmark::kMillisecond)->UseRealTime();
}

BENCHMARK(BM_FusedForward)->Apply(shapes);
BENCHMARK(BM_NaiveForward)->Apply(shapes);
BENCHMARK(BM_FusedForwardBackward)->Apply(shapes);
BENCHMARK(BM_NaiveForwardBackward)->Apply(shapes);

}  // namespace

BENCHMARK_MAIN();
