// The server's counters and latency histograms, written in Prometheus' text format (0.0.4) for
// GET /metrics: requests by endpoint and status, tokens, request time and time to first token,
// with the queue depth and busy slots read at scrape time. Thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace llmkit::serve {

// A cumulative histogram with fixed upper bounds (seconds).
class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  void observe(double v);
  // "# HELP", "# TYPE" and the _bucket / _sum / _count lines of `name`.
  std::string render(const std::string& name, const std::string& help) const;

 private:
  std::vector<double> bounds_;
  std::vector<uint64_t> counts_;  // per bucket (not cumulative); one more for +Inf
  double sum_ = 0;
  uint64_t count_ = 0;
};

struct SchedulerStats;  // scheduler.h: the token counters and gauges read at scrape time

class Metrics {
 public:
  Metrics();
  void request(const std::string& endpoint, int status, double seconds);
  void first_token(double seconds);
  std::string render(const SchedulerStats& g) const;

 private:
  mutable std::mutex mu_;
  std::map<std::pair<std::string, int>, uint64_t> requests_;
  Histogram request_seconds_, ttft_seconds_;
};

}  // namespace llmkit::serve
