// A dependency-free SVG line plot: the training loss curve in a run directory (train and
// validation loss against step), and later accuracy-against-length plots in docs.
// Not a plotting library: one kind of chart, linear x, linear or log10 y, a fixed layout.
#pragma once

#include <string>
#include <vector>

namespace llmkit::io {

struct PlotSeries {
  std::string name;          // legend text; a series with an empty name gets no legend entry
  std::vector<double> x, y;  // same length (an Error otherwise)
};

struct PlotOptions {
  std::string title{}, x_label{}, y_label{};
  int width = 800, height = 450;  // pixels
  bool log_y = false;
  bool markers = false;         // a dot at every point (a series of one point shows only so)
  bool legend_outside = false;  // the legend in a right margin, clear of the lines
};

// A whole SVG document. Non-finite points (and non-positive ones with log_y) are skipped; a
// series left with no points draws no line. Text is XML-escaped. Colours cycle through six.
// Numbers are written locale-independently.
std::string line_plot_svg(const std::vector<PlotSeries>& series, const PlotOptions& opt);

// About `target` round tick values (1, 2 or 5 times a power of ten, evenly spaced), the first
// <= lo and the last >= hi, so an axis drawn from the first to the last covers [lo, hi].
// lo == hi is widened around the value. Non-finite bounds give no ticks.
std::vector<double> nice_ticks(double lo, double hi, int target = 5);

}  // namespace llmkit::io
