#include "llmkit/ops/matmul.h"

#include "llmkit/core/autograd.h"
#include "llmkit/kernels/cpu/gemm.h"
#include "llmkit/ops/elementwise.h"
#include "llmkit/ops/reduce.h"

namespace llmkit::ops {
namespace {

// How one operand of a batched product is laid out for BLAS: the tensor (maybe a copy), whether
// its matrices are transposed in memory, the leading dimension, and one stride between matrices.
struct Operand {
  Tensor t;
  bool trans = false;
  int64_t ld = 0;
  int64_t batch_stride = 0;
};

// `x` expanded to [batch..., R, C]. Uses x's memory as is when every matrix is row- or
// column-major and the batch dims collapse to a single stride; copies otherwise.
Operand layout(const Tensor& x, int64_t batch) {
  const int64_t n = x.dim();
  const int64_t R = x.shape()[n - 2], C = x.shape()[n - 1];
  const int64_t s0 = x.strides()[n - 2], s1 = x.strides()[n - 1];
  Operand op{x, false, 0, 0};
  bool ok = true;
  if ((s1 == 1 || C == 1) && s0 >= C && (R == 1 || s0 > 0)) {
    op.ld = std::max<int64_t>(s0, std::max<int64_t>(C, 1));
  } else if ((s0 == 1 || R == 1) && s1 >= R && (C == 1 || s1 > 0)) {
    op.trans = true;
    op.ld = std::max<int64_t>(s1, std::max<int64_t>(R, 1));
  } else {
    ok = false;
  }
  // Batch dims must collapse to one stride (all zero = broadcast, or evenly spaced).
  int64_t stride = -1, expect = -1;
  for (int64_t d = n - 3; d >= 0 && ok; --d) {
    if (x.shape()[d] == 1) continue;
    const int64_t s = x.strides()[d];
    if (stride < 0) {
      stride = s;
      expect = s * x.shape()[d];
    } else {
      ok = stride == 0 ? s == 0 : s == expect;
      expect = s * x.shape()[d];
    }
  }
  if (!ok) {
    op.t = x.detach().contiguous();
    op.trans = false;
    op.ld = std::max<int64_t>(C, 1);
    stride = batch > 1 ? R * C : 0;
  }
  op.batch_stride = stride < 0 ? 0 : stride;
  return op;
}

template <typename T>
void batched_product(const Tensor& out, const Operand& a, const Operand& b, int64_t batch,
                     int64_t M, int64_t N, int64_t K) {
  kernels::gemm_batched(batch, a.trans, b.trans, M, N, K, T(1), a.t.data<T>(), a.ld, a.batch_stride,
                        b.t.data<T>(), b.ld, b.batch_stride, T(0), out.data<T>(), N, M * N);
}

Tensor matmul_2plus(const Tensor& a, const Tensor& b) {
  LLMKIT_CHECK(a.dtype() == b.dtype(), "matmul: dtype mismatch ", a.str(), " @ ", b.str());
  const int64_t M = a.size(-2), K = a.size(-1), N = b.size(-1);
  LLMKIT_CHECK(b.size(-2) == K, "matmul: inner dimensions differ in ", a.str(), " @ ", b.str());
  const Shape ab(a.shape().begin(), a.shape().end() - 2),
      bb(b.shape().begin(), b.shape().end() - 2);
  Shape batch_shape = broadcast_shape(ab, bb, "matmul");
  const int64_t batch = shape_numel(batch_shape);
  Shape out_shape = batch_shape;
  out_shape.push_back(M);
  out_shape.push_back(N);
  Tensor out = Tensor::empty(out_shape, a.dtype());

  Shape ea = batch_shape, eb = batch_shape;
  ea.insert(ea.end(), {M, K});
  eb.insert(eb.end(), {K, N});
  const Tensor ad = a.detach(), bd = b.detach();
  if (b.dim() == 2 && a.dim() > 2 && a.is_contiguous()) {  // fold the batch into M: one GEMM
    const Operand oa{ad, false, K, 0}, ob = layout(bd, 1);
    dispatch_float(a.dtype(), "matmul",
                   [&](auto t) { batched_product<decltype(t)>(out, oa, ob, 1, batch * M, N, K); });
  } else {
    const Operand oa = layout(ad.expand(ea), batch), ob = layout(bd.expand(eb), batch);
    dispatch_float(a.dtype(), "matmul",
                   [&](auto t) { batched_product<decltype(t)>(out, oa, ob, batch, M, N, K); });
  }
  if (needs_graph({&a, &b})) {
    record(out, "matmul", {&a, &b}, [ad, bd](Node& n, const Tensor& dout) {
      NoGradGuard ng;
      if (n.needs_grad(0)) n.accumulate(0, sum_to(matmul(dout, bd.transpose(-1, -2)), ad.shape()));
      if (n.needs_grad(1)) {
        if (bd.dim() == 2) {  // weights shared by the whole batch: one GEMM over all rows
          const int64_t K = ad.size(-1), N = dout.size(-1);
          n.accumulate(1, matmul(ad.reshape({-1, K}).transpose(0, 1), dout.reshape({-1, N})));
        } else {
          n.accumulate(1, sum_to(matmul(ad.transpose(-1, -2), dout), bd.shape()));
        }
      }
    });
  }
  return out;
}

}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b) {
  LLMKIT_CHECK(a.dim() >= 1 && b.dim() >= 1, "matmul: scalar operand in ", a.str(), " @ ", b.str());
  if (a.dim() == 1) return matmul_2plus(a.unsqueeze(0), b).squeeze(-2);
  if (b.dim() == 1) return matmul_2plus(a, b.unsqueeze(1)).squeeze(-1);
  return matmul_2plus(a, b);
}

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  LLMKIT_CHECK(weight.dim() == 2 && x.dim() >= 1 && x.size(-1) == weight.size(1), "linear: input ",
               x.str(), " does not match weight ", weight.str(), " ([out, in])");
  LLMKIT_CHECK(x.dtype() == weight.dtype(), "linear: dtype mismatch ", x.str(), " and ",
               weight.str());
  const int64_t in = weight.size(1), outf = weight.size(0),
                rows = x.numel() / std::max<int64_t>(in, 1);
  LLMKIT_CHECK(!bias.defined() || (bias.dim() == 1 && bias.size(0) == outf), "linear: bias ",
               bias.defined() ? bias.str() : "", " does not match weight ", weight.str());
  Shape out_shape = x.shape();
  out_shape.back() = outf;
  const Tensor xc = x.contiguous().detach(), wc = weight.contiguous().detach();
  const Tensor bc = bias.defined() ? bias.contiguous().detach() : Tensor();
  Tensor out = Tensor::empty(out_shape, x.dtype());
  dispatch_float(x.dtype(), "linear", [&](auto tag) {
    using T = decltype(tag);
    T* y = out.data<T>();
    if (bc.defined()) {
      const T* pb = bc.data<T>();
      for (int64_t r = 0; r < rows; ++r) std::copy(pb, pb + outf, y + r * outf);
    }
    kernels::gemm(false, true, rows, outf, in, T(1), xc.data<T>(), in, wc.data<T>(), in,
                  T(bc.defined() ? 1 : 0), y, outf);
  });
  if (needs_graph({&x, &weight, &bias})) {
    record(out, "linear", {&x, &weight, &bias},
           [xc, wc, rows, in, outf](Node& n, const Tensor& dout) {
             dispatch_float(dout.dtype(), "linear", [&](auto tag) {
               using T = decltype(tag);
               const T* dy = dout.data<T>();
               bool fresh = false;
               if (n.needs_grad(0)) {  // dx [rows, in] = dy [rows, out] @ W [out, in]
                 Tensor g = n.grad_buffer(0, &fresh);
                 kernels::gemm(false, false, rows, in, outf, T(1), dy, outf, wc.data<T>(), in,
                               T(fresh ? 0 : 1), g.data<T>(), in);
               }
               if (n.needs_grad(1)) {  // dW [out, in] += dy^T [out, rows] @ x [rows, in]
                 Tensor g = n.grad_buffer(1, &fresh);
                 kernels::gemm(true, false, outf, in, rows, T(1), dy, outf, xc.data<T>(), in,
                               T(fresh ? 0 : 1), g.data<T>(), in);
               }
               if (n.needs_grad(2)) n.accumulate(2, sum(dout.reshape({rows, outf}), {0}));
             });
           });
  }
  return out;
}

}  // namespace llmkit::ops
