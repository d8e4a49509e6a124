// The LSTM / GRU cell loops. Rows run in parallel (parallel_for over B); each row is 4H or 3H
// independent elements. float uses the vectorisable sigmoid/tanh approximations of activation.h
// (~2e-7 relative), double uses libm so finite-difference checks see exact derivatives.
#include "llmkit/kernels/cpu/rnn.h"

#include <algorithm>
#include <cmath>

#include "llmkit/core/parallel.h"
#include "llmkit/kernels/cpu/activation.h"

namespace llmkit::kernels {
namespace {

inline float sigm(float x) {
  return 1.0f / (1.0f + exp_approx(-x));
}
inline double sigm(double x) {
  return 1.0 / (1.0 + std::exp(-x));
}
inline float tanh_(float x) {
  return tanh_approx(x);
}
inline double tanh_(double x) {
  return std::tanh(x);
}

// Rows per parallel chunk: enough work per thread to pay for waking it.
int64_t row_grain(int64_t H) {
  return std::max<int64_t>(1, 16384 / std::max<int64_t>(H, 1));
}

}  // namespace

template <typename T>
void lstm_cell_forward(T* h, T* c, T* act, const T* gx, const T* gh, const T* c_prev, int64_t B,
                       int64_t H) {
  parallel_for(B, row_grain(4 * H), [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      const T* x = gx + b * 4 * H;
      const T* y = gh + b * 4 * H;
      T* a = act + b * 4 * H;
      for (int64_t j = 0; j < 4 * H; ++j) a[j] = x[j] + y[j];
      for (int64_t j = 0; j < H; ++j) {
        a[j] = sigm(a[j]);                   // i
        a[H + j] = sigm(a[H + j]);           // f
        a[2 * H + j] = tanh_(a[2 * H + j]);  // g
        a[3 * H + j] = sigm(a[3 * H + j]);   // o
      }
      const T* cp = c_prev + b * H;
      T* cb = c + b * H;
      T* hb = h + b * H;
      for (int64_t j = 0; j < H; ++j) {
        cb[j] = a[H + j] * cp[j] + a[j] * a[2 * H + j];
        hb[j] = a[3 * H + j] * tanh_(cb[j]);
      }
    }
  });
}

// With tc = tanh(c):  dc_total = dc + dh*o*(1 - tc^2);  d(pre-activation) per gate:
//   i: dc_total*g*i(1-i)   f: dc_total*c_prev*f(1-f)   g: dc_total*i*(1-g^2)   o: dh*tc*o(1-o)
//   dc_prev = dc_total*f
template <typename T>
void lstm_cell_backward(T* da, T* dc_prev, const T* dh, const T* dc, const T* act, const T* c,
                        const T* c_prev, int64_t B, int64_t H) {
  parallel_for(B, row_grain(4 * H), [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      const T* a = act + b * 4 * H;
      T* d = da + b * 4 * H;
      for (int64_t j = 0; j < H; ++j) {
        const int64_t k = b * H + j;
        const T i = a[j], f = a[H + j], g = a[2 * H + j], o = a[3 * H + j];
        const T tc = tanh_(c[k]);
        const T dhk = dh ? dh[k] : T(0);
        const T dct = (dc ? dc[k] : T(0)) + dhk * o * (T(1) - tc * tc);
        d[j] = dct * g * i * (T(1) - i);
        d[H + j] = dct * c_prev[k] * f * (T(1) - f);
        d[2 * H + j] = dct * i * (T(1) - g * g);
        d[3 * H + j] = dhk * tc * o * (T(1) - o);
        if (dc_prev) dc_prev[k] += dct * f;
      }
    }
  });
}

template <typename T>
void gru_cell_forward(T* h, T* act, const T* gx, const T* gh, const T* h_prev, int64_t B,
                      int64_t H) {
  parallel_for(B, row_grain(3 * H), [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      const T* x = gx + b * 3 * H;
      const T* y = gh + b * 3 * H;
      T* a = act + b * 3 * H;
      for (int64_t j = 0; j < H; ++j) {
        const T r = sigm(x[j] + y[j]);
        const T z = sigm(x[H + j] + y[H + j]);
        const T n = tanh_(x[2 * H + j] + r * y[2 * H + j]);
        a[j] = r;
        a[H + j] = z;
        a[2 * H + j] = n;
        h[b * H + j] = (T(1) - z) * n + z * h_prev[b * H + j];
      }
    }
  });
}

// dn = dh*(1-z);  dz = dh*(h_prev - n);  dh_prev += dh*z;  d(pre n) = dn*(1-n^2) = dgx_n,
// dgh_n = r*dgx_n;  dr = dgx_n*gh_n;  d(pre r) = dr*r(1-r);  d(pre z) = dz*z(1-z).
template <typename T>
void gru_cell_backward(T* dgx, T* dgh, T* dh_prev, const T* dh, const T* act, const T* gh,
                       const T* h_prev, int64_t B, int64_t H) {
  parallel_for(B, row_grain(3 * H), [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      const T* a = act + b * 3 * H;
      const T* y = gh + b * 3 * H;
      T* dx = dgx + b * 3 * H;
      T* dy = dgh + b * 3 * H;
      for (int64_t j = 0; j < H; ++j) {
        const int64_t k = b * H + j;
        const T r = a[j], z = a[H + j], n = a[2 * H + j];
        const T dn = dh[k] * (T(1) - z) * (T(1) - n * n);
        const T dz = dh[k] * (h_prev[k] - n) * z * (T(1) - z);
        const T dr = dn * y[2 * H + j] * r * (T(1) - r);
        dx[j] = dy[j] = dr;
        dx[H + j] = dy[H + j] = dz;
        dx[2 * H + j] = dn;
        dy[2 * H + j] = dn * r;
        if (dh_prev) dh_prev[k] += dh[k] * z;
      }
    }
  });
}

#define LLMKIT_RNN_INSTANTIATE(T)                                                                 \
  template void lstm_cell_forward<T>(T*, T*, T*, const T*, const T*, const T*, int64_t, int64_t); \
  template void lstm_cell_backward<T>(T*, T*, const T*, const T*, const T*, const T*, const T*,   \
                                      int64_t, int64_t);                                          \
  template void gru_cell_forward<T>(T*, T*, const T*, const T*, const T*, int64_t, int64_t);      \
  template void gru_cell_backward<T>(T*, T*, T*, const T*, const T*, const T*, const T*, int64_t, \
                                     int64_t);
LLMKIT_RNN_INSTANTIATE(float)
LLMKIT_RNN_INSTANTIATE(double)

}  // namespace llmkit::kernels
