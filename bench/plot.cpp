// bench_plot: draws experiment results kept as TSV (one row per point) as an SVG line plot with
// llmkit's own plotter (io/svg_plot.h), so the docs' figures need no Python plotting package.
// Usage: bench_plot --tsv F --x COL --y COL [--series COL] [--where COL=V ...] [--log2-x]
//                   [--markers] [--legend-outside] [--title T] [--x-label T] [--y-label T]
//                   --out F.svg
// Rows with a non-numeric x or y are skipped (a "failed" run); --where keeps matching rows only.
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "llmkit/io/atomic_file.h"
#include "llmkit/io/svg_plot.h"

namespace {

std::vector<std::string> split_tabs(const std::string& line) {
  std::vector<std::string> out;
  std::stringstream ss(line);
  std::string f;
  while (std::getline(ss, f, '\t')) out.push_back(f);
  return out;
}

int column(const std::vector<std::string>& header, const std::string& name) {
  for (size_t i = 0; i < header.size(); ++i)
    if (header[i] == name) return static_cast<int>(i);
  std::fprintf(stderr, "bench_plot: no column '%s'\n", name.c_str());
  std::exit(2);
}

bool number(const std::string& s, double* v) {
  char* end = nullptr;
  *v = std::strtod(s.c_str(), &end);
  return !s.empty() && end == s.c_str() + s.size() && std::isfinite(*v);
}

}  // namespace

int main(int argc, char** argv) {
  std::map<std::string, std::string> opt;
  std::vector<std::pair<std::string, std::string>> where;
  bool log2_x = false, markers = false, legend_outside = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--log2-x") {
      log2_x = true;
    } else if (a == "--markers") {
      markers = true;
    } else if (a == "--legend-outside") {
      legend_outside = true;
    } else if (a.rfind("--", 0) == 0 && i + 1 < argc) {
      const std::string v = argv[++i];
      if (a == "--where") {
        const auto eq = v.find('=');
        if (eq == std::string::npos) return std::fprintf(stderr, "bench_plot: --where COL=V\n"), 2;
        where.emplace_back(v.substr(0, eq), v.substr(eq + 1));
      } else {
        opt[a.substr(2)] = v;
      }
    } else {
      return std::fprintf(stderr, "bench_plot: unexpected argument '%s'\n", a.c_str()), 2;
    }
  }
  for (const char* need : {"tsv", "x", "y", "out"})
    if (!opt.count(need)) return std::fprintf(stderr, "bench_plot: --%s is required\n", need), 2;
  std::ifstream in(opt["tsv"]);
  if (!in) return std::fprintf(stderr, "bench_plot: cannot read %s\n", opt["tsv"].c_str()), 1;
  std::string line;
  std::getline(in, line);
  const std::vector<std::string> header = split_tabs(line);
  const int xc = column(header, opt["x"]), yc = column(header, opt["y"]);
  const int sc = opt.count("series") ? column(header, opt["series"]) : -1;
  std::vector<std::pair<int, std::string>> filters;
  for (auto& [c, v] : where) filters.emplace_back(column(header, c), v);
  std::map<std::string, llmkit::io::PlotSeries> series;
  std::vector<std::string> order;
  while (std::getline(in, line)) {
    const std::vector<std::string> f = split_tabs(line);
    bool keep = static_cast<int>(f.size()) == static_cast<int>(header.size());
    for (auto& [c, v] : filters) keep = keep && f[c] == v;
    double x = 0, y = 0;
    if (!keep || !number(f[xc], &x) || !number(f[yc], &y)) continue;
    const std::string name = sc >= 0 ? f[sc] : opt["y"];
    if (!series.count(name)) order.push_back(name);
    auto& s = series[name];
    s.name = name;
    s.x.push_back(log2_x ? std::log2(x) : x);
    s.y.push_back(y);
  }
  std::vector<llmkit::io::PlotSeries> all;
  for (const auto& n : order) all.push_back(series[n]);
  llmkit::io::PlotOptions po;
  po.title = opt["title"];
  po.markers = markers;
  po.legend_outside = legend_outside;
  po.x_label = opt.count("x-label") ? opt["x-label"] : opt["x"];
  po.y_label = opt.count("y-label") ? opt["y-label"] : opt["y"];
  llmkit::io::write_file_atomic(opt["out"], llmkit::io::line_plot_svg(all, po));
  std::fprintf(stderr, "bench_plot: %zu series -> %s\n", all.size(), opt["out"].c_str());
  return 0;
}
