// A progress bar for long tokenizer work (training): on a terminal, one line redrawn in place with
// percentage, rate and ETA; otherwise a plain log line at most every few seconds. Writes to
// stderr only. Belongs in core once other layers need it (it needs nothing from the tokenizer).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace llmkit::tokenizer {

class ProgressBar {
 public:
  // `unit` names what is counted ("MB", "merges"); `scale` divides raw counts for display.
  ProgressBar(std::string label, std::string unit, double scale = 1.0);
  ~ProgressBar();
  void update(int64_t done, int64_t total);
  void finish();

 private:
  std::string label_, unit_;
  double scale_;
  bool tty_, finished_ = false;
  int64_t done_ = 0, total_ = 0;
  std::chrono::steady_clock::time_point start_, last_;
};

}  // namespace llmkit::tokenizer
