// GEMM through OpenBLAS loaded at run time. Why not link it: OpenBLAS (DYNAMIC_ARCH) chooses its
// kernels in a library constructor that reads OPENBLAS_CORETYPE before main(), and environments
// preset OPENBLAS_CORETYPE=Haswell, which on AVX-512 CPUs runs the AVX2 kernels at about half the
// speed (~195 vs ~360 GFLOP/s for 2048^3 fp32 on 2 Zen5 cores). Loading it ourselves lets us set
// the coretype first, so the fast kernels run without the user setting anything.
//
// Coretype rule: LLMKIT_OPENBLAS_CORETYPE, if set, wins; else on CPUs with AVX-512 F/BW/VL/DQ we
// ask for SkylakeX (its sgemm/dgemm kernels are the ones Cooperlake also uses; Debian's 0.3.21 has
// no sbgemm, so Cooperlake adds nothing); else the environment and OpenBLAS's own detection stand.
// The previous OPENBLAS_CORETYPE value is restored after loading, so child processes see the
// environment they were given.
#include "llmkit/kernels/cpu/gemm.h"

#include <dlfcn.h>
#include <omp.h>

#include <atomic>
#include <climits>
#include <cstdlib>
#include <optional>
#include <string>

#include "llmkit/core/error.h"
#include "llmkit/core/parallel.h"

namespace llmkit::kernels {
namespace {

// Debian's OpenMP build, by absolute path: the generic libblas.so.3 / libopenblas.so.0 names go
// through update-alternatives and may resolve to reference BLAS or the pthreads build.
constexpr const char* kOpenBlasPath = "/usr/lib/x86_64-linux-gnu/openblas-openmp/libopenblas.so.0";
constexpr const char* kOpenBlasSoname = "libopenblas.so.0";
constexpr const char* kAvx512Coretype = "SkylakeX";

// CBLAS enum values (cblas.h); passed as int, which is how C passes these enums.
constexpr int kRowMajor = 101, kNoTrans = 111, kTrans = 112;

using SgemmFn = void (*)(int, int, int, int, int, int, float, const float*, int, const float*, int,
                         float, float*, int);
using DgemmFn = void (*)(int, int, int, int, int, int, double, const double*, int, const double*,
                         int, double, double*, int);
using SetThreadsFn = void (*)(int);
using StringFn = char* (*)();
using IntFn = int (*)();

struct Blas {
  void* handle = nullptr;
  SgemmFn sgemm = nullptr;
  DgemmFn dgemm = nullptr;
  SetThreadsFn set_num_threads = nullptr;
  std::string info;
};

// The coretype to request before loading, or nullopt to leave OpenBLAS to the environment.
std::optional<std::string> wanted_coretype() {
  if (const char* s = std::getenv("LLMKIT_OPENBLAS_CORETYPE"); s != nullptr && *s != '\0')
    return std::string(s);
#if defined(__x86_64__) || defined(__i386__)
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq"))
    return std::string(kAvx512Coretype);
#endif
  return std::nullopt;
}

// dlopen()s OpenBLAS with OPENBLAS_CORETYPE set to `coretype` for the duration of the load.
// setenv is not thread-safe against concurrent getenv; this runs once, inside load_blas().
void* open_openblas(const std::optional<std::string>& coretype, std::string& errors) {
  std::optional<std::string> saved;
  if (coretype) {
    if (const char* s = std::getenv("OPENBLAS_CORETYPE")) saved = s;
    setenv("OPENBLAS_CORETYPE", coretype->c_str(), 1);
  }
  void* handle = nullptr;
  for (const char* path : {kOpenBlasPath, kOpenBlasSoname}) {
    handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (handle != nullptr) break;
    errors += std::string("\n  ") + dlerror();
  }
  if (coretype) {
    if (saved)
      setenv("OPENBLAS_CORETYPE", saved->c_str(), 1);
    else
      unsetenv("OPENBLAS_CORETYPE");
  }
  return handle;
}

// "OpenBLAS 0.3.21 NO_LAPACKE DYNAMIC_ARCH ..." + "SkylakeX" -> "OpenBLAS 0.3.21 OpenMP, SkylakeX
// kernels".
std::string describe(const std::string& config, int parallel, const std::string& corename) {
  size_t end = config.find(' ');
  if (end != std::string::npos) end = config.find(' ', end + 1);
  std::string s = config.substr(0, end);
  s += parallel == 2 ? " OpenMP" : parallel == 1 ? " pthreads" : " single-threaded";
  return s + ", " + corename + " kernels";
}

Blas load_blas() {
  const std::optional<std::string> coretype = wanted_coretype();
  std::string errors;
  void* handle = open_openblas(coretype, errors);
  LLMKIT_CHECK(handle != nullptr, "gemm: cannot load OpenBLAS from ", kOpenBlasPath, " or ",
               kOpenBlasSoname, " (install the Debian package libopenblas0-openmp):", errors);
  Blas b;
  b.handle = handle;
  b.sgemm = reinterpret_cast<SgemmFn>(dlsym(handle, "cblas_sgemm"));
  b.dgemm = reinterpret_cast<DgemmFn>(dlsym(handle, "cblas_dgemm"));
  b.set_num_threads = reinterpret_cast<SetThreadsFn>(dlsym(handle, "openblas_set_num_threads"));
  auto get_config = reinterpret_cast<StringFn>(dlsym(handle, "openblas_get_config"));
  auto get_corename = reinterpret_cast<StringFn>(dlsym(handle, "openblas_get_corename"));
  auto get_parallel = reinterpret_cast<IntFn>(dlsym(handle, "openblas_get_parallel"));
  LLMKIT_CHECK(
      b.sgemm && b.dgemm && b.set_num_threads && get_config && get_corename && get_parallel,
      "gemm: the library loaded as OpenBLAS lacks cblas_sgemm, cblas_dgemm or the "
      "openblas_* functions; install the Debian package libopenblas0-openmp");
  b.info = describe(get_config(), get_parallel(), get_corename());
  return b;
}

// Thread-safe one-time load (a function-local static: C++ runs its initialiser once, and again
// on the next call if it threw).
const Blas& blas() {
  static const Blas b = load_blas();
  return b;
}

// Gives BLAS llmkit's thread count. The OpenMP build follows omp_get_max_threads() of the calling
// thread at each call, which LLMKIT_THREADS alone does not set, so check that as well as the last
// value we passed (which is all a pthreads build would go by).
void sync_threads(const Blas& b) {
  static std::atomic<int> last{0};
  const int n = num_threads();
  if (last.load(std::memory_order_relaxed) != n || omp_get_max_threads() != n) {
    b.set_num_threads(n);
    last.store(n, std::memory_order_relaxed);
  }
}

void call_blas(const Blas& b, int ta, int tb, int M, int N, int K, float alpha, const float* A,
               int lda, const float* B, int ldb, float beta, float* C, int ldc) {
  b.sgemm(kRowMajor, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}
void call_blas(const Blas& b, int ta, int tb, int M, int N, int K, double alpha, const double* A,
               int lda, const double* B, int ldb, double beta, double* C, int ldc) {
  b.dgemm(kRowMajor, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

// Checks sizes and strides; OpenBLAS would print an xerbla message and return without computing.
void check_args(const char* op, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
                int64_t lda, int64_t ldb, int64_t ldc) {
  LLMKIT_CHECK(M >= 0 && N >= 0 && K >= 0, op, ": negative size M=", M, " N=", N, " K=", K);
  const int64_t a_cols = trans_a ? M : K, b_cols = trans_b ? K : N;
  LLMKIT_CHECK(lda >= a_cols && lda >= 1, op, ": lda=", lda, " < ", a_cols, " for A stored [",
               trans_a ? K : M, ",", a_cols, "]");
  LLMKIT_CHECK(ldb >= b_cols && ldb >= 1, op, ": ldb=", ldb, " < ", b_cols, " for B stored [",
               trans_b ? N : K, ",", b_cols, "]");
  LLMKIT_CHECK(ldc >= N && ldc >= 1, op, ": ldc=", ldc, " < N=", N, " for C [", M, ",", N, "]");
  LLMKIT_CHECK(M <= INT_MAX && N <= INT_MAX && K <= INT_MAX && lda <= INT_MAX && ldb <= INT_MAX &&
                   ldc <= INT_MAX,
               op, ": sizes or strides exceed 32 bits (M=", M, " N=", N, " K=", K, " lda=", lda,
               " ldb=", ldb, " ldc=", ldc, ")");
}

// C = beta * C, the whole product when K == 0 (BLAS semantics: beta == 0 writes zeros).
template <typename T>
void scale(int64_t M, int64_t N, T beta, T* C, int64_t ldc) {
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) C[i * ldc + j] = beta == T(0) ? T(0) : beta * C[i * ldc + j];
}

// One product, sizes already checked, BLAS threads already synced.
template <typename T>
void gemm_one(const Blas& b, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha,
              const T* A, int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc) {
  if (M == 0 || N == 0) return;
  if (K == 0) return scale(M, N, beta, C, ldc);
  call_blas(b, trans_a ? kTrans : kNoTrans, trans_b ? kTrans : kNoTrans, int(M), int(N), int(K),
            alpha, A, int(lda), B, int(ldb), beta, C, int(ldc));
}

template <typename T>
void gemm_impl(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A,
               int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc) {
  check_args("gemm", trans_a, trans_b, M, N, K, lda, ldb, ldc);
  if (M == 0 || N == 0) return;
  const Blas& b = blas();
  sync_threads(b);
  gemm_one(b, trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

// Below this many flops per product (2*M*N*K), the batch runs in parallel with one single-threaded
// BLAS call per product; at or above it, products run one after another with BLAS threading each.
// The crossover is not pinned down: bench_gemm's gemm_batched (2 threads) on a loaded machine
// (load 5) had parallel-over-batch 3-18x faster at 256^3 and 4x at 512^3 (sequential won at
// 64^3 in that run, which contradicts the design and is likely noise). Re-measure on an idle
// machine before moving the threshold.
constexpr double kBatchParallelFlops = 2.0 * 512 * 512 * 512;

template <typename T>
void gemm_batched_impl(int64_t batch, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
                       T alpha, const T* A, int64_t lda, int64_t stride_a, const T* B, int64_t ldb,
                       int64_t stride_b, T beta, T* C, int64_t ldc, int64_t stride_c) {
  check_args("gemm_batched", trans_a, trans_b, M, N, K, lda, ldb, ldc);
  LLMKIT_CHECK(batch >= 0, "gemm_batched: negative batch ", batch);
  LLMKIT_CHECK(batch <= 1 || stride_c != 0 || M == 0 || N == 0,
               "gemm_batched: stride_c == 0 with batch ", batch, " would write one C repeatedly");
  if (batch == 0 || M == 0 || N == 0) return;
  const Blas& b = blas();
  sync_threads(b);
  auto run = [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i)
      gemm_one(b, trans_a, trans_b, M, N, K, alpha, A + i * stride_a, lda, B + i * stride_b, ldb,
               beta, C + i * stride_c, ldc);
  };
  const double flops = 2.0 * double(M) * double(N) * double(K);
  if (flops < kBatchParallelFlops)
    parallel_for(batch, 1, run);  // inside the region OpenBLAS sees omp_in_parallel(): 1 thread
  else
    run(0, batch);
}

}  // namespace

void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
          int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  gemm_impl(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, double alpha,
          const double* A, int64_t lda, const double* B, int64_t ldb, double beta, double* C,
          int64_t ldc) {
  gemm_impl(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void gemm_batched(int64_t batch, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
                  float alpha, const float* A, int64_t lda, int64_t stride_a, const float* B,
                  int64_t ldb, int64_t stride_b, float beta, float* C, int64_t ldc,
                  int64_t stride_c) {
  gemm_batched_impl(batch, trans_a, trans_b, M, N, K, alpha, A, lda, stride_a, B, ldb, stride_b,
                    beta, C, ldc, stride_c);
}

void gemm_batched(int64_t batch, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
                  double alpha, const double* A, int64_t lda, int64_t stride_a, const double* B,
                  int64_t ldb, int64_t stride_b, double beta, double* C, int64_t ldc,
                  int64_t stride_c) {
  gemm_batched_impl(batch, trans_a, trans_b, M, N, K, alpha, A, lda, stride_a, B, ldb, stride_b,
                    beta, C, ldc, stride_c);
}

std::string blas_info() {
  return blas().info;
}

void* blas_symbol(const char* name) {
  void* f = dlsym(blas().handle, name);
  LLMKIT_CHECK(f != nullptr, "gemm: the OpenBLAS in use has no function ", name);
  return f;
}

}  // namespace llmkit::kernels
