// GEMM throughput at GPT-2-small training shapes (B*T = 8192 rows, C = 768, 4C = 3072) and 2048^3:
// our kernels::gemm against the best sgemm on the machine, side by side in one run: raw OpenBLAS
// cblas_sgemm (the same library, so the difference is our wrapper) and BLIS cblas_sgemm. Prints a
// table at the end (goal: ours / best peer >= 0.90 at every shape), with what OpenBLAS reaches when
// left to the environment's OPENBLAS_CORETYPE and to its own CPU detection; those need fresh
// processes (OpenBLAS reads the variable when loaded), so the binary re-runs itself for them.
// Also times gemm_batched's two strategies (parallel over the batch vs BLAS-threaded products).
//
// Layouts follow the GPT-2 checkpoint (Conv1D weight W [C, OC]): forward Y = X W (NN), input
// gradient dX = dY W^T (NT), weight gradient dW = X^T dY (TN). Threads: llmkit::num_threads()
// (LLMKIT_THREADS, else all cores).
#include <benchmark/benchmark.h>
#include <dlfcn.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "llmkit/core/parallel.h"
#include "llmkit/kernels/cpu/gemm.h"

namespace {

using llmkit::kernels::gemm;
using Clock = std::chrono::steady_clock;

constexpr const char* kOpenBlasPath = "/usr/lib/x86_64-linux-gnu/openblas-openmp/libopenblas.so.0";
constexpr const char* kBlisPath = "/usr/lib/x86_64-linux-gnu/blis-openmp/libblis.so.4";
constexpr const char* kChildEnv = "LLMKIT_BENCH_GEMM_CHILD";

struct Shape {
  const char* name;
  int M, N, K;
  bool trans_a, trans_b;
};

// B*T = 8192 rows; fc: 768 -> 3072, proj: 3072 -> 768, attn proj: 768 -> 768.
const Shape kShapes[] = {
    {"2048^3 NN", 2048, 2048, 2048, false, false},
    {"fwd   768->768  NN", 8192, 768, 768, false, false},
    {"fwd   768->3072 NN", 8192, 3072, 768, false, false},
    {"fwd  3072->768  NN", 8192, 768, 3072, false, false},
    {"dX    768<-768  NT", 8192, 768, 768, false, true},
    {"dX    768<-3072 NT", 8192, 768, 3072, false, true},
    {"dX   3072<-768  NT", 8192, 3072, 768, false, true},
    {"dW    768x768   TN", 768, 768, 8192, true, false},
    {"dW    768x3072  TN", 768, 3072, 8192, true, false},
    {"dW   3072x768   TN", 3072, 768, 8192, true, false},
};
constexpr int kNumShapes = sizeof(kShapes) / sizeof(kShapes[0]);

double flops(const Shape& s) {
  return 2.0 * s.M * s.N * s.K;
}

// Operands for one shape, filled with small values (the values do not affect the speed).
struct Operands {
  std::vector<float> A, B, C;
  int lda, ldb, ldc;
  explicit Operands(const Shape& s)
      : A(size_t(s.M) * s.K, 0.01f),
        B(size_t(s.K) * s.N, 0.02f),
        C(size_t(s.M) * s.N, 0.0f),
        lda(s.trans_a ? s.M : s.K),
        ldb(s.trans_b ? s.K : s.N),
        ldc(s.N) {}
};

// A cblas_sgemm from a dlopen()ed library (LP64: int sizes).
using SgemmFn = void (*)(int, int, int, int, int, int, float, const float*, int, const float*, int,
                         float, float*, int);
struct Peer {
  std::string name;  // e.g. "OpenBLAS SkylakeX"
  SgemmFn sgemm = nullptr;
};

void call_peer(const Peer& p, const Shape& s, Operands& o) {
  p.sgemm(101, s.trans_a ? 112 : 111, s.trans_b ? 112 : 111, s.M, s.N, s.K, 1.0f, o.A.data(), o.lda,
          o.B.data(), o.ldb, 0.0f, o.C.data(), o.ldc);
}

template <typename Fn>
Fn symbol(void* handle, const char* name) {
  return handle ? reinterpret_cast<Fn>(dlsym(handle, name)) : nullptr;
}

bool has_avx512() {
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
}

// Raw OpenBLAS. After kernels::blas_info() has loaded it, this dlopen returns that same instance
// (SkylakeX kernels); in a child process it loads with the environment untouched.
Peer load_openblas() {
  void* h = dlopen(kOpenBlasPath, RTLD_NOW | RTLD_LOCAL);
  auto corename = symbol<char* (*)()>(h, "openblas_get_corename");
  auto set_threads = symbol<void (*)(int)>(h, "openblas_set_num_threads");
  if (!h || !corename || !set_threads) return {};
  set_threads(llmkit::num_threads());
  return {std::string("OpenBLAS ") + corename(), symbol<SgemmFn>(h, "cblas_sgemm")};
}

// BLIS 0.9.0 does not know Zen5 and falls back to its generic kernels (~65 GFLOP/s at 2048^3 on
// 2 threads); its skx kernels are the fair comparison, so ask for them unless the user chose.
Peer load_blis() {
  if (has_avx512()) setenv("BLIS_ARCH_TYPE", "skx", 0);
  void* h = dlopen(kBlisPath, RTLD_NOW | RTLD_LOCAL);
  auto set_threads = symbol<void (*)(long)>(h, "bli_thread_set_num_threads");
  auto arch_id = symbol<int (*)()>(h, "bli_arch_query_id");
  auto arch_name = symbol<const char* (*)(int)>(h, "bli_arch_string");
  if (!h || !set_threads || !arch_id || !arch_name) return {};
  set_threads(llmkit::num_threads());
  return {std::string("BLIS ") + arch_name(arch_id()), symbol<SgemmFn>(h, "cblas_sgemm")};
}

// A peer whose result differs from ours (e.g. an ILP64 build fed int sizes) is not compared.
bool agrees_with_ours(const Peer& p) {
  const Shape s{"check", 67, 45, 91, true, false};
  Operands ours(s), theirs(s);
  for (size_t i = 0; i < ours.A.size(); ++i) ours.A[i] = theirs.A[i] = float(i % 7) - 3;
  for (size_t i = 0; i < ours.B.size(); ++i) ours.B[i] = theirs.B[i] = float(i % 5) - 2;
  gemm(s.trans_a, s.trans_b, s.M, s.N, s.K, 1.0f, ours.A.data(), ours.lda, ours.B.data(), ours.ldb,
       0.0f, ours.C.data(), ours.ldc);
  call_peer(p, s, theirs);
  return ours.C == theirs.C;  // small integers: exact in any summation order
}

// results[impl][shape] = GFLOP/s of the best run of that benchmark (every timed loop Google
// Benchmark runs counts). Best-of, not mean, because on a shared 2-core machine other processes
// only ever slow a run down.
std::map<std::string, std::map<int, double>> g_results;
// batched[case][mode] = best GFLOP/s, likewise.
std::map<std::string, std::map<std::string, double>> g_batched;

void keep_best(double& slot, double value) {
  slot = std::max(slot, value);
}

template <typename Fn>
void run_timed(benchmark::State& state, const std::string& impl, int shape, Fn&& fn) {
  const auto t0 = Clock::now();
  for (auto _ : state) fn();
  const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  const double gflops = flops(kShapes[shape]) * double(state.iterations()) / secs * 1e-9;
  state.counters["GFLOP/s"] = gflops;
  keep_best(g_results[impl][shape], gflops);
}

void register_shape_benchmarks(const std::vector<Peer>& peers) {
  for (int i = 0; i < kNumShapes; ++i) {
    const Shape& s = kShapes[i];
    auto ours = [i, s](benchmark::State& state) {
      Operands o(s);
      run_timed(state, "ours", i, [&] {
        gemm(s.trans_a, s.trans_b, s.M, s.N, s.K, 1.0f, o.A.data(), o.lda, o.B.data(), o.ldb, 0.0f,
             o.C.data(), o.ldc);
      });
    };
    benchmark::RegisterBenchmark((std::string("gemm/ours/") + s.name).c_str(), ours)
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime();
    for (const Peer& p : peers) {
      auto peer = [i, s, p](benchmark::State& state) {
        Operands o(s);
        run_timed(state, p.name, i, [&] { call_peer(p, s, o); });
      };
      benchmark::RegisterBenchmark(("gemm/" + p.name + "/" + s.name).c_str(), peer)
          ->Unit(benchmark::kMillisecond)
          ->UseRealTime();
    }
  }
}

// gemm_batched's rule against its two strategies forced: "sequential" (BLAS threads each product)
// and "parallel" (one single-threaded product per thread). Args: size of square products, batch;
// or the attention shapes (T = 1024, HS = 64, B*NH = 96).
enum class Batched { kOurs, kSequential, kParallel };
void BM_batched(benchmark::State& state, const std::string& name, Batched mode, int M, int N, int K,
                bool trans_b, int batch) {
  const int ldb = trans_b ? K : N;
  std::vector<float> A(size_t(batch) * M * K, 0.01f), B(size_t(batch) * K * N, 0.02f),
      C(size_t(batch) * M * N);
  const int64_t sa = int64_t(M) * K, sb = int64_t(K) * N, sc = int64_t(M) * N;
  auto one = [&](int64_t i) {
    gemm(false, trans_b, M, N, K, 1.0f, A.data() + i * sa, K, B.data() + i * sb, ldb, 0.0f,
         C.data() + i * sc, N);
  };
  const auto t0 = Clock::now();
  for (auto _ : state) {
    if (mode == Batched::kOurs)
      llmkit::kernels::gemm_batched(batch, false, trans_b, M, N, K, 1.0f, A.data(), K, sa, B.data(),
                                    ldb, sb, 0.0f, C.data(), N, sc);
    else if (mode == Batched::kSequential)
      for (int64_t i = 0; i < batch; ++i) one(i);
    else
      llmkit::parallel_for(batch, 1, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) one(i);
      });
  }
  const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  const double gflops = 2.0 * M * N * K * batch * double(state.iterations()) / secs * 1e-9;
  state.counters["GFLOP/s"] = gflops;
  const char* mode_names[] = {"ours", "sequential", "parallel"};
  keep_best(g_batched[name][mode_names[int(mode)]], gflops);
}

void register_batched_benchmarks() {
  struct Case {
    const char* name;
    int M, N, K;
    bool trans_b;
    int batch;
  };
  const Case cases[] = {
      {"32^3x96", 32, 32, 32, false, 96},
      {"64^3x96", 64, 64, 64, false, 96},
      {"128^3x96", 128, 128, 128, false, 96},
      {"256^3x24", 256, 256, 256, false, 24},
      {"256^3x3", 256, 256, 256, false, 3},
      {"384^3x8", 384, 384, 384, false, 8},
      {"512^3x8", 512, 512, 512, false, 8},
      {"512^3x3", 512, 512, 512, false, 3},
      {"768^3x4", 768, 768, 768, false, 4},
      {"QK^T 1024x1024x64 x96", 1024, 1024, 64, true, 96},
      {"AV 1024x64x1024 x96", 1024, 64, 1024, false, 96},
  };
  const std::pair<const char*, Batched> modes[] = {{"ours", Batched::kOurs},
                                                   {"sequential", Batched::kSequential},
                                                   {"parallel", Batched::kParallel}};
  for (const Case& c : cases)
    for (auto [mode_name, mode] : modes)
      benchmark::RegisterBenchmark(
          (std::string("gemm_batched/") + mode_name + "/" + c.name).c_str(), BM_batched,
          std::string(c.name), mode, c.M, c.N, c.K, c.trans_b, c.batch)
          ->Unit(benchmark::kMillisecond)
          ->UseRealTime();
}

// Child mode: raw OpenBLAS loaded with the environment as given; prints "<shape> <GFLOP/s>" lines
// (median of 3 after a warm-up) and the core name.
int child_main() {
  const Peer p = load_openblas();
  if (!p.sgemm) return 1;
  std::printf("core %s\n", p.name.c_str());
  for (int i = 0; i < kNumShapes; ++i) {
    Operands o(kShapes[i]);
    call_peer(p, kShapes[i], o);
    std::vector<double> secs;
    for (int r = 0; r < 3; ++r) {
      const auto t0 = Clock::now();
      call_peer(p, kShapes[i], o);
      secs.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
    }
    std::sort(secs.begin(), secs.end());
    std::printf("%d %.1f\n", i, flops(kShapes[i]) / secs[1] * 1e-9);
  }
  return 0;
}

// Runs this binary in child mode under `env_prefix` and stores its figures as results[label].
// Returns the core name it reports, or "" when it failed.
std::string run_child(const std::string& env_prefix, std::string& label) {
  char exe[4096];
  const ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
  if (n <= 0) return "";
  exe[n] = '\0';
  const std::string cmd = env_prefix + " " + kChildEnv + "=1 '" + exe + "'";
  FILE* f = popen(cmd.c_str(), "r");
  if (!f) return "";
  char line[256], core[128] = "";
  std::map<int, double> figures;
  while (std::fgets(line, sizeof(line), f)) {
    int shape;
    double gflops;
    if (std::sscanf(line, "core %127[^\n]", core) == 1) continue;
    if (std::sscanf(line, "%d %lf", &shape, &gflops) == 2) figures[shape] = gflops;
  }
  if (pclose(f) != 0 || !*core) return "";
  label += std::string(" (") + core + ")";
  g_results[label] = figures;
  return core;
}

double get(const std::string& impl, int shape) {
  auto it = g_results.find(impl);
  if (it == g_results.end()) return 0;
  auto jt = it->second.find(shape);
  return jt == it->second.end() ? 0 : jt->second;
}

void print_table(const std::vector<Peer>& peers, const std::vector<std::string>& others) {
  if (!g_batched.empty()) {
    std::printf("\ngemm_batched fp32, %d threads; GFLOP/s (best run)\n", llmkit::num_threads());
    std::printf("%-24s %8s %11s %9s\n", "case", "ours", "sequential", "parallel");
    for (auto& [name, modes] : g_batched)
      std::printf("%-24s %8.1f %11.1f %9.1f\n", name.c_str(), modes["ours"], modes["sequential"],
                  modes["parallel"]);
  }
  if (g_results.count("ours") == 0) return;
  std::printf("\nGEMM fp32, %d threads, %s; GFLOP/s (best run of each benchmark)\n",
              llmkit::num_threads(), llmkit::kernels::blas_info().c_str());
  std::printf("%-20s %8s", "shape", "ours");
  for (const Peer& p : peers) std::printf(" %18s", p.name.c_str());
  std::printf("  %-18s %6s", "best peer", "ratio");
  for (const std::string& o : others) std::printf("  %s", o.c_str());
  std::printf("\n");
  for (int i = 0; i < kNumShapes; ++i) {
    const double ours = get("ours", i);
    if (ours == 0) continue;  // filtered out
    std::printf("%-20s %8.1f", kShapes[i].name, ours);
    double best = 0;
    std::string best_name = "-";
    for (const Peer& p : peers) {
      const double g = get(p.name, i);
      std::printf(" %18.1f", g);
      if (g > best) best = g, best_name = p.name;
    }
    std::printf("  %-18s %6.2f", best_name.c_str(), best > 0 ? ours / best : 0.0);
    for (const std::string& o : others) std::printf("  %*.1f", int(o.size()), get(o, i));
    std::printf("\n");
  }
}

// Reads the figures OpenBLAS reaches when nobody overrides its coretype. Skipped when
// LLMKIT_BENCH_GEMM_CHILDREN=0.
std::vector<std::string> measure_default_coretypes() {
  std::vector<std::string> labels;
  if (const char* s = std::getenv("LLMKIT_BENCH_GEMM_CHILDREN"); s && std::string(s) == "0")
    return labels;
  if (g_results.count("ours") == 0) return labels;  // shape benchmarks filtered out
  const char* preset = std::getenv("OPENBLAS_CORETYPE");
  std::string env_label = std::string("OPENBLAS_CORETYPE=") + (preset ? preset : "(unset)");
  if (!run_child("", env_label).empty()) labels.push_back(env_label);
  std::string auto_label = "autodetect";
  if (preset && !run_child("env -u OPENBLAS_CORETYPE", auto_label).empty())
    labels.push_back(auto_label);
  return labels;
}

}  // namespace

int main(int argc, char** argv) {
  if (std::getenv(kChildEnv)) return child_main();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  std::printf("llmkit gemm: %s, %d threads\n", llmkit::kernels::blas_info().c_str(),
              llmkit::num_threads());
  std::vector<Peer> peers;
  for (const Peer& p : {load_openblas(), load_blis()}) {
    if (!p.sgemm)
      std::printf("peer not available: %s\n", p.name.empty() ? "(failed to load)" : p.name.c_str());
    else if (!agrees_with_ours(p))
      std::printf("peer %s disagrees with kernels::gemm; left out\n", p.name.c_str());
    else
      peers.push_back(p);
  }
  register_shape_benchmarks(peers);
  register_batched_benchmarks();
  benchmark::RunSpecifiedBenchmarks();
  const std::vector<std::string> others = measure_default_coretypes();
  print_table(peers, others);
  benchmark::Shutdown();
  return 0;
}
