// Closeness measures for tests that cannot be fooled by NaN or Inf. std::max(m, NaN) returns m,
// so a max-error loop silently skips a NaN element and a NaN gradient "passes"; these return NaN
// as soon as either operand holds a non-finite value (both NaN, or equal infinities, included),
// and every EXPECT_LT / EXPECT_LE on NaN fails. Use them for every "max error" in a test.
#pragma once

#include <algorithm>
#include <cmath>
#include <limits>
#include <span>
#include <vector>

namespace llmkit::testing {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// max(a, b) that keeps a NaN in either argument.
inline double nan_max(double a, double b) {
  return std::isnan(a) || std::isnan(b) ? kNaN : std::max(a, b);
}

// max |v_i|; NaN when any element is not finite.
template <class T>
double max_abs(std::span<const T> v) {
  double m = 0;
  for (const T x : v) m = std::isfinite(double(x)) ? nan_max(m, std::abs(double(x))) : kNaN;
  return m;
}
template <class T>
double max_abs(const std::vector<T>& v) {
  return max_abs(std::span<const T>(v));
}

// max |a_i - b_i|; NaN when the sizes differ or any element of either is not finite.
template <class A, class B>
double max_abs_diff(std::span<const A> a, std::span<const B> b) {
  if (a.size() != b.size()) return kNaN;
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double x = double(a[i]), y = double(b[i]);
    m = std::isfinite(x) && std::isfinite(y) ? nan_max(m, std::abs(x - y)) : kNaN;
  }
  return m;
}
template <class A, class B>
double max_abs_diff(const std::vector<A>& a, const std::vector<B>& b) {
  return max_abs_diff(std::span<const A>(a), std::span<const B>(b));
}

// max |ours - ref| / max |ref|: the worst element against the reference's scale; NaN as above.
template <class A, class B>
double rel_err(const std::vector<A>& ours, const std::vector<B>& ref) {
  return max_abs_diff(ours, ref) / std::max(max_abs(ref), 1e-30);
}

}  // namespace llmkit::testing
