// A dependency-free SVG line plot: the training loss curve in a run directory (train and
// validation loss against step), and later accuracy-against-length plots in docs.
#pragma once

#include <string>
#include <vector>

namespace llmkit::io {

struct PlotSeries {
  std::string name;
  std::vector<double> x, y;
};

struct PlotOptions {
  std::string title, x_label, y_label;
  int width = 800, height = 450;
  bool log_y = false;
};

// Non-finite points (and non-positive ones with log_y) are skipped.
std::string line_plot_svg(const std::vector<PlotSeries>& series, const PlotOptions& opt);

}  // namespace llmkit::io
