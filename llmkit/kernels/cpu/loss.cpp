// Fused cross-entropy. The row is scanned in L1-sized blocks: block max, rescale of the running
// sum if the max grew (one scalar exp per block), then sum of exp(x - max) over the block while
// it is still in L1. Memory sees one pass over the logits; compute sees one exp per logit (the
// element-wise online softmax would need two).
#include "llmkit/kernels/cpu/loss.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "llmkit/core/error.h"
#include "llmkit/core/parallel.h"
#include "llmkit/kernels/cpu/activation.h"

namespace llmkit::kernels {
namespace {

constexpr int64_t kBlock = 1024;  // 4 KiB of float logits: stays in L1 between the two scans

// Rows per parallel chunk: at least ~16k logits of work per thread (one row at GPT-2's vocab).
int64_t row_grain(int64_t V) {
  return std::max<int64_t>(1, 16384 / std::max<int64_t>(V, 1));
}

void check_targets(const char* op, const int32_t* targets, int64_t R, int64_t V,
                   int32_t ignore_index) {
  for (int64_t r = 0; r < R; ++r) {
    const int32_t t = targets[r];
    LLMKIT_CHECK(t == ignore_index || (t >= 0 && t < V), op, ": target ", t, " at row ", r,
                 " is outside [0, ", V, ") and is not ignore_index (", ignore_index, ")");
  }
}

// log(sum_i exp(x[i])) over one row. The running sum is kept in double: 50k float terms.
template <typename T>
double row_logsumexp(const T* x, int64_t V) {
  constexpr T kNegInf = -std::numeric_limits<T>::infinity();
  double m = -std::numeric_limits<double>::infinity();
  double s = 0.0;
  for (int64_t b = 0; b < V; b += kBlock) {
    const T* xb = x + b;
    const int64_t n = std::min(kBlock, V - b);
    T bm = kNegInf;
#pragma omp simd reduction(max : bm)
    for (int64_t i = 0; i < n; ++i) bm = std::max(bm, xb[i]);
    if (bm == kNegInf) continue;  // block adds exp(-inf) = 0; skipping avoids -inf - -inf
    if (bm > m) {
      s *= std::exp(m - bm);  // exp(-inf) = 0 on the first block
      m = bm;
    }
    const T mt = T(m);
    T bs = 0;
#pragma omp simd reduction(+ : bs)
    for (int64_t i = 0; i < n; ++i) bs += exp_approx(xb[i] - mt);
    s += bs;
  }
  return m + std::log(s);  // all -inf: -inf + log(0) = -inf; NaN anywhere propagates
}

}  // namespace

template <typename T>
int64_t cross_entropy_forward(T* losses, T* lse, const T* logits, const int32_t* targets, int64_t R,
                              int64_t V, int32_t ignore_index) {
  check_targets("cross_entropy_forward", targets, R, V, ignore_index);
  parallel_for(R, row_grain(V), [=](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      if (targets[r] == ignore_index) {
        losses[r] = T(0);
        lse[r] = T(0);
        continue;
      }
      const T* xr = logits + r * V;
      const double l = row_logsumexp(xr, V);
      lse[r] = T(l);
      losses[r] = T(l - double(xr[targets[r]]));
    }
  });
  int64_t n_valid = 0;
  for (int64_t r = 0; r < R; ++r) n_valid += targets[r] != ignore_index;
  return n_valid;
}

template <typename T>
void cross_entropy_backward(T* dlogits, const T* logits, const T* lse, const int32_t* targets,
                            std::type_identity_t<T> dloss_scale, int64_t R, int64_t V,
                            int32_t ignore_index) {
  check_targets("cross_entropy_backward", targets, R, V, ignore_index);
  parallel_for(R, row_grain(V), [=](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      if (targets[r] == ignore_index) continue;
      const T* xr = logits + r * V;
      T* dr = dlogits + r * V;
      const T l = lse[r];
#pragma omp simd
      for (int64_t i = 0; i < V; ++i) dr[i] += dloss_scale * exp_approx(xr[i] - l);
      dr[targets[r]] -= dloss_scale;
    }
  });
}

template <typename T>
int64_t token_log_probs_forward(T* logp, T* lse, const T* logits, const int32_t* targets, int64_t R,
                                int64_t V, int32_t ignore_index) {
  // Same rows, same lse: cross_entropy's loss is -logp.
  const int64_t n_valid = cross_entropy_forward(logp, lse, logits, targets, R, V, ignore_index);
  for (int64_t r = 0; r < R; ++r) logp[r] = -logp[r];
  return n_valid;
}

template <typename T>
void token_log_probs_backward(T* dlogits, const T* dlogp, const T* logits, const T* lse,
                              const int32_t* targets, int64_t R, int64_t V, int32_t ignore_index) {
  check_targets("token_log_probs_backward", targets, R, V, ignore_index);
  parallel_for(R, row_grain(V), [=](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      if (targets[r] == ignore_index) continue;
      const T* xr = logits + r * V;
      T* dr = dlogits + r * V;
      const T l = lse[r], g = dlogp[r];
#pragma omp simd
      for (int64_t i = 0; i < V; ++i) dr[i] -= g * exp_approx(xr[i] - l);
      dr[targets[r]] += g;
    }
  });
}

template <typename T>
void softmax_entropy_forward(T* entropy, T* lse, T* mean, const T* logits, int64_t R, int64_t V) {
  parallel_for(R, row_grain(V), [=](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const T* xr = logits + r * V;
      const double l = row_logsumexp(xr, V);
      const T lt = T(l);
      double s = 0.0;  // sum p x in double, as the log-sum-exp's sum
      for (int64_t b = 0; b < V; b += kBlock) {
        const int64_t n = std::min(kBlock, V - b);
        T bs = 0;
#pragma omp simd reduction(+ : bs)
        for (int64_t i = 0; i < n; ++i) {
          const T p = exp_approx(xr[b + i] - lt);
          bs += p > T(0) ? p * xr[b + i] : T(0);
        }
        s += bs;
      }
      lse[r] = lt;
      mean[r] = T(s);
      entropy[r] = T(l - s);
    }
  });
}

template <typename T>
void softmax_entropy_backward(T* dlogits, const T* dentropy, const T* logits, const T* lse,
                              const T* mean, int64_t R, int64_t V) {
  parallel_for(R, row_grain(V), [=](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const T* xr = logits + r * V;
      T* dr = dlogits + r * V;
      const T l = lse[r], mu = mean[r], g = dentropy[r];
#pragma omp simd
      for (int64_t i = 0; i < V; ++i) {
        const T p = exp_approx(xr[i] - l);
        dr[i] -= p > T(0) ? g * p * (xr[i] - mu) : T(0);
      }
    }
  });
}

#define LLMKIT_INSTANTIATE_LOSS(T)                                                                \
  template int64_t cross_entropy_forward<T>(T*, T*, const T*, const int32_t*, int64_t, int64_t,   \
                                            int32_t);                                             \
  template void cross_entropy_backward<T>(T*, const T*, const T*, const int32_t*, T, int64_t,     \
                                          int64_t, int32_t);                                      \
  template int64_t token_log_probs_forward<T>(T*, T*, const T*, const int32_t*, int64_t, int64_t, \
                                              int32_t);                                           \
  template void token_log_probs_backward<T>(T*, const T*, const T*, const T*, const int32_t*,     \
                                            int64_t, int64_t, int32_t);                           \
  template void softmax_entropy_forward<T>(T*, T*, T*, const T*, int64_t, int64_t);               \
  template void softmax_entropy_backward<T>(T*, const T*, const T*, const T*, const T*, int64_t,  \
                                            int64_t);
LLMKIT_INSTANTIATE_LOSS(float)
LLMKIT_INSTANTIATE_LOSS(double)

}  // namespace llmkit::kernels
