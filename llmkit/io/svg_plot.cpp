#include "llmkit/io/svg_plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

namespace llmkit::io {
namespace {

std::string escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '&') o += "&amp;";
    else if (c == '<') o += "&lt;";
    else if (c == '>') o += "&gt;";
    else if (c == '"') o += "&quot;";
    else o += c;
  }
  return o;
}

// About five round tick values covering [lo, hi].
std::vector<double> ticks(double lo, double hi) {
  const double span = hi - lo;
  const double raw = span / 5;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  const double step = raw / mag < 1.5 ? mag : raw / mag < 3.5 ? 2 * mag : raw / mag < 7.5 ? 5 * mag : 10 * mag;
  std::vector<double> t;
  for (double v = std::ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) t.push_back(v);
  return t;
}

std::string fmt(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%g", std::abs(v) < 1e-12 ? 0.0 : v);
  return b;
}

}  // namespace

std::string line_plot_svg(const std::vector<PlotSeries>& series, const PlotOptions& opt) {
  static const char* kColors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"};
  auto ok = [&](double x, double y) { return std::isfinite(x) && std::isfinite(y) && (!opt.log_y || y > 0); };
  auto ty = [&](double y) { return opt.log_y ? std::log10(y) : y; };
  double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
  for (const auto& s : series)
    for (size_t i = 0; i < std::min(s.x.size(), s.y.size()); ++i)
      if (ok(s.x[i], s.y[i])) {
        x0 = std::min(x0, s.x[i]);
        x1 = std::max(x1, s.x[i]);
        y0 = std::min(y0, ty(s.y[i]));
        y1 = std::max(y1, ty(s.y[i]));
      }
  if (!(x0 <= x1)) x0 = 0, x1 = 1, y0 = 0, y1 = 1;
  if (x1 == x0) x1 = x0 + 1;
  if (y1 == y0) y1 = y0 + 1;
  const double L = 70, R = 20, T = 40, B = 50;
  const double W = opt.width - L - R, H = opt.height - T - B;
  auto px = [&](double x) { return L + (x - x0) / (x1 - x0) * W; };
  auto py = [&](double y) { return T + H - (y - y0) / (y1 - y0) * H; };
  std::ostringstream o;
  o << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << opt.width << "\" height=\"" << opt.height
    << "\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  o << "<text x=\"" << opt.width / 2 << "\" y=\"22\" text-anchor=\"middle\" font-size=\"15\">" << escape(opt.title) << "</text>\n";
  for (double t : ticks(x0, x1))
    o << "<line x1=\"" << px(t) << "\" y1=\"" << T << "\" x2=\"" << px(t) << "\" y2=\"" << T + H
      << "\" stroke=\"#eee\"/><text x=\"" << px(t) << "\" y=\"" << T + H + 16 << "\" text-anchor=\"middle\">" << fmt(t) << "</text>\n";
  for (double t : ticks(y0, y1))
    o << "<line x1=\"" << L << "\" y1=\"" << py(t) << "\" x2=\"" << L + W << "\" y2=\"" << py(t)
      << "\" stroke=\"#eee\"/><text x=\"" << L - 6 << "\" y=\"" << py(t) + 4 << "\" text-anchor=\"end\">"
      << fmt(opt.log_y ? std::pow(10.0, t) : t) << "</text>\n";
  o << "<rect x=\"" << L << "\" y=\"" << T << "\" width=\"" << W << "\" height=\"" << H << "\" fill=\"none\" stroke=\"#333\"/>\n";
  o << "<text x=\"" << L + W / 2 << "\" y=\"" << opt.height - 10 << "\" text-anchor=\"middle\">" << escape(opt.x_label) << "</text>\n";
  o << "<text transform=\"translate(16," << T + H / 2 << ") rotate(-90)\" text-anchor=\"middle\">" << escape(opt.y_label) << "</text>\n";
  int k = 0;
  for (const auto& s : series) {
    const char* color = kColors[k % 6];
    std::ostringstream pts;
    int n = 0;
    for (size_t i = 0; i < std::min(s.x.size(), s.y.size()); ++i)
      if (ok(s.x[i], s.y[i])) {
        pts << px(s.x[i]) << ',' << py(ty(s.y[i])) << ' ';
        ++n;
      }
    if (n > 0)
      o << "<polyline fill=\"none\" stroke=\"" << color << "\" stroke-width=\"1.5\" points=\"" << pts.str() << "\"/>\n";
    o << "<line x1=\"" << L + W - 150 << "\" y1=\"" << T + 14 + 18 * k << "\" x2=\"" << L + W - 130 << "\" y2=\""
      << T + 14 + 18 * k << "\" stroke=\"" << color << "\" stroke-width=\"2\"/><text x=\"" << L + W - 124
      << "\" y=\"" << T + 18 + 18 * k << "\">" << escape(s.name) << "</text>\n";
    ++k;
  }
  o << "</svg>\n";
  return o.str();
}

}  // namespace llmkit::io
