// The BLAS and LAPACK functions that Debian's static libfaiss calls (the Fortran interface:
// every argument a pointer), defined here as forwarders to the OpenBLAS that llmkit loads at run
// time (kernels::blas_symbol). Linking libopenblas instead would load it before main() with the
// environment's OPENBLAS_CORETYPE (often Haswell: half speed on AVX-512) and defeat gemm.cpp's
// choice of kernels; this way FAISS and llmkit share one OpenBLAS. The HNSW search and add paths
// do not call BLAS; FAISS's flat search of many queries, PCA and clustering do.
// The list is `nm -u libfaiss.a | grep '_$'` for FAISS 1.7.3; a missing one fails the link.
#include "llmkit/kernels/cpu/gemm.h"

namespace {

// Calls the function at `fn` with the caller's pointer arguments.
template <typename... P>
int forward(void* fn, P... args) {
  return reinterpret_cast<int (*)(P...)>(fn)(args...);
}

}  // namespace

extern "C" {

int sgemm_(void* a0, void* a1, void* a2, void* a3, void* a4, void* a5, void* a6, void* a7, void* a8,
           void* a9, void* a10, void* a11, void* a12) {
  // Looked up once (a function-local static is initialised thread-safely).
  static void* const fn = llmkit::kernels::blas_symbol("sgemm_");
  return forward(fn, a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12);
}

int dgemm_(void* a0, void* a1, void* a2, void* a3, void* a4, void* a5, void* a6, void* a7, void* a8,
           void* a9, void* a10, void* a11, void* a12) {
  // Looked up once (a function-local static is initialised thread-safely).
  static void* const fn = llmkit::kernels::blas_symbol("dgemm_");
  return forward(fn, a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12);
}

int ssyrk_(void* a0, void* a1, void* a2, void* a3, void* a4, void* a5, void* a6, void* a7, void* a8,
           void* a9) {
  // Looked up once (a function-local static is initialised thread-safely).
  static void* const fn = llmkit::kernels::blas_symbol("ssyrk_");
  return forward(fn, a0, a1, a2, a3, a4, a5, a6, a7, a8, a9);
}

int sgesvd_(void* a0, void* a1, void* a2, void* a3, void* a4, void* a5, void* a6, void* a7,
            void* a8, void* a9, void* a10, void* a11, void* a12, void* a13) {
  // Looked up once (a function-local static is initialised thread-safely).
  static void* const fn = llmkit::kernels::blas_symbol("sgesvd_");
  return forward(fn, a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13);
}

int dgesvd_(void* a0, void* a1, void* a2, void* a3, void* a4, void* a5, void* a6, void* a7,
            void* a8, void* a9, void* a10, void* a11, void* a12, void* a13) {
  // Looked up once (a function-local static is initialised thread-safely).
  static void* const fn = llmkit::kernels::blas_symbol("dgesvd_");
  return forward(fn, a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13);
}

int sgetrf_(void* a0, void* a1, void* a2, void* a3, void* a4, void* a5) {
  // Looked up once (a function-local static is initialised thread-safely).
  static void* const fn = llmkit::kernels::blas_symbol("sgetrf_");
  return forward(fn, a0, a1, a2, a3, a4, a5);
}

int dgetrf_(void* a0, void* a1, void* a2, void* a3, void* a4, void* a5) {
  // Looked up once (a function-local static is initialised thread-safely).
  static void* const fn = llmkit::kernels::blas_symbol("dgetrf_");
  return forward(fn, a0, a1, a2, a3, a4, a5);
}

int sgetri_(void* a0, void* a1, void* a2, void* a3, void* a4, void* a5, void* a6) {
  // Looked up once (a function-local static is initialised thread-safely).
  static void* const fn = llmkit::kernels::blas_symbol("sgetri_");
  return forward(fn, a0, a1, a2, a3, a4, a5, a6);
}

int dgetri_(void* a0, void* a1, void* a2, void* a3, void* a4, void* a5, void* a6) {
  // Looked up once (a function-local static is initialised thread-safely).
  static void* const fn = llmkit::kernels::blas_symbol("dgetri_");
  return forward(fn, a0, a1, a2, a3, a4, a5, a6);
}

int dsyev_(void* a0, void* a1, void* a2, void* a3, void* a4, void* a5, void* a6, void* a7,
           void* a8) {
  // Looked up once (a function-local static is initialised thread-safely).
  static void* const fn = llmkit::kernels::blas_symbol("dsyev_");
  return forward(fn, a0, a1, a2, a3, a4, a5, a6, a7, a8);
}

int sgelsd_(void* a0, void* a1, void* a2, void* a3, void* a4, void* a5, void* a6, void* a7,
            void* a8, void* a9, void* a10, void* a11, void* a12, void* a13) {
  // Looked up once (a function-local static is initialised thread-safely).
  static void* const fn = llmkit::kernels::blas_symbol("sgelsd_");
  return forward(fn, a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13);
}

int sgeqrf_(void* a0, void* a1, void* a2, void* a3, void* a4, void* a5, void* a6, void* a7) {
  // Looked up once (a function-local static is initialised thread-safely).
  static void* const fn = llmkit::kernels::blas_symbol("sgeqrf_");
  return forward(fn, a0, a1, a2, a3, a4, a5, a6, a7);
}

int sorgqr_(void* a0, void* a1, void* a2, void* a3, void* a4, void* a5, void* a6, void* a7,
            void* a8) {
  // Looked up once (a function-local static is initialised thread-safely).
  static void* const fn = llmkit::kernels::blas_symbol("sorgqr_");
  return forward(fn, a0, a1, a2, a3, a4, a5, a6, a7, a8);
}

}  // extern "C"
