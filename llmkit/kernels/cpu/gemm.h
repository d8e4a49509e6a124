// Dense matrix products on the CPU, computed by OpenBLAS (the OpenMP build, so BLAS and our own
// OpenMP loops share libgomp's threads). Not a GEMM of our own: at our shapes OpenBLAS's AVX-512
// kernels reach ~90% of the machine's peak and neither BLIS nor a hand kernel did better
// (bench/gemm.cpp measures all three side by side).
//
// OpenBLAS is dlopen()ed on first use rather than linked: it picks its kernels in a library
// constructor from OPENBLAS_CORETYPE, and environments that preset OPENBLAS_CORETYPE=Haswell would
// otherwise silently halve fp32 throughput on AVX-512 machines. See gemm.cpp for the rule.
#pragma once

#include <cstdint>
#include <string>

namespace llmkit::kernels {

// C[M,N] = alpha * op(A)[M,K] * op(B)[K,N] + beta * C[M,N], all row-major; lda/ldb/ldc are row
// strides in elements. A is stored [M,K] (lda >= K), or [K,M] when trans_a (lda >= M); B is stored
// [K,N] (ldb >= N), or [N,K] when trans_b (ldb >= K); ldc >= N. Arguments follow the BLAS order
// (not outputs-first) so call sites read like the cblas calls they replace.
//
// Contract: beta == 0 overwrites C without reading it (NaNs in C do not propagate); K == 0 gives
// C = beta * C; M == 0 or N == 0 does nothing. C must not overlap A or B. Sizes and strides must
// fit in 32 bits (LP64 BLAS). Bad sizes raise llmkit::Error naming them.
// Threads: uses llmkit::num_threads() threads; called inside an OpenMP parallel region it runs
// single-threaded in the calling thread. Do not call it concurrently from several non-OpenMP
// threads (the Debian OpenBLAS OpenMP build supports one parallel caller at a time).
// The first call loads OpenBLAS and raises llmkit::Error, naming the path and the Debian package
// to install, when it cannot be loaded.
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
          int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc);
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, double alpha,
          const double* A, int64_t lda, const double* B, int64_t ldb, double beta, double* C,
          int64_t ldc);

// `batch` independent products C_i = alpha * op(A_i) * op(B_i) + beta * C_i with
// A_i = A + i * stride_a (likewise B, C), strides in elements. stride_a or stride_b == 0
// broadcasts one matrix to every product; the C_i must not overlap (stride_c == 0 is rejected when
// batch > 1). Small products run in parallel over the batch, one thread each; large ones run one
// after another with BLAS threading each (the switch point was measured, see gemm.cpp).
void gemm_batched(int64_t batch, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
                  float alpha, const float* A, int64_t lda, int64_t stride_a, const float* B,
                  int64_t ldb, int64_t stride_b, float beta, float* C, int64_t ldc,
                  int64_t stride_c);
void gemm_batched(int64_t batch, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
                  double alpha, const double* A, int64_t lda, int64_t stride_a, const double* B,
                  int64_t ldb, int64_t stride_b, double beta, double* C, int64_t ldc,
                  int64_t stride_c);

// The BLAS in use, for logs and benchmarks, e.g. "OpenBLAS 0.3.21 OpenMP, SkylakeX kernels".
// Loads OpenBLAS if not yet loaded (and so may raise llmkit::Error like gemm).
std::string blas_info();

// The address of `name` (a BLAS or LAPACK function, e.g. "sgemm_") in the OpenBLAS that gemm
// uses, loading it if not yet loaded; an Error when OpenBLAS lacks it. For libraries linked into
// llmkit that call BLAS themselves (FAISS: llmkit/retrieval/faiss_blas.cpp), so that they run on
// the same OpenBLAS with the same kernels instead of linking a second copy.
void* blas_symbol(const char* name);

}  // namespace llmkit::kernels
