#include "llmkit/io/svg_plot.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <sstream>

#include "llmkit/core/error.h"

namespace llmkit::io {
namespace {

constexpr const char* kColors[] = {"#1f77b4", "#d62728", "#2ca02c",
                                   "#ff7f0e", "#9467bd", "#8c564b"};
constexpr double kLeft = 70, kRight = 20, kTop = 40, kBottom = 50;  // margins, pixels

std::string escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '&')
      o += "&amp;";
    else if (c == '<')
      o += "&lt;";
    else if (c == '>')
      o += "&gt;";
    else if (c == '"')
      o += "&quot;";
    else if (c == '\'')
      o += "&apos;";
    else if (static_cast<unsigned char>(c) >= 0x20 || c == '\t')
      o += c;  // XML forbids controls
  }
  return o;
}

// Locale-independent numbers: tick labels with 6 significant digits, coordinates with 2 decimals.
std::string label(double v) {
  char b[32];
  return std::string(b, std::to_chars(b, b + sizeof b, v, std::chars_format::general, 6).ptr);
}
std::string coord(double v) {
  char b[64];
  return std::string(b, std::to_chars(b, b + sizeof b, v, std::chars_format::fixed, 2).ptr);
}

// Ticks in plotted (possibly log10) space. Log axes spanning a decade or more tick at powers
// of ten; narrower ones at round values of y itself.
std::vector<double> axis_ticks(double lo, double hi, bool log) {
  if (!log) return nice_ticks(lo, hi);
  std::vector<double> t;
  if (hi - lo >= 1) {
    const double step = std::max(1.0, std::ceil((hi - lo) / 5));
    for (double k = std::floor(lo / step); k * step < hi + step; ++k) t.push_back(k * step);
    return t;
  }
  for (double v : nice_ticks(std::pow(10.0, lo), std::pow(10.0, hi)))
    if (v > 0) t.push_back(std::log10(v));
  return t;
}

// Maps data to pixels: [x0, x1] x [y0, y1] (y in plotted space) onto the inner plot box.
struct Frame {
  double x0, x1, y0, y1;
  double left, top, w, h;
  double px(double x) const { return left + (x - x0) / (x1 - x0) * w; }
  double py(double y) const { return top + h - (y - y0) / (y1 - y0) * h; }
};

void draw_axes(std::ostringstream& o, const Frame& f, const std::vector<double>& xt,
               const std::vector<double>& yt, const PlotOptions& opt) {
  for (double t : xt)
    o << "<line x1=\"" << coord(f.px(t)) << "\" y1=\"" << coord(f.top) << "\" x2=\""
      << coord(f.px(t)) << "\" y2=\"" << coord(f.top + f.h) << "\" stroke=\"#eee\"/><text x=\""
      << coord(f.px(t)) << "\" y=\"" << coord(f.top + f.h + 16) << "\" text-anchor=\"middle\">"
      << label(t) << "</text>\n";
  for (double t : yt)
    o << "<line x1=\"" << coord(f.left) << "\" y1=\"" << coord(f.py(t)) << "\" x2=\""
      << coord(f.left + f.w) << "\" y2=\"" << coord(f.py(t)) << "\" stroke=\"#eee\"/><text x=\""
      << coord(f.left - 6) << "\" y=\"" << coord(f.py(t) + 4) << "\" text-anchor=\"end\">"
      << label(opt.log_y ? std::pow(10.0, t) : t) << "</text>\n";
  o << "<rect x=\"" << coord(f.left) << "\" y=\"" << coord(f.top) << "\" width=\"" << coord(f.w)
    << "\" height=\"" << coord(f.h) << "\" fill=\"none\" stroke=\"#333\"/>\n";
  o << "<text x=\"" << coord(f.left + f.w / 2) << "\" y=\"" << opt.height - 10
    << "\" text-anchor=\"middle\">" << escape(opt.x_label) << "</text>\n";
  o << "<text transform=\"translate(16," << coord(f.top + f.h / 2)
    << ") rotate(-90)\" text-anchor=\"middle\">" << escape(opt.y_label) << "</text>\n";
}

// The legend's width for these names, pixels (0: no named series, no legend).
double legend_width(const std::vector<PlotSeries>& series) {
  size_t longest = 0;
  bool named = false;
  for (const auto& s : series)
    if (!s.name.empty()) longest = std::max(longest, s.name.size()), named = true;
  return named ? 40 + 7.0 * static_cast<double>(longest) : 0;
}

void draw_legend(std::ostringstream& o, const Frame& f, const std::vector<PlotSeries>& series,
                 bool outside) {
  size_t named = 0;
  for (const auto& s : series) named += !s.name.empty();
  if (named == 0) return;
  const double w = legend_width(series);
  const double x = outside ? f.left + f.w + 10 : f.left + f.w - w - 8;
  o << "<rect x=\"" << coord(x) << "\" y=\"" << coord(f.top + 6) << "\" width=\"" << coord(w)
    << "\" height=\"" << 18 * named + 8 << "\" fill=\"white\" fill-opacity=\"0.85\" "
    << "stroke=\"#ccc\"/>\n";
  double y = f.top + 20;
  for (size_t k = 0; k < series.size(); ++k) {
    if (series[k].name.empty()) continue;
    o << "<line x1=\"" << coord(x + 6) << "\" y1=\"" << coord(y) << "\" x2=\"" << coord(x + 26)
      << "\" y2=\"" << coord(y) << "\" stroke=\"" << kColors[k % 6]
      << "\" stroke-width=\"2\"/><text x=\"" << coord(x + 32) << "\" y=\"" << coord(y + 4) << "\">"
      << escape(series[k].name) << "</text>\n";
    y += 18;
  }
}

}  // namespace

std::vector<double> nice_ticks(double lo, double hi, int target) {
  if (!std::isfinite(lo) || !std::isfinite(hi)) return {};
  if (lo > hi) std::swap(lo, hi);
  if (lo == hi) {
    const double d = lo == 0 ? 1 : std::abs(lo) * 0.1;
    lo -= d, hi += d;
  }
  const double raw = (hi - lo) / std::max(target, 1);
  if (!std::isfinite(raw) || raw <= 0) return {lo, hi};  // a span at the ends of double's range
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  const double r = raw / mag;
  const double step = (r < 1.5 ? 1 : r < 3 ? 2 : r < 7 ? 5 : 10) * mag;
  const double k0 = std::floor(lo / step), k1 = std::ceil(hi / step);
  if (!(k1 - k0 <= 100)) return {lo, hi};  // step below double's precision at this magnitude
  // Count with an integer: past 2^53, ++k on a double would not move.
  std::vector<double> t;
  const int n = static_cast<int>(k1 - k0);
  for (int i = 0; i <= n; ++i) {
    const double k = k0 + i;
    t.push_back(k == 0 ? 0.0 : k * step);
  }
  if (t.back() < hi) t.push_back(hi);  // k0 + n rounded down at this magnitude
  return t;
}

std::string line_plot_svg(const std::vector<PlotSeries>& series, const PlotOptions& opt) {
  for (const auto& s : series)
    LLMKIT_CHECK(s.x.size() == s.y.size(), "line_plot_svg: series '", s.name, "' has ", s.x.size(),
                 " x values but ", s.y.size(), " y values");
  auto ok = [&](double x, double y) {
    return std::isfinite(x) && std::isfinite(y) && (!opt.log_y || y > 0);
  };
  auto ty = [&](double y) { return opt.log_y ? std::log10(y) : y; };
  double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
  for (const auto& s : series)
    for (size_t i = 0; i < s.x.size(); ++i)
      if (ok(s.x[i], s.y[i])) {
        x0 = std::min(x0, s.x[i]), x1 = std::max(x1, s.x[i]);
        y0 = std::min(y0, ty(s.y[i])), y1 = std::max(y1, ty(s.y[i]));
      }
  if (!(x0 <= x1)) x0 = 0, x1 = 1, y0 = 0, y1 = 1;  // nothing to draw: a unit frame
  const std::vector<double> xt = nice_ticks(x0, x1), yt = axis_ticks(y0, y1, opt.log_y);
  Frame f{std::min(x0, xt.empty() ? x0 : xt.front()),
          std::max(x1, xt.empty() ? x1 : xt.back()),
          std::min(y0, yt.empty() ? y0 : yt.front()),
          std::max(y1, yt.empty() ? y1 : yt.back()),
          kLeft,
          kTop,
          std::max(1.0, opt.width - kLeft - kRight -
                            (opt.legend_outside ? legend_width(series) + 10 : 0)),
          std::max(1.0, opt.height - kTop - kBottom)};
  if (!(f.x1 > f.x0)) f.x1 = f.x0 + 1;  // a span double cannot resolve
  if (!(f.y1 > f.y0)) f.y1 = f.y0 + 1;
  std::ostringstream o;
  o << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << opt.width << "\" height=\""
    << opt.height << "\" font-family=\"sans-serif\" font-size=\"12\">\n"
    << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
    << "<text x=\"" << opt.width / 2 << "\" y=\"22\" text-anchor=\"middle\" font-size=\"15\">"
    << escape(opt.title) << "</text>\n";
  draw_axes(o, f, xt, yt, opt);
  for (size_t k = 0; k < series.size(); ++k) {
    const auto& s = series[k];
    std::string pts;
    for (size_t i = 0; i < s.x.size(); ++i)
      if (ok(s.x[i], s.y[i])) pts += coord(f.px(s.x[i])) + ',' + coord(f.py(ty(s.y[i]))) + ' ';
    if (!pts.empty())
      o << "<polyline fill=\"none\" stroke=\"" << kColors[k % 6]
        << "\" stroke-width=\"1.5\" points=\"" << pts << "\"/>\n";
    if (opt.markers)
      for (size_t i = 0; i < s.x.size(); ++i)
        if (ok(s.x[i], s.y[i]))
          o << "<circle cx=\"" << coord(f.px(s.x[i])) << "\" cy=\"" << coord(f.py(ty(s.y[i])))
            << "\" r=\"3\" fill=\"" << kColors[k % 6] << "\"/>\n";
  }
  draw_legend(o, f, series, opt.legend_outside);
  o << "</svg>\n";
  return o.str();
}

}  // namespace llmkit::io
