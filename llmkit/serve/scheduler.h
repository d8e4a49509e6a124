// Continuous batching (10.x 챗봇 서빙): many requests decode together in one forward pass per
// step, so the weights are read once per step for all of them instead of once per request. The
// engine holds a pool of slots (infer::Engine, one KV cache each); the scheduler's thread loops:
//
//   admit    queued requests take free slots (a request with n choices takes n), reusing the
//            longest prefix some free slot already holds (a chat's earlier turns)
//   step     one eval_batch(): every decoding sequence feeds its last token (one row each), and
//            prompts still being read feed a chunk, up to max_batch_tokens() rows in all
//   sample   each sequence that got logits draws its next token (its own sampler and seed), the
//            text is released through a StopMatcher, and finished sequences free their slots
//
// New requests join between steps; a cancelled one (the client went away) leaves at the next step.
// Each sequence gets exactly the tokens it gets when it runs alone (the engine keeps every row's
// bits independent of the batch), so batching never changes an answer.
// Not here: HTTP and JSON (server.h, openai.h), prompts and chat templates (the caller's).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "llmkit/infer/engine.h"
#include "llmkit/infer/sampler.h"
#include "llmkit/tokenizer/tokenizer.h"

namespace llmkit::serve {

// One generation request: n choices of one prompt.
struct Job {
  std::vector<int32_t> prompt;
  int n = 1;                              // choices; each takes a slot
  int64_t max_tokens = 256;               // new tokens per choice
  infer::SamplerOptions sampler;          // choice i draws with seed sampler.seed + i
  std::vector<std::string> stop_strings;  // cut the text before the first one (never sent)
  std::vector<int32_t> stop_ids;          // end of turn; not part of the text
  int logprobs = -1;  // -1: none; k >= 0: each token's log-probability and the k most likely
};

struct TokenLogprob {
  int32_t id = 0;
  std::string token;  // the token's bytes (may be part of a UTF-8 character)
  float logprob = 0;  // log softmax of the model's logits (before temperature and top-p)
  std::vector<std::pair<int32_t, float>> top;  // most likely first
};

struct Event {
  int choice = 0;
  std::string text;                    // newly released text (may be empty)
  std::vector<TokenLogprob> logprobs;  // the tokens chosen since this choice's last event
  std::string finish;                  // "", or "stop" / "length" / "cancelled" / "error"
  std::string error;                   // with finish "error"
};

struct Usage {
  int64_t prompt_tokens = 0, completion_tokens = 0;
  int64_t cached_tokens = 0;  // prompt tokens whose KV a slot already held (not recomputed)
};

// One request's side of the scheduler: its events in order. Thread-safe.
class Stream {
 public:
  // Waits up to `timeout` for events and moves them to `out`. Returns false once every choice
  // has finished and all events were taken.
  bool next(std::vector<Event>& out, std::chrono::milliseconds timeout);
  // The client is gone: the scheduler stops its choices at the next step and frees their slots.
  void cancel() { cancelled_ = true; }
  bool cancelled() const { return cancelled_; }
  Usage usage() const;
  // Seconds from submit to the first token of any choice (-1: none yet), and to the end.
  double first_token_seconds() const;
  double total_seconds() const;

 private:
  friend class Scheduler;
  void push(Event e);
  void finish_choice();

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Event> events_;
  int open_choices_ = 0;
  Usage usage_;
  std::atomic<bool> cancelled_{false};
  std::chrono::steady_clock::time_point submitted_;
  double first_token_ = -1, total_ = -1;
};

struct SchedulerOptions {
  int max_queue = 64;  // requests waiting for slots; more are refused (Overloaded)
};

// Thrown by submit() when the queue is full (the server answers 503).
struct Overloaded : Error {
  using Error::Error;
};
// Thrown by submit() when the prompt leaves no room in the context (400
// context_length_exceeded).
struct ContextOverflow : Error {
  using Error::Error;
};

struct SchedulerStats {
  int slots = 0, busy = 0, queued = 0;
  int64_t steps = 0, batched_rows = 0;  // forward passes, and the rows they fed in all
  int64_t generated = 0, prompt = 0, cached = 0, cancelled = 0;
};

class Scheduler {
 public:
  // Runs `engine` (all its slots) on a thread of its own until destroyed. The engine and the
  // tokenizer (which turns ids into text) must outlive the scheduler; the engine is used by
  // nothing else meanwhile.
  Scheduler(infer::Engine& engine, const tokenizer::Tokenizer& tok, SchedulerOptions options = {});
  ~Scheduler();  // finishes queued and running requests with "error" (shutting down)
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Queues a job. Errors (before anything is queued): an empty prompt, n < 1 or more choices
  // than slots, a prompt that leaves no room for one new token in the context, max_tokens < 1,
  // an id outside the vocabulary, bad sampler options; Overloaded when the queue is full.
  std::shared_ptr<Stream> submit(Job job);

  SchedulerStats stats() const;
  int64_t context() const { return context_; }
  int slots() const { return slots_; }

 private:
  struct Seq;
  struct Active;
  void loop();
  void admit();
  void step();
  void emit(Active& a, Seq& s, int32_t id, std::span<const float> logits);
  void finish(Active& a, Seq& s, const std::string& reason, const std::string& error = "");
  void release_finished();
  void fail_all(const std::string& error);

  infer::Engine& engine_;
  const tokenizer::Tokenizer& tok_;
  const SchedulerOptions options_;
  const int slots_;
  const int64_t context_, vocab_;

  mutable std::mutex mu_;  // guards queue_, stats_, stop_
  std::condition_variable cv_;
  std::deque<std::pair<Job, std::shared_ptr<Stream>>> queue_;
  SchedulerStats stats_;
  bool stop_ = false;

  // The loop thread's own state.
  std::vector<std::unique_ptr<Active>> active_;
  std::vector<bool> slot_busy_;
  std::vector<std::vector<int32_t>> slot_tokens_;  // what each slot's cache holds
  std::vector<float> logprob_work_;
  std::thread thread_;
};

}  // namespace llmkit::serve
