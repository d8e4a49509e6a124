// kernels::gemm / gemm_batched against a naive double-precision reference kept here (not in the
// library): every transpose combination, odd sizes, padded leading dimensions, alpha/beta, the
// degenerate sizes, broadcast batches on both batched code paths, float and double; and that
// blas_info() names the OpenBLAS kernels in use.
#include "llmkit/kernels/cpu/gemm.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <limits>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "llmkit/core/error.h"
#include "llmkit/core/parallel.h"

namespace llmkit::kernels {
namespace {

// C[M,N] = alpha * op(A) op(B) + beta * C in double, same storage conventions as kernels::gemm.
// Also returns, per element, sum_k |alpha a b| + |beta c| for the rounding-error bound.
template <typename T>
void reference_gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, double alpha,
                    const std::vector<T>& A, int64_t lda, const std::vector<T>& B, int64_t ldb,
                    double beta, const std::vector<T>& C0, int64_t ldc, std::vector<double>& C,
                    std::vector<double>& magnitude) {
  C.assign(C0.begin(), C0.end());
  magnitude.assign(C0.size(), 0.0);
  for (int64_t i = 0; i < M; ++i) {
    for (int64_t j = 0; j < N; ++j) {
      double sum = 0, mag = 0;
      for (int64_t k = 0; k < K; ++k) {
        const double a = trans_a ? A[k * lda + i] : A[i * lda + k];
        const double b = trans_b ? B[j * ldb + k] : B[k * ldb + j];
        sum += a * b;
        mag += std::abs(a * b);
      }
      const double c = C0[i * ldc + j];
      C[i * ldc + j] = alpha * sum + (beta == 0 ? 0.0 : beta * c);
      magnitude[i * ldc + j] = std::abs(alpha) * mag + std::abs(beta * c);
    }
  }
}

template <typename T>
std::vector<T> random_matrix(int64_t rows, int64_t ld, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> dist(-1.0, 1.0);
  std::vector<T> m(rows * ld);
  for (auto& x : m) x = T(dist(rng));
  return m;
}

// Runs kernels::gemm on random data with row strides padded by `pad` and compares every element
// of C, padding included (it must be untouched), against the reference within a K-scaled bound.
template <typename T>
void check_gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, double alpha,
                double beta, int64_t pad) {
  const int64_t lda = (trans_a ? M : K) + pad, ldb = (trans_b ? K : N) + pad, ldc = N + pad;
  const auto A = random_matrix<T>(trans_a ? K : M, lda, 1);
  const auto B = random_matrix<T>(trans_b ? N : K, ldb, 2);
  const auto C0 = random_matrix<T>(M, ldc, 3);
  std::vector<T> C = C0;
  gemm(trans_a, trans_b, M, N, K, T(alpha), A.data(), lda, B.data(), ldb, T(beta), C.data(), ldc);
  std::vector<double> ref, mag;
  reference_gemm(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C0, ldc, ref, mag);
  const double eps = std::numeric_limits<T>::epsilon();
  for (size_t e = 0; e < C.size(); ++e) {
    const double tol = 2 * eps * double(K + 2) * mag[e] + 1e-30;
    ASSERT_NEAR(double(C[e]), ref[e], tol)
        << "trans_a=" << trans_a << " trans_b=" << trans_b << " M=" << M << " N=" << N << " K=" << K
        << " at row " << int64_t(e) / ldc << " col " << int64_t(e) % ldc;
  }
}

template <typename T>
void check_all_shapes() {
  const int64_t sizes[] = {1, 7, 33, 129};
  for (bool ta : {false, true})
    for (bool tb : {false, true})
      for (int64_t M : sizes)
        for (int64_t N : sizes)
          for (int64_t K : sizes) check_gemm<T>(ta, tb, M, N, K, 0.75, -0.5, (M + N + K) % 5);
}

TEST(Gemm, FloatAllTransposesOddSizesPaddedStrides) {
  check_all_shapes<float>();
}

TEST(Gemm, DoubleAllTransposesOddSizesPaddedStrides) {
  check_all_shapes<double>();
}

TEST(Gemm, AlphaBetaVariants) {
  for (auto [alpha, beta] : {std::pair{1.0, 0.0}, {1.0, 1.0}, {0.0, 2.0}, {-2.5, 0.25}}) {
    check_gemm<float>(false, true, 65, 47, 80, alpha, beta, 3);
    check_gemm<double>(true, false, 65, 47, 80, alpha, beta, 3);
  }
}

TEST(Gemm, LargeEnoughToThread) {
  check_gemm<float>(false, false, 300, 260, 270, 1.0, 0.0, 1);
  check_gemm<float>(true, false, 260, 300, 270, 1.0, 1.0, 0);
}

TEST(Gemm, BetaZeroDoesNotReadC) {
  const float A[6] = {1, 2, 3, 4, 5, 6}, B[6] = {1, 0, 0, 1, 1, 1};  // A [2,3], B [3,2]
  float C[4];
  for (float& c : C) c = std::numeric_limits<float>::quiet_NaN();
  gemm(false, false, 2, 2, 3, 1.0f, A, 3, B, 2, 0.0f, C, 2);
  EXPECT_FLOAT_EQ(C[0], 4);
  EXPECT_FLOAT_EQ(C[1], 5);
  EXPECT_FLOAT_EQ(C[2], 10);
  EXPECT_FLOAT_EQ(C[3], 11);
}

TEST(Gemm, KZeroScalesC) {
  std::vector<float> C = {1, 2, 3, 99, 4, 5, 6, 99};  // [2,3], ldc 4; column 3 is padding
  gemm(false, false, 2, 3, 0, 1.0f, nullptr, 1, nullptr, 3, 2.0f, C.data(), 4);
  EXPECT_EQ(C, (std::vector<float>{2, 4, 6, 99, 8, 10, 12, 99}));
  std::vector<double> D = {1, std::numeric_limits<double>::quiet_NaN(), 3, 4};
  gemm(true, true, 2, 2, 0, 1.0, nullptr, 2, nullptr, 1, 0.0, D.data(), 2);
  EXPECT_EQ(D, (std::vector<double>{0, 0, 0, 0}));
}

TEST(Gemm, EmptyOutputTouchesNothing) {
  // Null pointers are fine when there is nothing to compute...
  EXPECT_NO_THROW(gemm(false, false, 0, 5, 3, 1.0f, nullptr, 3, nullptr, 5, 0.0f, nullptr, 5));
  EXPECT_NO_THROW(gemm(false, false, 4, 0, 3, 1.0, nullptr, 3, nullptr, 1, 0.0, nullptr, 1));
  EXPECT_NO_THROW(gemm_batched(0, false, false, 4, 4, 4, 1.0f, nullptr, 4, 16, nullptr, 4, 16, 0.0f,
                               nullptr, 4, 16));
  // ...and with real buffers an empty output leaves every element as it was (beta 0 would
  // otherwise zero C, a stray write would change the sentinels).
  const std::vector<float> A(64, 1.0f), B(64, 1.0f), C0(64, 42.0f);
  std::vector<float> C = C0;
  gemm(false, false, 0, 5, 3, 1.0f, A.data(), 3, B.data(), 5, 0.0f, C.data(), 5);
  EXPECT_EQ(C, C0) << "M = 0";
  gemm(false, false, 4, 0, 3, 1.0f, A.data(), 3, B.data(), 1, 0.0f, C.data(), 1);
  EXPECT_EQ(C, C0) << "N = 0";
  gemm_batched(0, false, false, 4, 4, 4, 1.0f, A.data(), 4, 16, B.data(), 4, 16, 0.0f, C.data(), 4,
               16);
  EXPECT_EQ(C, C0) << "batch = 0";
}

TEST(Gemm, RejectsBadStrides) {
  std::vector<float> A(64), B(64), C(64);
  EXPECT_THROW(gemm(false, false, 4, 4, 5, 1.0f, A.data(), 4, B.data(), 4, 0.0f, C.data(), 4),
               Error);  // lda < K
  EXPECT_THROW(gemm(true, false, 5, 4, 4, 1.0f, A.data(), 4, B.data(), 4, 0.0f, C.data(), 5),
               Error);  // trans_a: lda < M
  EXPECT_THROW(gemm(false, true, 4, 4, 5, 1.0f, A.data(), 5, B.data(), 4, 0.0f, C.data(), 4),
               Error);  // trans_b: ldb < K
  EXPECT_THROW(gemm(false, false, 4, 5, 4, 1.0f, A.data(), 4, B.data(), 5, 0.0f, C.data(), 4),
               Error);  // ldc < N
  EXPECT_THROW(gemm(false, false, -1, 4, 4, 1.0f, A.data(), 4, B.data(), 4, 0.0f, C.data(), 4),
               Error);
  EXPECT_THROW(gemm_batched(2, false, false, 2, 2, 2, 1.0f, A.data(), 2, 4, B.data(), 2, 4, 0.0f,
                            C.data(), 2, 0),
               Error);  // stride_c == 0
}

// Batched products against per-matrix reference products; stride_a or stride_b == 0 broadcasts.
template <typename T>
void check_batched(int64_t batch, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
                   bool broadcast_a, bool broadcast_b) {
  const int64_t lda = (trans_a ? M : K) + 1, ldb = (trans_b ? K : N) + 2, ldc = N + 1;
  const int64_t a_size = (trans_a ? K : M) * lda, b_size = (trans_b ? N : K) * ldb;
  const int64_t c_size = M * ldc;
  const int64_t stride_a = broadcast_a ? 0 : a_size, stride_b = broadcast_b ? 0 : b_size;
  const auto A = random_matrix<T>(broadcast_a ? 1 : batch, a_size, 4);
  const auto B = random_matrix<T>(broadcast_b ? 1 : batch, b_size, 5);
  const auto C0 = random_matrix<T>(batch, c_size, 6);
  std::vector<T> C = C0;
  gemm_batched(batch, trans_a, trans_b, M, N, K, T(0.5), A.data(), lda, stride_a, B.data(), ldb,
               stride_b, T(1.5), C.data(), ldc, c_size);
  const double eps = std::numeric_limits<T>::epsilon();
  for (int64_t i = 0; i < batch; ++i) {
    auto slice = [](const std::vector<T>& v, int64_t start, int64_t n) {
      return std::vector<T>(v.begin() + start, v.begin() + start + n);
    };
    std::vector<double> ref, mag;
    reference_gemm(trans_a, trans_b, M, N, K, 0.5, slice(A, i * stride_a, a_size), lda,
                   slice(B, i * stride_b, b_size), ldb, 1.5, slice(C0, i * c_size, c_size), ldc,
                   ref, mag);
    for (int64_t e = 0; e < c_size; ++e)
      ASSERT_NEAR(double(C[i * c_size + e]), ref[e], 2 * eps * double(K + 2) * mag[e] + 1e-30)
          << "batch item " << i << " element " << e;
  }
}

TEST(GemmBatched, SmallProductsParallelOverBatch) {
  check_batched<float>(7, false, true, 17, 9, 33, false, false);
  check_batched<float>(6, true, false, 16, 16, 64, true, false);   // A broadcast
  check_batched<double>(5, false, false, 13, 21, 8, false, true);  // B broadcast
  check_batched<double>(3, true, true, 33, 7, 5, false, false);
}

TEST(GemmBatched, LargeProductsOneAfterAnother) {
  // 2*M*N*K = 2^29 flops per product, above the parallel-over-batch threshold.
  check_batched<float>(2, false, true, 512, 256, 1024, false, true);
}

TEST(GemmBatched, SameResultWithOneThread) {
  const int saved = num_threads();
  set_num_threads(1);
  check_batched<float>(4, false, false, 31, 17, 19, false, false);
  check_gemm<float>(false, false, 200, 190, 180, 1.0, 0.5, 2);
  set_num_threads(saved);
  check_gemm<float>(false, false, 200, 190, 180, 1.0, 0.5, 2);
}

TEST(Gemm, BlasInfoNamesKernels) {
  const std::string info = blas_info();
  std::cout << "blas_info: " << info << "\n";
  EXPECT_EQ(info.rfind("OpenBLAS ", 0), 0u) << info;
  EXPECT_NE(info.find(" kernels"), std::string::npos) << info;
  // The Debian package we load by absolute path is the OpenMP build.
  EXPECT_NE(info.find("OpenMP"), std::string::npos) << info;
  if (const char* forced = std::getenv("LLMKIT_OPENBLAS_CORETYPE"); forced && *forced) {
    // OpenBLAS may canonicalise the user's spelling: the kernel name is not checked.
    GTEST_SKIP() << "LLMKIT_OPENBLAS_CORETYPE=" << forced << ": kernel name not checked";
  }
#if defined(__x86_64__)
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq")) {
    EXPECT_NE(info.find("SkylakeX kernels"), std::string::npos)
        << info << " (AVX-512 CPU: expected the SkylakeX kernels whatever OPENBLAS_CORETYPE says)";
  }
#endif
}

}  // namespace
}  // namespace llmkit::kernels
