// Matrix products with quantised weights, the inner loop of quantised inference (sLLM): a
// Linear layer y = W x whose W rows are ggml blocks (Q4_0, Q8_0, Q4_K, ..., or f16 / bf16 / f32).
// Decode (M < 64 tokens) is computed as ggml_mul_mat computes it: each activation row is first
// quantised to the type ggml pairs with the weight type (vec_dot_type: Q8_0, Q8_1 or Q8_K, f16,
// bf16), then every output is the dot product of the two block rows, integer sums scaled per
// block; with AVX-512 VNNI (vpdpbusd) kernels where compiled in (-march=native on a CPU that has
// it), else AVX2 (vpmaddubsw) kernels for the 32-element block types, f16 and f32, else portable
// loops. That product is bound by memory bandwidth: every weight byte is read
// once per token. Prefill (M >= 64) dequantises the weights a chunk of rows at a time and
// multiplies in f32 with OpenBLAS's sgemm, which does more multiply-adds per second here than the
// int8 kernels (the numbers are in qmatmul.cpp and bench/qmatmul.cpp).
// Not here: writing quantised weights (quantize.h), dequantisation (quant.h).
#pragma once

#include <cstddef>
#include <cstdint>

#include "llmkit/kernels/cpu/quant.h"

namespace llmkit::kernels {

// A weight matrix [rows, cols] (PyTorch's nn.Linear layout, [out, in]) stored row by row in ggml
// type `type`: row r starts at data + r * row_bytes(), rows contiguous. Borrowed, not owned.
struct QMatrix {
  GgmlType type = GgmlType::F32;
  int64_t rows = 0, cols = 0;
  const void* data = nullptr;
  size_t row_bytes() const { return ggml_row_size(type, cols); }
  size_t bytes() const { return row_bytes() * static_cast<size_t>(rows); }
  const void* row(int64_t r) const {
    return static_cast<const uint8_t*>(data) + static_cast<size_t>(r) * row_bytes();
  }
};

// Whether qmatmul takes weights of type t: F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K,
// Q5_K, Q6_K.
bool qmatmul_supports(GgmlType t);

// The type ggml quantises the activations to for weight type t: Q8_0 for Q4_0 / Q5_0 / Q8_0,
// Q8_1 for Q4_1 / Q5_1, Q8_K for the K-quants, F16 for F16, BF16 for BF16, F32 for F32.
GgmlType vec_dot_type(GgmlType t);

// dst (ggml_row_size(vec_dot_type(w), n) bytes, 4-byte aligned: Q8_K blocks hold a float and
// int16 sums) = x[0..n) quantised as ggml's
// x86 quantize_row_q8_0 / q8_1 (d = amax / 127 as fp16, q = x * (127 / amax) rounded to nearest
// even; q8_1 adds s = d * sum(q)) and quantize_row_q8_K (iscale = -127 / x_maxabs with x_maxabs
// the signed element of largest magnitude, q = min(127, round(iscale x)), d = 1 / iscale, bsums
// per 16), or converted to f16 / bf16 (round to nearest even), or copied for f32. An Error when
// n is not a multiple of the activation type's block.
void quantize_activations(GgmlType w, const float* x, void* dst, int64_t n);

// The dot product of one weight row w (n elements of type t, any alignment) with activations xq
// (4-byte aligned) already quantised by quantize_activations(t, ...), as
// ggml_vec_dot_<t>_<vec_dot_type(t)>: per block the exact integer sum of products times the two
// scales, summed in float (the order of that float sum differs between the vectorised and the
// portable code: last-bit differences).
float vec_dot(GgmlType t, int64_t n, const void* w, const void* xq);

// The portable code behind the two above, always compiled; quantize_activations writes the same
// bytes with or without vectorised kernels. Tests and benchmarks compare the paths.
void quantize_activations_generic(GgmlType w, const float* x, void* dst, int64_t n);
float vec_dot_generic(GgmlType t, int64_t n, const void* w, const void* xq);
// Whether this build has hand-vectorised qmatmul kernels (AVX-512 VNNI, or AVX2 for some types).
bool qmatmul_is_vectorised();

// Which path a product of many rows takes. kAuto: the 8-bit path below 64 rows, f32 BLAS from 64
// (the faster for prefill). kInt8: the 8-bit path for every M, so each output is one vec_dot
// whatever M is: a row's bits do not depend on the rows multiplied with it (batch-invariant), at
// ~1.5x BLAS's cost for long prompts on an AVX2 CPU (bench/README.md, "Serving").
enum class QPath { kAuto, kInt8 };

// Y[m, r] = sum_k W[r, k] X[m, k] for m < M, r < W.rows: X f32 [M, W.cols] with row stride ldx,
// Y f32 [M, W.rows] with row stride ldy (Y must not overlap X).
// Values: for M < 64 (or path kInt8) each output is exactly vec_dot of its row with the quantised
// activation row (ggml's numbers up to the order of the float sum); for M >= 64 it is the f32
// product of the dequantised weights with the unquantised activations (closer to
// qmatmul_reference).
// Threads: num_threads() over the output rows, only when each thread gets >= ~64 KiB of weights
// (waking a thread costs more than a small product); called inside an OpenMP parallel region it
// runs in the calling thread, so a caller that owns the threads can give each a slice of rows
// (QMatrix{type, n, cols, W.row(r0)}, Y + r0). For M < 64 the bits of each output depend neither
// on the thread count nor on the slicing; for M >= 64 they are the same for the same thread count
// (OpenBLAS may partition a product differently with more threads: seen on an AMD EPYC, where 1
// and 2 threads differ in the last bits, not on the Xeon). Scratch (quantised activations,
// dequantised rows) is held per calling thread and reused (grown, never shrunk): no allocation once
// warm. Errors: types qmatmul does not take, cols not a multiple of the block, M < 0, or ldx / ldy
// below cols / rows (read only when M > 1).
void qmatmul(const QMatrix& W, int64_t M, const float* X, int64_t ldx, float* Y, int64_t ldy,
             QPath path = QPath::kAuto);

// The same with each weight row dequantised to f32 (dequantize_row) and a plain dot with the
// unquantised activations, accumulated in double: the reference the tests hold qmatmul to (the
// difference is the activations' quantisation). Single-threaded and slow.
void qmatmul_reference(const QMatrix& W, int64_t M, const float* X, int64_t ldx, float* Y,
                       int64_t ldy);

}  // namespace llmkit::kernels
