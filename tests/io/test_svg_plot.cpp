// The SVG line plot: well-formed output, one polyline per drawable series, escaped text, ticks
// that cover the data, and no crash (or NaN coordinates) on empty, non-finite or log-hostile
// data.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "llmkit/core/error.h"
#include "llmkit/io/svg_plot.h"

using llmkit::io::line_plot_svg;
using llmkit::io::nice_ticks;
using llmkit::io::PlotOptions;
using llmkit::io::PlotSeries;

namespace {

size_t count(const std::string& s, const std::string& what) {
  size_t n = 0;
  for (size_t at = s.find(what); at != std::string::npos; at = s.find(what, at + what.size())) ++n;
  return n;
}

// Start and end tags, balanced brackets (all text is escaped), no NaN/inf coordinates.
void expect_well_formed(const std::string& svg) {
  EXPECT_EQ(svg.rfind("<svg", 0), 0u);
  std::string end = svg;
  while (!end.empty() && std::isspace(static_cast<unsigned char>(end.back()))) end.pop_back();
  EXPECT_TRUE(end.ends_with("</svg>"));
  EXPECT_EQ(count(svg, "<"), count(svg, ">"));
  EXPECT_EQ(count(svg, "<svg"), 1u);
  EXPECT_EQ(svg.find("nan"), std::string::npos);
  EXPECT_EQ(svg.find("inf"), std::string::npos);
}

PlotSeries loss_curve(const std::string& name, int n, double scale) {
  PlotSeries s{name, {}, {}};
  for (int i = 0; i <= n; ++i) {
    s.x.push_back(i * 10.0);
    s.y.push_back(scale * (2.0 + 8.0 * std::exp(-i / 20.0)));
  }
  return s;
}

}  // namespace

TEST(SvgPlot, TrainAndValCurves) {
  PlotOptions opt{.title = "training loss", .x_label = "step", .y_label = "loss"};
  const std::string svg =
      line_plot_svg({loss_curve("train loss", 100, 1.0), loss_curve("val loss", 10, 1.1)}, opt);
  expect_well_formed(svg);
  EXPECT_EQ(count(svg, "<polyline"), 2u);
  EXPECT_NE(svg.find(">train loss<"), std::string::npos);
  EXPECT_NE(svg.find(">val loss<"), std::string::npos);
  EXPECT_NE(svg.find(">training loss<"), std::string::npos);
  EXPECT_NE(svg.find("width=\"800\" height=\"450\""), std::string::npos);
  // x runs 0..1000: round ticks at multiples of 200 label the axis.
  for (const char* t : {">0<", ">200<", ">1000<"}) EXPECT_NE(svg.find(t), std::string::npos) << t;
}

TEST(SvgPlot, EmptySeriesDrawNoLine) {
  PlotSeries empty{"val loss", {}, {}};
  PlotSeries all_nan{"non-finite", {1, 2}, {NAN, INFINITY}};
  const std::string one = line_plot_svg({loss_curve("train", 5, 1), empty, all_nan}, {});
  expect_well_formed(one);
  EXPECT_EQ(count(one, "<polyline"), 1u);
  EXPECT_NE(one.find(">val loss<"), std::string::npos);  // still in the legend
  const std::string none = line_plot_svg({}, {});
  expect_well_formed(none);
  EXPECT_EQ(count(none, "<polyline"), 0u);
  expect_well_formed(line_plot_svg({empty}, {.log_y = true}));
}

TEST(SvgPlot, NonFinitePointsAreSkipped) {
  const double inf = std::numeric_limits<double>::infinity();
  PlotSeries s{"s", {0, 1, 2, 3, NAN, 5}, {1, NAN, 3, inf, 5, -inf}};
  const std::string svg = line_plot_svg({s}, {});
  expect_well_formed(svg);
  const size_t at = svg.find("points=\"");
  ASSERT_NE(at, std::string::npos);
  const std::string pts = svg.substr(at, svg.find("\"/>", at) - at);
  EXPECT_EQ(count(pts, ","), 2u) << pts;  // (0, 1) and (2, 3)
}

TEST(SvgPlot, EscapesText) {
  PlotOptions opt{.title = "a < b & c > d", .x_label = "\"x\"", .y_label = "y\x01"};
  const std::string svg = line_plot_svg({{"loss & <acc>", {0, 1}, {0, 1}}}, opt);
  expect_well_formed(svg);
  EXPECT_NE(svg.find("loss &amp; &lt;acc&gt;"), std::string::npos);
  EXPECT_NE(svg.find("a &lt; b &amp; c &gt; d"), std::string::npos);
  EXPECT_NE(svg.find("&quot;x&quot;"), std::string::npos);
  EXPECT_EQ(svg.find("loss & <"), std::string::npos);
  EXPECT_EQ(svg.find('\x01'), std::string::npos);
}

TEST(SvgPlot, TicksCoverTheData) {
  const std::pair<double, double> ranges[] = {
      {0, 1000}, {2.31, 10.9}, {-3.5, 7.25},     {0.001, 0.0013},   {-1e9, -2e8},
      {5, 5},    {0, 0},       {1e-300, 3e-300}, {1e17, 1e17 + 16}, {-1e308, 1e308}};
  for (auto [lo, hi] : ranges) {
    const std::vector<double> t = nice_ticks(lo, hi);
    ASSERT_GE(t.size(), 2u) << lo << " " << hi;
    EXPECT_LE(t.size(), 12u) << lo << " " << hi;
    EXPECT_LE(t.front(), lo) << lo << " " << hi;
    EXPECT_GE(t.back(), hi) << lo << " " << hi;
    EXPECT_TRUE(std::is_sorted(t.begin(), t.end()));
  }
  EXPECT_EQ(nice_ticks(0, 1000), (std::vector<double>{0, 200, 400, 600, 800, 1000}));
  EXPECT_TRUE(nice_ticks(0, NAN).empty());
}

TEST(SvgPlot, LogYSkipsNonPositive) {
  PlotSeries s{"acc", {1, 2, 3, 4, 5}, {0, -1, 1e-3, 0.1, 10}};
  const std::string svg = line_plot_svg({s}, {.log_y = true});
  expect_well_formed(svg);
  EXPECT_EQ(count(svg, "<polyline"), 1u);
  EXPECT_NE(svg.find(">0.001<"), std::string::npos);  // decade ticks
  EXPECT_NE(svg.find(">10<"), std::string::npos);
  // Only non-positive values: nothing to draw, still a valid document.
  const std::string none = line_plot_svg({{"z", {1, 2}, {0, -5}}}, {.log_y = true});
  expect_well_formed(none);
  EXPECT_EQ(count(none, "<polyline"), 0u);
  // A narrow log range ticks at round values of y itself.
  expect_well_formed(line_plot_svg({{"n", {0, 1}, {2.5, 3.5}}}, {.log_y = true}));
}

TEST(SvgPlot, OddSizesAndMismatchedSeries) {
  expect_well_formed(line_plot_svg({loss_curve("a", 3, 1)}, {.width = 10, .height = 10}));
  EXPECT_THROW(line_plot_svg({{"bad", {1, 2, 3}, {1, 2}}}, {}), llmkit::Error);
}

// Markers put a dot on every drawable point (a one-point series is visible only so); the legend
// outside sits right of the plot box, which shrinks to make room.
TEST(SvgPlot, MarkersAndLegendOutside) {
  PlotOptions opt{.title = "accuracy", .x_label = "n", .y_label = "acc"};
  opt.markers = true;
  const PlotSeries one{"qlora", {13}, {0.83}};
  PlotSeries four{"lora", {5, 7, 10, 13}, {0.53, 0.74, NAN, 0.83}};
  std::string svg = line_plot_svg({four, one}, opt);
  expect_well_formed(svg);
  EXPECT_EQ(count(svg, "<circle"), 4u);  // three finite points of lora, one of qlora
  const auto legend_x = [](const std::string& s) {
    const auto at = s.find("<rect x=\"", s.find("<text transform"));
    return std::stod(s.substr(at + 9));
  };
  EXPECT_LT(legend_x(svg), 780);  // inside the box, which ends at 800 - 20
  opt.legend_outside = true;
  svg = line_plot_svg({four, one}, opt);
  expect_well_formed(svg);
  const auto box = svg.find("<rect x=\"70.00\" y=\"40.00\" width=\"");
  ASSERT_NE(box, std::string::npos);
  const double box_right = 70 + std::stod(svg.substr(box + 34));
  EXPECT_GT(legend_x(svg), box_right);
  EXPECT_LE(legend_x(svg) + 40 + 7 * 5, 800);
}
