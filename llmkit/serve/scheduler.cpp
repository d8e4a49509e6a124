// serve::Scheduler (scheduler.h): the continuous-batching loop over infer::Engine's slots.
#include "llmkit/serve/scheduler.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "llmkit/infer/perplexity.h"
#include "llmkit/infer/text_stream.h"

namespace llmkit::serve {

namespace {

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

// Tokens a slot's cache holds that `prompt` starts with, leaving at least one prompt token to
// feed (its logits give the first new token).
size_t reusable_prefix(const std::vector<int32_t>& cached, const std::vector<int32_t>& prompt) {
  const size_t limit = std::min(cached.size(), prompt.size() - 1);
  size_t n = 0;
  while (n < limit && cached[n] == prompt[n]) ++n;
  return n;
}

}  // namespace

// ---- Stream ----

bool Stream::next(std::vector<Event>& out, std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  cv_.wait_for(lock, timeout, [&] { return !events_.empty() || open_choices_ == 0; });
  while (!events_.empty()) {
    out.push_back(std::move(events_.front()));
    events_.pop_front();
  }
  return open_choices_ > 0 || !out.empty();
}

Usage Stream::usage() const {
  std::lock_guard lock(mu_);
  return usage_;
}

double Stream::first_token_seconds() const {
  std::lock_guard lock(mu_);
  return first_token_;
}

double Stream::total_seconds() const {
  std::lock_guard lock(mu_);
  return total_;
}

void Stream::push(Event e) {
  {
    std::lock_guard lock(mu_);
    if (first_token_ < 0 && (!e.text.empty() || !e.logprobs.empty()))
      first_token_ = seconds_since(submitted_);
    events_.push_back(std::move(e));
  }
  cv_.notify_all();
}

void Stream::finish_choice() {
  {
    std::lock_guard lock(mu_);
    if (--open_choices_ == 0) total_ = seconds_since(submitted_);
  }
  cv_.notify_all();
}

// ---- Scheduler ----

// One choice of a request, decoding in a slot.
struct Scheduler::Seq {
  int choice = 0, slot = -1;
  infer::Sampler sampler;
  infer::TokenTextStream text;
  infer::StopMatcher matcher;
  std::vector<int32_t> history;  // prompt + generated (the repetition penalty reads it)
  int64_t generated = 0;
  int32_t last = -1;  // sampled, not yet fed
  bool done = false;
  Seq(int c, const Job& job, const tokenizer::Tokenizer& tok)
      : choice(c),
        sampler([&] {
          infer::SamplerOptions o = job.sampler;
          o.seed += static_cast<uint64_t>(c);
          return o;
        }()),
        text(tok),
        matcher(job.stop_strings),
        history(job.prompt) {}
};

// A request in slots: its choices, and how much of the prompt the first choice's slot has read.
struct Scheduler::Active {
  Job job;
  std::shared_ptr<Stream> stream;
  std::vector<Seq> seqs;
  size_t fed = 0;  // prompt tokens in seqs[0]'s slot
  bool prefilled = false;
};

Scheduler::Scheduler(infer::Engine& engine, const tokenizer::Tokenizer& tok,
                     SchedulerOptions options)
    : engine_(engine),
      tok_(tok),
      options_(options),
      slots_(engine.slots()),
      context_(engine.context()),
      vocab_(engine.vocab()),
      slot_busy_(static_cast<size_t>(engine.slots()), false),
      slot_tokens_(static_cast<size_t>(engine.slots())) {
  LLMKIT_CHECK(options.max_queue >= 0, "scheduler: max_queue must be >= 0");
  LLMKIT_CHECK(slots_ <= engine.max_batch_tokens(), "scheduler: ", slots_,
               " slots exceed the engine's ", engine.max_batch_tokens(), " rows per step");
  stats_.slots = slots_;
  for (int s = 0; s < slots_; ++s) engine_.truncate_slot(s, 0);
  thread_ = std::thread([this] { loop(); });
}

Scheduler::~Scheduler() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

std::shared_ptr<Stream> Scheduler::submit(Job job) {
  LLMKIT_CHECK(!job.prompt.empty(), "the prompt is empty");
  LLMKIT_CHECK(job.n >= 1 && job.n <= slots_, "n must be in [1, ", slots_, "] (the server's ",
               slots_, " slots), got ", job.n);
  LLMKIT_CHECK(job.max_tokens >= 1, "max_tokens must be at least 1, got ", job.max_tokens);
  const int64_t len = static_cast<int64_t>(job.prompt.size());
  if (len >= context_)
    throw ContextOverflow(detail::concat("the prompt has ", len, " tokens; the context holds ",
                                         context_, " (prompt and reply together): shorten it"));
  for (int32_t id : job.prompt)
    LLMKIT_CHECK(id >= 0 && id < vocab_, "token id ", id, " is outside the vocabulary (", vocab_,
                 ")");
  (void)infer::Sampler(job.sampler);  // checks the options here, in the caller's thread
  auto stream = std::make_shared<Stream>();
  stream->submitted_ = std::chrono::steady_clock::now();
  stream->open_choices_ = job.n;
  stream->usage_.prompt_tokens = len;
  {
    std::lock_guard lock(mu_);
    if (static_cast<int>(queue_.size()) >= options_.max_queue)
      throw Overloaded(detail::concat("the server is busy: ", queue_.size(),
                                      " requests are already waiting; try again later"));
    queue_.emplace_back(std::move(job), stream);
    stats_.queued = static_cast<int>(queue_.size());
  }
  cv_.notify_all();
  return stream;
}

SchedulerStats Scheduler::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

void Scheduler::loop() {
  for (;;) {
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return stop_ || !queue_.empty() || !active_.empty(); });
      if (stop_) break;
    }
    try {
      admit();
      if (!active_.empty()) step();
    } catch (const std::exception& e) {
      fail_all(e.what());
    }
    release_finished();
  }
  fail_all("the server is shutting down");
}

// Moves queued jobs into free slots, first come first served: the head of the queue waits until
// it has as many slots as choices.
void Scheduler::admit() {
  for (;;) {
    std::pair<Job, std::shared_ptr<Stream>> item;
    {
      std::lock_guard lock(mu_);
      // Requests whose client left while queued end here.
      for (auto it = queue_.begin(); it != queue_.end();) {
        if (it->second->cancelled()) {
          Stream& s = *it->second;
          for (int c = 0; c < it->first.n; ++c) {
            s.push({c, "", {}, "cancelled", ""});
            s.finish_choice();
          }
          ++stats_.cancelled;
          it = queue_.erase(it);
        } else {
          ++it;
        }
      }
      stats_.queued = static_cast<int>(queue_.size());
      if (queue_.empty()) return;
      const int free = static_cast<int>(std::count(slot_busy_.begin(), slot_busy_.end(), false));
      if (free < queue_.front().first.n) return;
      item = std::move(queue_.front());
      queue_.pop_front();
      stats_.queued = static_cast<int>(queue_.size());
    }
    auto a = std::make_unique<Active>();
    a->job = std::move(item.first);
    a->stream = std::move(item.second);
    const Job& job = a->job;
    // The first choice's slot: the free one holding the longest prefix of the prompt.
    int best = -1;
    size_t best_len = 0;
    for (int s = 0; s < slots_; ++s) {
      if (slot_busy_[s]) continue;
      const size_t n = reusable_prefix(slot_tokens_[s], job.prompt);
      if (best < 0 || n > best_len) best = s, best_len = n;
    }
    a->seqs.reserve(static_cast<size_t>(job.n));
    for (int c = 0; c < job.n; ++c) {
      Seq& q = a->seqs.emplace_back(c, job, tok_);
      if (c == 0) {
        q.slot = best;
      } else {  // another free slot, preferring those that hold least
        int pick = -1;
        for (int s = 0; s < slots_; ++s)
          if (!slot_busy_[s] && (pick < 0 || slot_tokens_[s].size() < slot_tokens_[pick].size()))
            pick = s;
        q.slot = pick;
      }
      slot_busy_[q.slot] = true;
    }
    engine_.truncate_slot(best, static_cast<int64_t>(best_len));
    slot_tokens_[best].resize(best_len);
    a->fed = best_len;
    {
      std::lock_guard lock(mu_);
      stats_.busy += job.n;
      stats_.prompt += static_cast<int64_t>(job.prompt.size());
      stats_.cached += static_cast<int64_t>(best_len);
    }
    {
      std::lock_guard lock(a->stream->mu_);
      a->stream->usage_.cached_tokens = static_cast<int64_t>(best_len);
    }
    active_.push_back(std::move(a));
  }
}

// One forward pass over every running sequence, then the sampling.
void Scheduler::step() {
  // Cancelled requests leave first.
  for (auto& a : active_)
    if (a->stream->cancelled())
      for (Seq& s : a->seqs)
        if (!s.done) finish(*a, s, "cancelled");

  struct Row {
    Active* a;
    Seq* seq;      // decoding: this choice; prefilling: nullptr
    size_t chunk;  // prefill tokens fed
  };
  std::vector<infer::BatchSegment> segs;
  std::vector<Row> rows;
  int64_t budget = engine_.max_batch_tokens();
  for (auto& a : active_) {
    if (!a->prefilled) continue;
    for (Seq& s : a->seqs) {
      if (s.done) continue;
      segs.push_back({s.slot, std::span<const int32_t>(&s.last, 1)});
      rows.push_back({a.get(), &s, 0});
      --budget;
    }
  }
  for (auto& a : active_) {
    if (a->prefilled || a->seqs[0].done || budget <= 0) continue;
    const size_t left = a->job.prompt.size() - a->fed;
    const size_t chunk = std::min<size_t>(left, static_cast<size_t>(budget));
    segs.push_back({a->seqs[0].slot, std::span(a->job.prompt).subspan(a->fed, chunk)});
    rows.push_back({a.get(), nullptr, chunk});
    budget -= static_cast<int64_t>(chunk);
  }
  if (segs.empty()) return;
  const auto logits = engine_.eval_batch(segs);
  {
    std::lock_guard lock(mu_);
    ++stats_.steps;
    stats_.batched_rows += engine_.max_batch_tokens() - budget;
  }
  for (size_t i = 0; i < rows.size(); ++i) {
    const Row& r = rows[i];
    const auto row = logits.subspan(i * static_cast<size_t>(vocab_), static_cast<size_t>(vocab_));
    if (r.seq != nullptr) {
      Seq& s = *r.seq;
      slot_tokens_[s.slot].push_back(s.last);
      emit(*r.a, s, s.sampler.sample(row, s.history), row);
      continue;
    }
    Active& a = *r.a;
    const int slot0 = a.seqs[0].slot;
    slot_tokens_[slot0].insert(slot_tokens_[slot0].end(), a.job.prompt.begin() + a.fed,
                               a.job.prompt.begin() + a.fed + r.chunk);
    a.fed += r.chunk;
    if (a.fed < a.job.prompt.size()) continue;
    a.prefilled = true;
    // The other choices start from a copy of the prompt's cache.
    for (size_t c = 1; c < a.seqs.size(); ++c) {
      engine_.copy_slot(slot0, a.seqs[c].slot, static_cast<int64_t>(a.fed));
      slot_tokens_[a.seqs[c].slot] = slot_tokens_[slot0];
    }
    for (Seq& s : a.seqs) emit(a, s, s.sampler.sample(row, s.history), row);
  }
}

// A choice drew `id` from `logits`: release its text, or finish it.
void Scheduler::emit(Active& a, Seq& s, int32_t id, std::span<const float> logits) {
  Event e;
  e.choice = s.choice;
  const bool stop_id =
      std::find(a.job.stop_ids.begin(), a.job.stop_ids.end(), id) != a.job.stop_ids.end();
  if (!stop_id) {
    ++s.generated;
    s.history.push_back(id);
    s.last = id;
    {
      std::lock_guard lock(a.stream->mu_);
      ++a.stream->usage_.completion_tokens;
    }
    {
      std::lock_guard lock(mu_);
      ++stats_.generated;
    }
    if (a.job.logprobs >= 0) {
      const double lse = infer::log_sum_exp(logits);  // log softmax of the raw logits
      TokenLogprob lp;
      lp.id = id;
      lp.token = tok_.decode(std::span<const int32_t>(&id, 1));
      lp.logprob = static_cast<float>(logits[id] - lse);
      const size_t k = std::min<size_t>(static_cast<size_t>(a.job.logprobs), logits.size());
      std::vector<int32_t> order(logits.size());
      std::iota(order.begin(), order.end(), 0);
      std::partial_sort(order.begin(), order.begin() + k, order.end(), [&](int32_t x, int32_t y) {
        return logits[x] > logits[y] || (logits[x] == logits[y] && x < y);
      });
      for (size_t j = 0; j < k; ++j)
        lp.top.emplace_back(order[j], static_cast<float>(logits[order[j]] - lse));
      e.logprobs.push_back(std::move(lp));
    }
    e.text = s.matcher.push(s.text.push(id));
  }
  if (!e.text.empty() || !e.logprobs.empty()) a.stream->push(std::move(e));
  if (stop_id || s.matcher.stopped()) return finish(a, s, "stop");
  // The next step feeds `last` at slot_pos: it needs one more position.
  if (s.generated >= a.job.max_tokens || engine_.slot_pos(s.slot) + 1 > context_)
    return finish(a, s, "length");
}

void Scheduler::finish(Active& a, Seq& s, const std::string& reason, const std::string& error) {
  if (s.done) return;
  s.done = true;
  Event e;
  e.choice = s.choice;
  e.finish = reason;
  e.error = error;
  if (reason != "cancelled" && reason != "error" && !s.matcher.stopped()) {
    e.text = s.matcher.push(s.text.finish());
    e.text += s.matcher.finish();
  }
  slot_busy_[s.slot] = false;
  // What the cache holds stays for the next request with the same prefix; after an error it
  // cannot be trusted.
  if (reason == "error") {
    slot_tokens_[s.slot].clear();
    engine_.truncate_slot(s.slot, 0);
  } else {
    slot_tokens_[s.slot].resize(static_cast<size_t>(engine_.slot_pos(s.slot)));
  }
  {
    std::lock_guard lock(mu_);
    --stats_.busy;
    if (reason == "cancelled") ++stats_.cancelled;
  }
  // The client hears of the end last, so that it sees the slot free and the counts updated.
  a.stream->push(std::move(e));
  a.stream->finish_choice();
}

void Scheduler::release_finished() {
  std::erase_if(active_, [](const std::unique_ptr<Active>& a) {
    return std::all_of(a->seqs.begin(), a->seqs.end(), [](const Seq& s) { return s.done; });
  });
}

void Scheduler::fail_all(const std::string& error) {
  for (auto& a : active_)
    for (Seq& s : a->seqs) finish(*a, s, "error", error);
  active_.clear();
  std::deque<std::pair<Job, std::shared_ptr<Stream>>> queued;
  {
    std::lock_guard lock(mu_);
    if (!stop_) return;  // a failed step: the queue goes on
    queued.swap(queue_);
    stats_.queued = 0;
  }
  for (auto& [job, stream] : queued)
    for (int c = 0; c < job.n; ++c) {
      stream->push({c, "", {}, "error", error});
      stream->finish_choice();
    }
}

}  // namespace llmkit::serve
