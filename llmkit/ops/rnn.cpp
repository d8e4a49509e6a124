#include "llmkit/ops/rnn.h"

#include "llmkit/core/autograd.h"
#include "llmkit/kernels/cpu/rnn.h"

namespace llmkit::ops {
namespace {

// Checks gx, gh [B, G*H] and state [B, H] agree; returns H.
int64_t check_cell(const char* op, int64_t gates, const Tensor& gx, const Tensor& gh,
                   const Tensor& state) {
  LLMKIT_CHECK(state.dim() == 2, op, ": state ", state.str(), " must be [B, H]");
  const int64_t B = state.size(0), H = state.size(1);
  for (const Tensor* g : {&gx, &gh})
    LLMKIT_CHECK(g->dim() == 2 && g->size(0) == B && g->size(1) == gates * H, op, ": gates ",
                 g->str(), " do not match state ", state.str(), " (need [B, ", gates, "H] = [", B,
                 ", ", gates * H, "])");
  LLMKIT_CHECK(gx.dtype() == state.dtype() && gh.dtype() == state.dtype(), op, ": dtype mismatch ",
               gx.str(), ", ", gh.str(), ", ", state.str());
  return H;
}

}  // namespace

LSTMCellOutput lstm_cell(const Tensor& gx, const Tensor& gh, const Tensor& c_prev) {
  const int64_t H = check_cell("lstm_cell", 4, gx, gh, c_prev), B = c_prev.size(0);
  const Tensor x = gx.contiguous().detach(), y = gh.contiguous().detach();
  const Tensor cp = c_prev.contiguous().detach();
  Tensor hc = Tensor::empty({2, B, H}, c_prev.dtype());
  Tensor act = Tensor::empty({B, 4 * H}, c_prev.dtype());
  dispatch_float(c_prev.dtype(), "lstm_cell", [&](auto tag) {
    using T = decltype(tag);
    kernels::lstm_cell_forward(hc.data<T>(), hc.data<T>() + B * H, act.data<T>(), x.data<T>(),
                               y.data<T>(), cp.data<T>(), B, H);
  });
  if (needs_graph({&gx, &gh, &c_prev})) {
    const Tensor c = hc.detach().select(0, 1);
    record(hc, "lstm_cell", {&gx, &gh, &c_prev}, [act, c, cp, B, H](Node& n, const Tensor& dout) {
      dispatch_float(dout.dtype(), "lstm_cell", [&](auto tag) {
        using T = decltype(tag);
        // The pre-activation gradient is both dgx and dgh: write it once, then add it where needed.
        bool fresh = false;
        Tensor da = n.needs_grad(0) ? n.grad_buffer(0, &fresh) : Tensor();
        const bool direct = fresh;
        if (!direct) da = Tensor::empty({B, 4 * H}, dout.dtype());
        Tensor dcp = n.needs_grad(2) ? n.grad(2) : Tensor();
        kernels::lstm_cell_backward(da.data<T>(), dcp.defined() ? dcp.data<T>() : nullptr,
                                    dout.data<T>(), dout.data<T>() + B * H, act.data<T>(),
                                    c.data<T>(), cp.data<T>(), B, H);
        if (!direct) n.accumulate(0, da);
        n.accumulate(1, da);
      });
    });
  }
  return {hc.select(0, 0), hc.select(0, 1)};
}

Tensor gru_cell(const Tensor& gx, const Tensor& gh, const Tensor& h_prev) {
  const int64_t H = check_cell("gru_cell", 3, gx, gh, h_prev), B = h_prev.size(0);
  const Tensor x = gx.contiguous().detach(), y = gh.contiguous().detach();
  const Tensor hp = h_prev.contiguous().detach();
  Tensor h = Tensor::empty({B, H}, h_prev.dtype());
  Tensor act = Tensor::empty({B, 3 * H}, h_prev.dtype());
  dispatch_float(h_prev.dtype(), "gru_cell", [&](auto tag) {
    using T = decltype(tag);
    kernels::gru_cell_forward(h.data<T>(), act.data<T>(), x.data<T>(), y.data<T>(), hp.data<T>(), B,
                              H);
  });
  if (needs_graph({&gx, &gh, &h_prev}))
    record(h, "gru_cell", {&gx, &gh, &h_prev}, [act, y, hp, B, H](Node& n, const Tensor& dh) {
      dispatch_float(dh.dtype(), "gru_cell", [&](auto tag) {
        using T = decltype(tag);
        Tensor dgx = Tensor::empty({B, 3 * H}, dh.dtype()),
               dgh = Tensor::empty({B, 3 * H}, dh.dtype());
        Tensor dhp = n.needs_grad(2) ? n.grad(2) : Tensor();
        kernels::gru_cell_backward(dgx.data<T>(), dgh.data<T>(),
                                   dhp.defined() ? dhp.data<T>() : nullptr, dh.data<T>(),
                                   act.data<T>(), y.data<T>(), hp.data<T>(), B, H);
        n.accumulate(0, dgx);
        n.accumulate(1, dgh);
      });
    });
  return h;
}

}  // namespace llmkit::ops
