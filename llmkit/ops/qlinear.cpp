// ops::qlinear: forward through kernels::qmatmul, backward to the input only (the weight is
// frozen). The backward's dx = dy W is computed a band of rows of W at a time, each band
// dequantised into a scratch buffer of kBand x in floats and multiplied with sgemm, so a
// quantised layer never exists whole in f32 (QLoRA's point: the base stays 4-bit in memory).
#include "llmkit/ops/qlinear.h"

#include <algorithm>
#include <vector>

#include "llmkit/core/autograd.h"
#include "llmkit/core/error.h"
#include "llmkit/kernels/cpu/gemm.h"
#include "llmkit/ops/reduce.h"

namespace llmkit::ops {

namespace {
constexpr int64_t kBand = 256;  // weight rows dequantised per backward GEMM (256 x in floats)
}

Tensor qlinear(const Tensor& x, const kernels::QMatrix& W, const Tensor& bias) {
  LLMKIT_CHECK(x.dtype() == DType::F32, "qlinear: input ", x.str(), " must be f32");
  LLMKIT_CHECK(x.dim() >= 1 && x.size(-1) == W.cols, "qlinear: input ", x.str(),
               " does not match the weight's ", W.cols, " columns");
  LLMKIT_CHECK(!bias.defined() || (bias.dim() == 1 && bias.size(0) == W.rows), "qlinear: bias ",
               bias.defined() ? bias.str() : "", " does not match the weight's ", W.rows, " rows");
  const int64_t in = W.cols, outf = W.rows, rows = x.numel() / std::max<int64_t>(in, 1);
  Shape out_shape = x.shape();
  out_shape.back() = outf;
  const Tensor xc = x.contiguous().detach();
  Tensor out = Tensor::empty(out_shape, DType::F32);
  float* y = out.data<float>();
  kernels::qmatmul(W, rows, xc.data<float>(), in, y, outf);
  if (bias.defined()) {
    const Tensor bc = bias.contiguous().detach();
    const float* pb = bc.data<float>();
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t o = 0; o < outf; ++o) y[r * outf + o] += pb[o];
  }
  if (needs_graph({&x, &bias})) {
    record(out, "qlinear", {&x, &bias}, [W, rows, in, outf](Node& n, const Tensor& dout) {
      const float* dy = dout.data<float>();
      if (n.needs_grad(0)) {  // dx [rows, in] = sum over bands: dy[:, band] @ W[band, :]
        bool fresh = false;
        Tensor g = n.grad_buffer(0, &fresh);
        std::vector<float> band(static_cast<size_t>(std::min(kBand, outf) * in));
        for (int64_t r0 = 0; r0 < outf; r0 += kBand) {
          const int64_t nr = std::min(kBand, outf - r0);
          for (int64_t r = 0; r < nr; ++r)
            kernels::dequantize_row(W.type, W.row(r0 + r), band.data() + r * in, in);
          kernels::gemm(false, false, rows, in, nr, 1.0f, dy + r0, outf, band.data(), in,
                        (fresh && r0 == 0) ? 0.0f : 1.0f, g.data<float>(), in);
        }
      }
      if (n.needs_grad(1)) n.accumulate(1, sum(dout.reshape({rows, outf}), {0}));
    });
  }
  return out;
}

}  // namespace llmkit::ops
