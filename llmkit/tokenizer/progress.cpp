// ProgressBar: redraws at most 10 times a second on a terminal, logs every 5 s elsewhere.
#include "llmkit/tokenizer/progress.h"

#include <unistd.h>

#include <cstdio>

namespace llmkit::tokenizer {

ProgressBar::ProgressBar(std::string label, std::string unit, double scale)
    : label_(std::move(label)),
      unit_(std::move(unit)),
      scale_(scale),
      tty_(isatty(STDERR_FILENO) != 0),
      start_(std::chrono::steady_clock::now()),
      last_(start_) {}

ProgressBar::~ProgressBar() {
  finish();
}

void ProgressBar::update(int64_t done, int64_t total) {
  const auto now = std::chrono::steady_clock::now();
  if (done_ == 0 && total_ == 0) start_ = last_ = now;  // the clock starts with the work
  done_ = done, total_ = total;
  const double since_last = std::chrono::duration<double>(now - last_).count();
  if (since_last < (tty_ ? 0.1 : 5.0) && done < total) return;
  last_ = now;
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  const double rate = elapsed > 0 ? done / scale_ / elapsed : 0.0;
  const double frac = total > 0 ? static_cast<double>(done) / static_cast<double>(total) : 0.0;
  const double eta = frac > 0 ? elapsed * (1.0 - frac) / frac : 0.0;
  if (tty_) {
    constexpr int kWidth = 30;
    std::string bar(static_cast<size_t>(frac * kWidth), '#');
    bar.resize(kWidth, '.');
    std::fprintf(stderr, "\r%s [%s] %5.1f%%  %.1f %s/s  ETA %.0fs  ", label_.c_str(), bar.c_str(),
                 100.0 * frac, rate, unit_.c_str(), eta);
  } else {
    std::fprintf(stderr, "%s: %.1f%% (%.1f %s/s, ETA %.0fs)\n", label_.c_str(), 100.0 * frac, rate,
                 unit_.c_str(), eta);
  }
  std::fflush(stderr);
}

void ProgressBar::finish() {
  if (finished_) return;
  finished_ = true;
  if (tty_ && done_ > 0) std::fprintf(stderr, "\n");
}

}  // namespace llmkit::tokenizer
