// Tests of the fused attention kernel against a naive double-precision reference that
// materialises the whole score matrix (forward, lse and every gradient), a finite-difference
// check of the double backward, and bit-identical results across runs and thread counts.
#include "llmkit/kernels/cpu/attention.h"

#include <gtest/gtest.h>

#include "common/compare.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "llmkit/core/error.h"
#include "llmkit/core/parallel.h"

namespace llmkit::kernels {
namespace {

using Vec = std::vector<double>;
constexpr double kInf = std::numeric_limits<double>::infinity();

enum class Mask { kNone, kRandom, kLeftPad };  // kLeftPad + causal gives fully masked rows
// kPacked: contiguous runs of 1 to 80 tokens per row (packed examples, so many tiles are skipped);
// kRandom: each token's id drawn from {0, 1, 2} (not contiguous; the kernel must not assume it).
enum class Segments { kNone, kPacked, kRandom };

struct Case {
  AttentionShape s;
  Mask mask = Mask::kNone;
  bool bias = false;
  Segments segments = Segments::kNone;
};

struct Inputs {
  Vec q, k, v, bias, dout;    // q [B,NH,Tq,HS], k v [B,NKV,Tk,HS], bias [NH,Tq,Tk], dout like q
  std::vector<uint8_t> mask;  // [B,Tk]
  std::vector<int32_t> seg;   // [B,T] (Tq == Tk)
};

struct Grads {
  Vec out, lse, dq, dk, dv, dbias;
};

Vec random_vec(size_t n, double lo, double hi, std::mt19937_64& rng) {
  std::uniform_real_distribution<double> u(lo, hi);
  Vec x(n);
  for (double& e : x) e = static_cast<float>(u(rng));  // representable in float: same inputs
  return x;
}

Inputs make_inputs(const Case& c, uint64_t seed) {
  const AttentionShape& s = c.s;
  std::mt19937_64 rng(seed);
  Inputs in;
  in.q = random_vec(s.B * s.NH * s.Tq * s.HS, -2, 2, rng);
  in.k = random_vec(s.B * s.NKV * s.Tk * s.HS, -2, 2, rng);
  in.v = random_vec(s.B * s.NKV * s.Tk * s.HS, -1, 1, rng);
  in.dout = random_vec(s.B * s.NH * s.Tq * s.HS, -1, 1, rng);
  if (c.bias) in.bias = random_vec(s.NH * s.Tq * s.Tk, -1, 1, rng);
  if (c.mask != Mask::kNone) {
    in.mask.assign(s.B * s.Tk, 1);
    for (int64_t b = 0; b < s.B; ++b)
      for (int64_t j = 0; j < s.Tk; ++j) {
        if (c.mask == Mask::kRandom) in.mask[b * s.Tk + j] = rng() % 4 != 0;
        if (c.mask == Mask::kLeftPad) in.mask[b * s.Tk + j] = j >= 3 * b + 5;  // b=last: all pad
      }
    if (c.mask == Mask::kLeftPad) std::fill_n(in.mask.begin() + (s.B - 1) * s.Tk, s.Tk, 0);
  }
  if (c.segments != Segments::kNone) {
    in.seg.resize(s.B * s.Tk);
    for (int64_t b = 0; b < s.B; ++b) {
      int32_t id = 0, left = 0;
      for (int64_t j = 0; j < s.Tk; ++j) {
        if (c.segments == Segments::kRandom) {
          in.seg[b * s.Tk + j] = static_cast<int32_t>(rng() % 3);
          continue;
        }
        if (left == 0) left = 1 + static_cast<int32_t>(rng() % 80), ++id;
        in.seg[b * s.Tk + j] = id, --left;
      }
    }
  }
  return in;
}

// Naive reference: full [Tq,Tk] probability matrix per (b, h), softmax, and the textbook
// backward dS = P * (dP - sum_j P dP).
Grads reference(const Case& c, const Inputs& in) {
  const AttentionShape& s = c.s;
  const int64_t G = s.NH / s.NKV, HS = s.HS, Tq = s.Tq, Tk = s.Tk;
  Grads g;
  g.out.assign(in.q.size(), 0);
  g.lse.assign(s.B * s.NH * Tq, 0);
  g.dq.assign(in.q.size(), 0.25);  // non-zero start: the kernel must accumulate
  g.dk.assign(in.k.size(), 0.25);
  g.dv.assign(in.v.size(), 0.25);
  g.dbias.assign(s.NH * Tq * Tk, 0.25);
  Vec P(Tq * Tk), dP(Tq * Tk);
  for (int64_t b = 0; b < s.B; ++b)
    for (int64_t h = 0; h < s.NH; ++h) {
      const int64_t qo = (b * s.NH + h) * Tq * HS, ko = (b * s.NKV + h / G) * Tk * HS;
      for (int64_t i = 0; i < Tq; ++i) {
        double mx = -kInf;
        for (int64_t j = 0; j < Tk; ++j) {
          bool vis = !s.causal || j <= i + (Tk - Tq);
          if (!in.mask.empty() && !in.mask[b * Tk + j]) vis = false;
          if (!in.seg.empty() && in.seg[b * Tk + i] != in.seg[b * Tk + j]) vis = false;
          double x = -kInf;
          if (vis) {
            x = 0;
            for (int64_t d = 0; d < HS; ++d) x += in.q[qo + i * HS + d] * in.k[ko + j * HS + d];
            x = x * s.scale + (in.bias.empty() ? 0 : in.bias[(h * Tq + i) * Tk + j]);
          }
          P[i * Tk + j] = x;
          mx = std::max(mx, x);
        }
        double sum = 0;
        for (int64_t j = 0; j < Tk; ++j) {
          double& p = P[i * Tk + j];
          p = mx == -kInf ? 0 : std::exp(p - mx);
          sum += p;
        }
        g.lse[(b * s.NH + h) * Tq + i] = sum > 0 ? mx + std::log(sum) : -kInf;
        for (int64_t j = 0; j < Tk; ++j) {
          P[i * Tk + j] = sum > 0 ? P[i * Tk + j] / sum : 0;
          for (int64_t d = 0; d < HS; ++d)
            g.out[qo + i * HS + d] += P[i * Tk + j] * in.v[ko + j * HS + d];
        }
      }
      for (int64_t i = 0; i < Tq; ++i) {
        double dsum = 0;
        for (int64_t j = 0; j < Tk; ++j) {
          double x = 0;
          for (int64_t d = 0; d < HS; ++d) x += in.dout[qo + i * HS + d] * in.v[ko + j * HS + d];
          dP[i * Tk + j] = x;
          dsum += P[i * Tk + j] * x;
        }
        for (int64_t j = 0; j < Tk; ++j) {
          const double p = P[i * Tk + j], ds = p * (dP[i * Tk + j] - dsum);
          g.dbias[(h * Tq + i) * Tk + j] += ds;
          for (int64_t d = 0; d < HS; ++d) {
            g.dq[qo + i * HS + d] += s.scale * ds * in.k[ko + j * HS + d];
            g.dk[ko + j * HS + d] += s.scale * ds * in.q[qo + i * HS + d];
            g.dv[ko + j * HS + d] += p * in.dout[qo + i * HS + d];
          }
        }
      }
    }
  return g;
}

template <typename T>
std::vector<T> cast(const Vec& x) {
  return std::vector<T>(x.begin(), x.end());
}
template <typename T>
const T* ptr_or_null(const std::vector<T>& x) {
  return x.empty() ? nullptr : x.data();
}

// Runs the kernel in precision T; gradients start at 0.25 like the reference.
template <typename T>
Grads run_kernel(const Case& c, const Inputs& in, bool with_dbias = true) {
  const AttentionShape& s = c.s;
  const auto q = cast<T>(in.q), k = cast<T>(in.k), v = cast<T>(in.v), dout = cast<T>(in.dout);
  const auto bias = cast<T>(in.bias);
  std::vector<T> out(q.size()), lse(s.B * s.NH * s.Tq);
  std::vector<T> dq(q.size(), 0.25), dk(k.size(), 0.25), dv(v.size(), 0.25);
  std::vector<T> dbias(s.NH * s.Tq * s.Tk, 0.25);
  const uint8_t* mask = in.mask.empty() ? nullptr : in.mask.data();
  const int32_t* seg = ptr_or_null(in.seg);
  attention_forward(out.data(), lse.data(), q.data(), k.data(), v.data(), mask, seg,
                    ptr_or_null(bias), s);
  attention_backward(dq.data(), dk.data(), dv.data(), with_dbias ? dbias.data() : nullptr,
                     dout.data(), q.data(), k.data(), v.data(), out.data(), lse.data(), mask, seg,
                     ptr_or_null(bias), s);
  auto back = [](const std::vector<T>& x) { return Vec(x.begin(), x.end()); };
  return {back(out), back(lse), back(dq), back(dk), back(dv), back(dbias)};
}

// max |got - want| / max |want|, infinities must match exactly.
double rel_err(const Vec& got, const Vec& want) {
  EXPECT_EQ(got.size(), want.size());
  double err = 0, norm = 1e-30;
  for (size_t i = 0; i < want.size(); ++i) {
    if (std::isinf(want[i]) || std::isinf(got[i])) {
      EXPECT_EQ(got[i], want[i]) << "at " << i;
      continue;
    }
    EXPECT_FALSE(std::isnan(got[i]) || std::isnan(want[i])) << "at " << i;
    err = llmkit::testing::nan_max(err, std::abs(got[i] - want[i]));
    norm = llmkit::testing::nan_max(norm, std::abs(want[i]));
  }
  return err / norm;
}

void check_case(const Case& c, uint64_t seed = 1) {
  const Inputs in = make_inputs(c, seed);
  const Grads ref = reference(c, in);
  const char* names[] = {"out", "lse", "dq", "dk", "dv", "dbias"};
  for (int prec = 0; prec < 2; ++prec) {
    const Grads got = prec == 0 ? run_kernel<double>(c, in) : run_kernel<float>(c, in);
    const double tol = prec == 0 ? 1e-12 : 1e-5;
    const Vec* g[] = {&got.out, &got.lse, &got.dq, &got.dk, &got.dv, &got.dbias};
    const Vec* r[] = {&ref.out, &ref.lse, &ref.dq, &ref.dk, &ref.dv, &ref.dbias};
    for (int t = 0; t < 6; ++t) {
      const double e = rel_err(*g[t], *r[t]);
      EXPECT_LT(e, tol) << (prec == 0 ? "double " : "float ") << names[t];
      if (prec == 1) std::printf("  float %-5s rel err %.2e\n", names[t], e);
    }
  }
}

AttentionShape shape(int64_t B, int64_t NH, int64_t NKV, int64_t Tq, int64_t Tk, int64_t HS,
                     bool causal) {
  return {B, NH, NKV, Tq, Tk, HS, causal, 1.0 / std::sqrt(static_cast<double>(HS))};
}

TEST(Attention, SingleToken) {
  check_case({shape(2, 2, 2, 1, 1, 64, true)});
}

TEST(Attention, BidirectionalOddSizes) {
  check_case({shape(2, 3, 3, 37, 37, 24, false)});
}

TEST(Attention, CausalAcrossBlocks) {
  check_case({shape(1, 2, 2, 130, 130, 64, true)});
}

TEST(Attention, DecodeStepGroupedQuery) {
  check_case({shape(2, 4, 2, 1, 130, 64, true)});
}

TEST(Attention, CausalShortQueriesMultiQuery) {
  check_case({shape(1, 4, 1, 37, 130, 24, true)});
}

TEST(Attention, MoreQueriesThanKeysCausal) {  // the first queries see no key at all
  check_case({shape(1, 2, 1, 70, 20, 24, true)});
}

TEST(Attention, PaddingMaskBidirectional) {
  check_case({shape(3, 2, 2, 37, 37, 64, false), Mask::kLeftPad});  // last batch fully masked
}

TEST(Attention, PaddingMaskCausalFullyMaskedRows) {
  check_case({shape(2, 4, 2, 70, 70, 24, true), Mask::kLeftPad});
}

TEST(Attention, BiasAndRandomMaskGroupedQuery) {
  check_case({shape(2, 4, 2, 70, 130, 24, false), Mask::kRandom, true});
}

TEST(Attention, BiasCausalCrossBlocks) {
  check_case({shape(2, 2, 1, 130, 130, 64, true), Mask::kNone, true});
}

TEST(Attention, PackedSegmentsCausalGroupedQuery) {
  check_case({shape(2, 4, 2, 200, 200, 24, true), Mask::kNone, false, Segments::kPacked});
}

TEST(Attention, PackedSegmentsWithPaddingAndBias) {
  check_case({shape(2, 2, 1, 150, 150, 64, false), Mask::kRandom, true, Segments::kPacked});
}

TEST(Attention, RandomSegmentsCausal) {  // ids not contiguous: no tile can be skipped
  check_case({shape(2, 2, 2, 70, 70, 24, true), Mask::kNone, true, Segments::kRandom});
}

// Segments only mask: one packed row gives, on each segment, what the kernel gives on that
// segment alone (bidirectional and causal).
TEST(Attention, PackedRowEqualsSegmentsRunAlone) {
  const int64_t lens[] = {70, 5, 64, 1, 60}, T = 200, NH = 2, HS = 24;
  for (bool causal : {false, true}) {
    const Case c{shape(1, NH, NH, T, T, HS, causal)};
    Inputs in = make_inputs(c, 5);
    in.seg.clear();
    for (int32_t id = 0; id < 5; ++id) in.seg.insert(in.seg.end(), lens[id], id);
    const Grads packed = run_kernel<double>(c, in);
    int64_t t0 = 0;
    for (int64_t len : lens) {
      const Case one{shape(1, NH, NH, len, len, HS, causal)};
      Inputs part;
      auto rows = [&](const Vec& x) {  // [NH, T, HS] -> [NH, len, HS]
        Vec r;
        for (int64_t h = 0; h < NH; ++h)
          r.insert(r.end(), x.begin() + (h * T + t0) * HS, x.begin() + (h * T + t0 + len) * HS);
        return r;
      };
      part.q = rows(in.q), part.k = rows(in.k), part.v = rows(in.v), part.dout = rows(in.dout);
      const Grads alone = run_kernel<double>(one, part);
      EXPECT_LT(rel_err(rows(packed.out), alone.out), 1e-13) << "segment at " << t0;
      EXPECT_LT(rel_err(rows(packed.dq), alone.dq), 1e-13) << "segment at " << t0;
      EXPECT_LT(rel_err(rows(packed.dk), alone.dk), 1e-13) << "segment at " << t0;
      EXPECT_LT(rel_err(rows(packed.dv), alone.dv), 1e-13) << "segment at " << t0;
      t0 += len;
    }
  }
}

TEST(Attention, GradientsWithoutDbias) {
  const Case c{shape(2, 4, 2, 37, 70, 24, true), Mask::kRandom, true};
  const Inputs in = make_inputs(c, 7);
  const Grads ref = reference(c, in);
  const Grads got = run_kernel<double>(c, in, /*with_dbias=*/false);
  EXPECT_LT(rel_err(got.dq, ref.dq), 1e-12);
  EXPECT_LT(rel_err(got.dk, ref.dk), 1e-12);
  EXPECT_LT(rel_err(got.dv, ref.dv), 1e-12);
  for (double x : got.dbias) EXPECT_EQ(x, 0.25);  // untouched
}

// Central differences of loss = sum(out * R) on a tiny case, against the double backward.
void check_finite_differences(const Case& c, const Inputs& in) {
  const AttentionShape& s = c.s;
  const Grads g = run_kernel<double>(c, in);
  auto loss = [&](const Inputs& x) {
    Vec out(x.q.size()), lse(s.B * s.NH * s.Tq);
    attention_forward(out.data(), lse.data(), x.q.data(), x.k.data(), x.v.data(), x.mask.data(),
                      ptr_or_null(x.seg), x.bias.data(), s);
    double l = 0;
    for (size_t i = 0; i < out.size(); ++i) l += out[i] * x.dout[i];
    return l;
  };
  const double eps = 1e-5;
  auto check = [&](Vec Inputs::*field, const Vec& grad, const char* name) {
    double worst = 0;
    for (size_t i = 0; i < (in.*field).size(); ++i) {
      Inputs p = in, m = in;
      (p.*field)[i] += eps;
      (m.*field)[i] -= eps;
      const double fd = (loss(p) - loss(m)) / (2 * eps);
      worst = std::isfinite(fd) && std::isfinite(grad[i])
                  ? llmkit::testing::nan_max(worst, std::abs(fd - (grad[i] - 0.25)))
                  : llmkit::testing::kNaN;
    }
    EXPECT_LT(worst, 1e-8) << name;
  };
  check(&Inputs::q, g.dq, "dq");
  check(&Inputs::k, g.dk, "dk");
  check(&Inputs::v, g.dv, "dv");
  check(&Inputs::bias, g.dbias, "dbias");
}

TEST(Attention, FiniteDifferences) {
  const Case c{shape(2, 2, 1, 3, 5, 3, true), Mask::kRandom, true};
  Inputs in = make_inputs(c, 3);
  in.mask = {1, 1, 0, 1, 1, 0, 1, 1, 1, 1};
  check_finite_differences(c, in);
}

TEST(Attention, FiniteDifferencesWithSegments) {
  const Case c{shape(2, 2, 1, 5, 5, 3, true), Mask::kRandom, true};
  Inputs in = make_inputs(c, 4);
  in.mask = {1, 1, 0, 1, 1, 0, 1, 1, 1, 1};
  in.seg = {0, 0, 0, 1, 1, 3, 3, 4, 4, 4};  // batch 1: key 0 (of segment 3) is padding
  check_finite_differences(c, in);
  Case bidir = c;
  bidir.s.causal = false;
  check_finite_differences(bidir, in);
}

TEST(Attention, Deterministic) {
  const Case c{shape(2, 4, 2, 130, 130, 64, true), Mask::kRandom, true};
  const Inputs in = make_inputs(c, 11);
  const int saved = num_threads();
  set_num_threads(2);
  const Grads a = run_kernel<float>(c, in), b = run_kernel<float>(c, in);
  set_num_threads(1);
  const Grads one = run_kernel<float>(c, in);
  set_num_threads(saved);
  const Vec Grads::*fields[] = {&Grads::out, &Grads::lse, &Grads::dq,
                                &Grads::dk,  &Grads::dv,  &Grads::dbias};
  for (auto f : fields) {
    EXPECT_EQ(0, std::memcmp((a.*f).data(), (b.*f).data(), (a.*f).size() * sizeof(double)));
    EXPECT_EQ(0, std::memcmp((a.*f).data(), (one.*f).data(), (a.*f).size() * sizeof(double)));
  }
}

TEST(Attention, RejectsBadShape) {
  float x = 0;
  const AttentionShape s = shape(1, 3, 2, 1, 1, 4, false);  // 3 query heads, 2 kv heads
  EXPECT_THROW(attention_forward(&x, &x, &x, &x, &x, nullptr, nullptr,
                                 static_cast<const float*>(nullptr), s),
               Error);
  // Segments need self-attention (as many queries as keys).
  const int32_t seg[2] = {0, 0};
  EXPECT_THROW(
      attention_forward(&x, &x, &x, &x, &x, nullptr, seg, static_cast<const float*>(nullptr),
                        shape(1, 1, 1, 1, 2, 4, false)),
      Error);
}

}  // namespace
}  // namespace llmkit::kernels
