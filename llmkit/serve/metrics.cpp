// serve/metrics.h: Prometheus text exposition.
#include "llmkit/serve/metrics.h"

#include <algorithm>
#include <sstream>

#include "llmkit/serve/scheduler.h"

namespace llmkit::serve {

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), counts_(bounds_.size() + 1, 0) {}

void Histogram::observe(double v) {
  const size_t i = std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin();
  ++counts_[i];
  sum_ += v;
  ++count_;
}

std::string Histogram::render(const std::string& name, const std::string& help) const {
  std::ostringstream o;
  o << "# HELP " << name << " " << help << "\n# TYPE " << name << " histogram\n";
  uint64_t cum = 0;
  for (size_t i = 0; i < bounds_.size(); ++i) {
    cum += counts_[i];
    o << name << "_bucket{le=\"" << bounds_[i] << "\"} " << cum << "\n";
  }
  cum += counts_.back();
  o << name << "_bucket{le=\"+Inf\"} " << cum << "\n";
  o << name << "_sum " << sum_ << "\n" << name << "_count " << count_ << "\n";
  return o.str();
}

namespace {
const std::vector<double> kLatency = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                      1,     2.5,  5,     10,   30,  60,   120};
}

Metrics::Metrics() : request_seconds_(kLatency), ttft_seconds_(kLatency) {}

void Metrics::request(const std::string& endpoint, int status, double seconds) {
  std::lock_guard lock(mu_);
  ++requests_[{endpoint, status}];
  request_seconds_.observe(seconds);
}

void Metrics::first_token(double seconds) {
  std::lock_guard lock(mu_);
  ttft_seconds_.observe(seconds);
}

std::string Metrics::render(const SchedulerStats& g) const {
  std::ostringstream o;
  auto counter = [&](const char* name, const char* help, int64_t v) {
    o << "# HELP " << name << " " << help << "\n# TYPE " << name << " counter\n"
      << name << " " << v << "\n";
  };
  auto gauge = [&](const char* name, const char* help, int64_t v) {
    o << "# HELP " << name << " " << help << "\n# TYPE " << name << " gauge\n"
      << name << " " << v << "\n";
  };
  std::lock_guard lock(mu_);
  o << "# HELP llmkit_requests_total HTTP requests answered, by endpoint and status.\n"
    << "# TYPE llmkit_requests_total counter\n";
  for (const auto& [key, n] : requests_)
    o << "llmkit_requests_total{endpoint=\"" << key.first << "\",status=\"" << key.second << "\"} "
      << n << "\n";
  counter("llmkit_prompt_tokens_total", "Prompt tokens of admitted generation requests.", g.prompt);
  counter("llmkit_prompt_tokens_cached_total",
          "Prompt tokens whose KV a slot already held (not recomputed).", g.cached);
  counter("llmkit_generated_tokens_total", "Tokens generated.", g.generated);
  counter("llmkit_cancelled_total", "Generations stopped because the client went away.",
          g.cancelled);
  counter("llmkit_batch_steps_total", "Batched forward passes.", g.steps);
  counter("llmkit_batch_rows_total", "Token rows fed by the batched forward passes.",
          g.batched_rows);
  gauge("llmkit_queue_depth", "Requests waiting for a slot.", g.queued);
  gauge("llmkit_slots", "KV cache slots (sequences decoded together).", g.slots);
  gauge("llmkit_slots_busy", "Slots in use.", g.busy);
  o << request_seconds_.render("llmkit_request_seconds",
                               "Time from a request's arrival to its last byte.");
  o << ttft_seconds_.render("llmkit_time_to_first_token_seconds",
                            "Time from a generation request's arrival to its first token.");
  return o.str();
}

}  // namespace llmkit::serve
