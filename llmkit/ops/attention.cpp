#include "llmkit/ops/attention.h"

#include <cmath>

#include "llmkit/core/autograd.h"
#include "llmkit/kernels/cpu/attention.h"

namespace llmkit::ops {

Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                                    const AttentionOptions& opt) {
  const char* op = "scaled_dot_product_attention";
  LLMKIT_CHECK(q.dim() == 4 && k.dim() == 4 && v.dim() == 4, op, ": want 4-d q, k, v, got ",
               q.str(), ", ", k.str(), ", ", v.str());
  kernels::AttentionShape s{q.size(0), q.size(1), k.size(1),  q.size(2),
                            k.size(2), q.size(3), opt.causal, 0.0};
  LLMKIT_CHECK(k.shape() == v.shape() && k.size(0) == s.B && k.size(3) == s.HS && s.NKV > 0 &&
                   s.NH % s.NKV == 0 && q.dtype() == k.dtype() && q.dtype() == v.dtype(),
               op, ": q ", q.str(), ", k ", k.str(), ", v ", v.str(),
               " do not match (want q [B,NH,Tq,HS], k and v [B,NKV,Tk,HS], NH % NKV == 0)");
  s.scale = opt.scale != 0 ? opt.scale : 1.0 / std::sqrt(static_cast<double>(s.HS));
  if (opt.key_mask.defined())
    LLMKIT_CHECK(opt.key_mask.dtype() == DType::U8 && opt.key_mask.shape() == Shape({s.B, s.Tk}),
                 op, ": key_mask ", opt.key_mask.str(), " must be u8 [", s.B, ", ", s.Tk, "]");
  if (opt.segments.defined())
    LLMKIT_CHECK(opt.segments.dtype() == DType::I32 && opt.segments.shape() == Shape({s.B, s.Tk}) &&
                     s.Tq == s.Tk,
                 op, ": segments ", opt.segments.str(), " must be i32 [", s.B, ", ", s.Tk,
                 "] with as many queries as keys (Tq ", s.Tq, ")");
  if (opt.bias.defined())
    LLMKIT_CHECK(opt.bias.dtype() == q.dtype() && opt.bias.shape() == Shape({s.NH, s.Tq, s.Tk}), op,
                 ": bias ", opt.bias.str(), " must be [", s.NH, ", ", s.Tq, ", ", s.Tk, "]");
  const Tensor qc = q.contiguous().detach(), kc = k.contiguous().detach(),
               vc = v.contiguous().detach();
  const Tensor mask = opt.key_mask.defined() ? opt.key_mask.contiguous() : Tensor();
  const Tensor seg = opt.segments.defined() ? opt.segments.contiguous() : Tensor();
  const Tensor bias = opt.bias.defined() ? opt.bias.contiguous().detach() : Tensor();
  Tensor out = Tensor::empty(q.shape(), q.dtype());
  Tensor lse = Tensor::empty({s.B, s.NH, s.Tq}, q.dtype());
  dispatch_float(q.dtype(), op, [&](auto t) {
    using T = decltype(t);
    kernels::attention_forward(out.data<T>(), lse.data<T>(), qc.data<T>(), kc.data<T>(),
                               vc.data<T>(), mask.defined() ? mask.data<uint8_t>() : nullptr,
                               seg.defined() ? seg.data<int32_t>() : nullptr,
                               bias.defined() ? bias.data<T>() : nullptr, s);
  });
  if (needs_graph({&q, &k, &v, &opt.bias})) {
    const Tensor os = out.detach();
    record(out, "attention", {&q, &k, &v, &opt.bias},
           [qc, kc, vc, os, lse, mask, seg, bias, s](Node& n, const Tensor& dout) {
             dispatch_float(dout.dtype(), "attention", [&](auto t) {
               using T = decltype(t);
               // The kernel computes all of dq, dk, dv; inputs that need none get scratch.
               auto buf = [&](size_t i, const Tensor& like) {
                 return n.needs_grad(i) ? n.grad(i) : Tensor::zeros(like.shape(), like.dtype());
               };
               Tensor dq = buf(0, qc), dk = buf(1, kc), dv = buf(2, vc);
               Tensor db = n.needs_grad(3) ? n.grad(3) : Tensor();
               kernels::attention_backward(
                   dq.data<T>(), dk.data<T>(), dv.data<T>(), db.defined() ? db.data<T>() : nullptr,
                   dout.data<T>(), qc.data<T>(), kc.data<T>(), vc.data<T>(), os.data<T>(),
                   lse.data<T>(), mask.defined() ? mask.data<uint8_t>() : nullptr,
                   seg.defined() ? seg.data<int32_t>() : nullptr,
                   bias.defined() ? bias.data<T>() : nullptr, s);
             });
           });
  }
  return out;
}

Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                                    bool causal) {
  AttentionOptions opt;
  opt.causal = causal;
  return scaled_dot_product_attention(q, k, v, opt);
}

}  // namespace llmkit::ops
