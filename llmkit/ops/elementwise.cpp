// Binary ops run one strided loop over the broadcast output (zero strides stand for stretched
// dims), with a flat fast path when both inputs are contiguous and of one shape. Unary ops work
// on a contiguous copy of the input.
#include "llmkit/ops/elementwise.h"

#include <algorithm>
#include <cmath>

#include "llmkit/core/autograd.h"
#include "llmkit/core/strided.h"
#include "llmkit/ops/reduce.h"

namespace llmkit::ops {
namespace {

// Max / Min pick a on ties; GeMask / LeMask are 1 where Max / Min picked a (their backward),
// never recorded in the graph.
enum class BinOp { Add, Sub, Mul, Div, Max, Min, GeMask, LeMask };
const char* bin_name(BinOp op) {
  switch (op) {
    case BinOp::Max:
      return "maximum";
    case BinOp::Min:
      return "minimum";
    case BinOp::GeMask:
      return "maximum_mask";
    case BinOp::LeMask:
      return "minimum_mask";
    case BinOp::Add:
      return "add";
    case BinOp::Sub:
      return "sub";
    case BinOp::Mul:
      return "mul";
    case BinOp::Div:
      return "div";
  }
  return "?";
}

template <BinOp op, typename T>
inline T apply(T a, T b) {
  if constexpr (op == BinOp::Add) return a + b;
  if constexpr (op == BinOp::Sub) return a - b;
  if constexpr (op == BinOp::Mul) return a * b;
  if constexpr (op == BinOp::Div) return a / b;
  // A NaN in either input gives NaN (a != a tests a for NaN; a NaN b fails a >= b), as torch.
  if constexpr (op == BinOp::Max) return a >= b || a != a ? a : b;
  if constexpr (op == BinOp::Min) return a <= b || a != a ? a : b;
  if constexpr (op == BinOp::GeMask) return a >= b || a != a ? T(1) : T(0);
  if constexpr (op == BinOp::LeMask) return a <= b || a != a ? T(1) : T(0);
}

template <BinOp op, typename T>
void binary_kernel(const Tensor& out, const Tensor& a, const Tensor& b) {
  T* o = out.data<T>();
  const T* pa = a.data<T>();
  const T* pb = b.data<T>();
  if (a.shape() == b.shape() && a.is_contiguous() && b.is_contiguous()) {
    parallel_for(out.numel(), 1 << 14, [&](int64_t s, int64_t e) {
      for (int64_t i = s; i < e; ++i) o[i] = apply<op>(pa[i], pb[i]);
    });
    return;
  }
  const Tensor ea = a.detach().expand(out.shape()), eb = b.detach().expand(out.shape());
  detail::for_each_row3(
      out.shape(), out.strides(), ea.strides(), eb.strides(),
      [&](int64_t oo, int64_t oa, int64_t ob, int64_t n, int64_t so, int64_t sa, int64_t sb) {
        if (sa == 1 && sb == 1) {
          for (int64_t i = 0; i < n; ++i) o[oo + i] = apply<op>(pa[oa + i], pb[ob + i]);
        } else {
          for (int64_t i = 0; i < n; ++i)
            o[oo + i * so] = apply<op>(pa[oa + i * sa], pb[ob + i * sb]);
        }
      });
}

template <BinOp op>
Tensor binary(const Tensor& a, const Tensor& b) {
  LLMKIT_CHECK(a.dtype() == b.dtype(), bin_name(op), ": dtype mismatch ", a.str(), " and ",
               b.str());
  Tensor out = Tensor::empty(broadcast_shape(a.shape(), b.shape(), bin_name(op)), a.dtype());
  dispatch_float(a.dtype(), bin_name(op),
                 [&](auto t) { binary_kernel<op, decltype(t)>(out, a, b); });
  if (!needs_graph({&a, &b})) return out;
  const Shape sa = a.shape(), sb = b.shape();
  // Saved inputs are detached: the graph holds them through the node's inputs only.
  constexpr bool kSaves = op != BinOp::Add && op != BinOp::Sub;
  const Tensor da = kSaves ? a.detach() : Tensor();
  const Tensor db = kSaves ? b.detach() : Tensor();
  record(out, bin_name(op), {&a, &b}, [sa, sb, da, db](Node& n, const Tensor& dout) {
    NoGradGuard ng;
    if constexpr (op == BinOp::Add) {
      n.accumulate(0, sum_to(dout, sa));
      if (n.needs_grad(1)) n.accumulate(1, sum_to(dout, sb));
    } else if constexpr (op == BinOp::Sub) {
      n.accumulate(0, sum_to(dout, sa));
      if (n.needs_grad(1)) n.accumulate(1, sum_to(neg(dout), sb));
    } else if constexpr (op == BinOp::Mul) {
      if (n.needs_grad(0)) n.accumulate(0, sum_to(mul(dout, db), sa));
      if (n.needs_grad(1)) n.accumulate(1, sum_to(mul(dout, da), sb));
    } else if constexpr (op == BinOp::Div) {  // d(a/b)/da = 1/b, d(a/b)/db = -a/b^2
      if (n.needs_grad(0)) n.accumulate(0, sum_to(div(dout, db), sa));
      if (n.needs_grad(1)) n.accumulate(1, sum_to(neg(div(mul(dout, da), mul(db, db))), sb));
    } else if constexpr (op == BinOp::Max || op == BinOp::Min) {
      // The whole gradient goes to the input picked: dout * mask to a, the rest to b.
      const Tensor ga =
          mul(dout, binary < op == BinOp::Max ? BinOp::GeMask : BinOp::LeMask > (da, db));
      if (n.needs_grad(0)) n.accumulate(0, sum_to(ga, sa));
      if (n.needs_grad(1)) n.accumulate(1, sum_to(sub(dout, ga), sb));
    }
  });
  return out;
}

// y = f(x) elementwise; dx = dy * g(x, y).
template <typename F, typename G>
Tensor unary(const Tensor& x, const char* name, F f, G g) {
  const Tensor xc = x.contiguous();
  Tensor out = Tensor::empty(x.shape(), x.dtype());
  dispatch_float(x.dtype(), name, [&](auto tag) {
    using T = decltype(tag);
    const T* px = xc.data<T>();
    T* py = out.data<T>();
    parallel_for(out.numel(), 1 << 14, [&](int64_t s, int64_t e) {
      for (int64_t i = s; i < e; ++i) py[i] = static_cast<T>(f(static_cast<double>(px[i])));
    });
  });
  if (needs_graph({&x})) {
    const Tensor xs = xc.detach(), ys = out.detach();
    record(out, name, {&x}, [xs, ys, g, name](Node& n, const Tensor& dout) {
      Tensor dx = Tensor::empty(xs.shape(), xs.dtype());
      dispatch_float(xs.dtype(), name, [&](auto tag) {
        using T = decltype(tag);
        const T *px = xs.data<T>(), *py = ys.data<T>(), *pd = dout.data<T>();
        T* pg = dx.data<T>();
        parallel_for(dx.numel(), 1 << 14, [&](int64_t s, int64_t e) {
          for (int64_t i = s; i < e; ++i)
            pg[i] =
                static_cast<T>(pd[i] * g(static_cast<double>(px[i]), static_cast<double>(py[i])));
        });
      });
      n.accumulate(0, dx);
    });
  }
  return out;
}

}  // namespace

Shape broadcast_shape(const Shape& a, const Shape& b, const char* op) {
  const size_t n = std::max(a.size(), b.size());
  Shape out(n);
  for (size_t i = 0; i < n; ++i) {
    const int64_t da = i < n - a.size() ? 1 : a[i - (n - a.size())];
    const int64_t db = i < n - b.size() ? 1 : b[i - (n - b.size())];
    LLMKIT_CHECK(da == db || da == 1 || db == 1, op, ": shapes ", shape_str(a), " and ",
                 shape_str(b), " do not broadcast");
    out[i] = da == 1 ? db : da;
  }
  return out;
}

Tensor sum_to(const Tensor& g, const Shape& shape) {
  if (g.shape() == shape) return g;
  const size_t lead = g.shape().size() - shape.size();
  std::vector<int64_t> dims;
  for (size_t i = 0; i < g.shape().size(); ++i)
    if (i < lead || (shape[i - lead] == 1 && g.shape()[i] != 1))
      dims.push_back(static_cast<int64_t>(i));
  return sum(g, dims, /*keepdim=*/false).reshape(shape);
}

Tensor add(const Tensor& a, const Tensor& b) {
  return binary<BinOp::Add>(a, b);
}
Tensor sub(const Tensor& a, const Tensor& b) {
  return binary<BinOp::Sub>(a, b);
}
Tensor mul(const Tensor& a, const Tensor& b) {
  return binary<BinOp::Mul>(a, b);
}
Tensor div(const Tensor& a, const Tensor& b) {
  return binary<BinOp::Div>(a, b);
}

Tensor maximum(const Tensor& a, const Tensor& b) {
  return binary<BinOp::Max>(a, b);
}
Tensor minimum(const Tensor& a, const Tensor& b) {
  return binary<BinOp::Min>(a, b);
}

Tensor add_scalar(const Tensor& x, double s) {
  return unary(
      x, "add_scalar", [s](double v) { return v + s; }, [](double, double) { return 1.0; });
}
Tensor mul_scalar(const Tensor& x, double s) {
  return unary(
      x, "mul_scalar", [s](double v) { return v * s; }, [s](double, double) { return s; });
}
Tensor pow_scalar(const Tensor& x, double p) {
  return unary(
      x, "pow_scalar", [p](double v) { return std::pow(v, p); },
      [p](double v, double) { return p * std::pow(v, p - 1.0); });
}
Tensor neg(const Tensor& x) {
  return unary(
      x, "neg", [](double v) { return -v; }, [](double, double) { return -1.0; });
}
Tensor exp(const Tensor& x) {
  return unary(
      x, "exp", [](double v) { return std::exp(v); }, [](double, double y) { return y; });
}
Tensor log(const Tensor& x) {
  return unary(
      x, "log", [](double v) { return std::log(v); }, [](double v, double) { return 1.0 / v; });
}
Tensor sqrt(const Tensor& x) {
  return unary(
      x, "sqrt", [](double v) { return std::sqrt(v); }, [](double, double y) { return 0.5 / y; });
}

// log sigmoid(x) = -log(1 + e^-x) = min(x, 0) - log1p(e^-|x|): the exponent is never positive,
// so nothing overflows and log1p keeps the digits of the small term. d/dx = sigmoid(-x) =
// 1 / (1 + e^x), which is 0 (not NaN) when e^x overflows to inf.
Tensor log_sigmoid(const Tensor& x) {
  return unary(
      x, "log_sigmoid",
      [](double v) { return std::min(v, 0.0) - std::log1p(std::exp(-std::abs(v))); },
      [](double v, double) { return 1.0 / (1.0 + std::exp(v)); });
}
Tensor clamp(const Tensor& x, double lo, double hi) {
  LLMKIT_CHECK(lo <= hi, "clamp: lo ", lo, " is above hi ", hi);
  return unary(
      x, "clamp", [lo, hi](double v) { return std::clamp(v, lo, hi); },
      [lo, hi](double v, double) { return v >= lo && v <= hi ? 1.0 : 0.0; });
}

}  // namespace llmkit::ops
