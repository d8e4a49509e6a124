// Quantisation of f32 rows into ggml's block formats (the other direction of quant.h's
// dequantize_row): what `llmkit quantize` writes into a GGUF, bit for bit as ggml's reference
// quantisers (quantize_row_*_ref, ggml-quants.c) compute it without an importance matrix, so a
// file we write holds the same bytes llama.cpp's own quantize tool would.
// Plain kernels on raw pointers, one row per call; threading over rows belongs in the caller.
// Not here: the activations' quantisation inside dot products (qmatmul.h), the GGUF container.
#pragma once

#include <cstdint>

#include "llmkit/kernels/cpu/quant.h"

namespace llmkit::kernels {

// Whether quantize_row writes `t`: F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K,
// Q6_K.
bool ggml_can_quantize(GgmlType t);

// dst (ggml_row_size(t, n) bytes, any alignment) = src[0..n) in type t. An Error naming the type
// for types it cannot write, or when n is not a multiple of the block size. NaN or Inf inputs
// are an Error (ggml would write garbage scales).
void quantize_row(GgmlType t, const float* src, void* dst, int64_t n);
// The same bytes computed as ggml's reference code loops: the K-quants' scale searches one
// sub-block at a time (quantize_row runs 4-16 sub-blocks side by side in SIMD lanes, 5-8x faster)
// and Q8_0 one element at a time. Tests and benchmarks compare the two.
void quantize_row_generic(GgmlType t, const float* src, void* dst, int64_t n);

}  // namespace llmkit::kernels
