// serve::Scheduler (continuous batching) on a small random decoder: requests decoded together get
// exactly the tokens they get alone; n choices draw with seeds seed + i; a cancelled request
// frees its slot at the next step; a full queue refuses; a reused prefix changes nothing.
#include <gtest/gtest.h>

#include <thread>

#include "common/byte_tokenizer.h"
#include "common/tiny_gpt.h"
#include "llmkit/infer/engine.h"
#include "llmkit/infer/generate.h"
#include "llmkit/serve/scheduler.h"

using namespace llmkit;
using serve::Job;
using serve::Scheduler;

namespace {

models::LoadedModel model() {
  models::GPTConfig c = llmkit::testing::tiny_gpt_config("llama", 257);
  c.block_size = 256;
  return llmkit::testing::tiny_gpt(c, 3);
}

struct Result {
  std::vector<std::vector<int32_t>> ids;
  std::vector<std::string> text, finish;
  serve::Usage usage;
};

Result collect(serve::Stream& s, int n) {
  Result r;
  r.ids.resize(n);
  r.text.resize(n);
  r.finish.resize(n);
  std::vector<serve::Event> events;
  while (s.next(events, std::chrono::milliseconds(50))) {
    for (const auto& e : events) {
      r.text[e.choice] += e.text;
      for (const auto& lp : e.logprobs) r.ids[e.choice].push_back(lp.id);
      if (!e.finish.empty()) r.finish[e.choice] = e.finish;
    }
    events.clear();
  }
  r.usage = s.usage();
  return r;
}

Job job(std::vector<int32_t> prompt, int64_t max_tokens, double temperature, uint64_t seed) {
  Job j;
  j.prompt = std::move(prompt);
  j.max_tokens = max_tokens;
  j.sampler.temperature = temperature;
  j.sampler.seed = seed;
  j.logprobs = 0;  // the ids come with the events
  return j;
}

std::vector<int32_t> prompt(int64_t n, uint32_t seed) {
  std::vector<int32_t> ids(n);
  for (auto& id : ids) {
    seed = seed * 1664525u + 1013904223u;
    id = static_cast<int32_t>(1 + (seed >> 8) % 256);
  }
  return ids;
}

// Each job run alone on a fresh one-slot scheduler.
Result alone(const models::LoadedModel& m, const Job& j) {
  infer::EngineOptions o;
  o.slots = j.n;
  infer::Engine e(m, o);
  Scheduler s(e, llmkit::testing::byte_tokenizer());
  return collect(*s.submit(j), j.n);
}

}  // namespace

TEST(Scheduler, RequestsBatchedTogetherGetTheTokensTheyGetAlone) {
  const auto m = model();
  const std::vector<Job> jobs = {job(prompt(7, 1), 30, 0, 0), job(prompt(19, 2), 25, 0.9, 5),
                                 job(prompt(3, 3), 40, 1.2, 8), job(prompt(12, 4), 12, 0, 0)};
  infer::EngineOptions o;
  o.slots = 4;
  infer::Engine e(m, o);
  Scheduler s(e, llmkit::testing::byte_tokenizer());
  std::vector<std::shared_ptr<serve::Stream>> streams;
  for (const Job& j : jobs) streams.push_back(s.submit(j));
  for (size_t i = 0; i < jobs.size(); ++i) {
    const Result got = collect(*streams[i], 1), want = alone(m, jobs[i]);
    EXPECT_EQ(got.ids[0], want.ids[0]) << "job " << i;
    EXPECT_EQ(got.text[0], want.text[0]) << "job " << i;
    EXPECT_EQ(got.finish[0], "length");
    EXPECT_EQ(got.usage.completion_tokens, jobs[i].max_tokens);
    EXPECT_EQ(got.usage.prompt_tokens, static_cast<int64_t>(jobs[i].prompt.size()));
  }
  // Batching happened: fewer forward passes than tokens generated.
  const auto st = s.stats();
  EXPECT_LT(st.steps, st.generated);
  EXPECT_EQ(st.busy, 0);
  // And the greedy job is what generate_ids gives on the engine alone.
  infer::Engine one(m);
  infer::GenerateOptions g;
  g.max_new_tokens = 30;
  g.sampler.temperature = 0;
  EXPECT_EQ(infer::generate_ids(one, jobs[0].prompt, g), alone(m, jobs[0]).ids[0]);
}

TEST(Scheduler, NChoicesDrawWithSeedPlusIndex) {
  const auto m = model();
  Job j = job(prompt(9, 7), 20, 1.0, 40);
  j.n = 3;
  infer::EngineOptions o;
  o.slots = 3;
  infer::Engine e(m, o);
  Scheduler s(e, llmkit::testing::byte_tokenizer());
  const Result got = collect(*s.submit(j), 3);
  EXPECT_EQ(got.usage.completion_tokens, 60);
  for (int c = 0; c < 3; ++c) {
    const Result want = alone(m, job(j.prompt, 20, 1.0, 40 + c));
    EXPECT_EQ(got.ids[c], want.ids[0]) << "choice " << c;
  }
  EXPECT_NE(got.ids[0], got.ids[1]);
}

TEST(Scheduler, ACancelledRequestFreesItsSlotAtTheNextStep) {
  const auto m = model();
  infer::EngineOptions o;
  o.slots = 2;
  infer::Engine e(m, o);
  Scheduler s(e, llmkit::testing::byte_tokenizer());
  auto stream = s.submit(job(prompt(5, 9), 200, 0, 0));
  std::vector<serve::Event> events;
  while (events.empty()) stream->next(events, std::chrono::milliseconds(50));
  stream->cancel();
  const Result rest = collect(*stream, 1);
  EXPECT_EQ(rest.finish[0], "cancelled");
  EXPECT_LT(stream->usage().completion_tokens, 200);
  const auto st = s.stats();
  EXPECT_EQ(st.busy, 0);
  EXPECT_EQ(st.cancelled, 1);
  // The slots serve the next request as before.
  const Job next = job(prompt(6, 10), 10, 0, 0);
  EXPECT_EQ(collect(*s.submit(next), 1).ids[0], alone(m, next).ids[0]);
}

TEST(Scheduler, AFullQueueRefusesAndWaitingRequestsRunLater) {
  const auto m = model();
  infer::Engine e(m);  // one slot
  serve::SchedulerOptions so;
  so.max_queue = 1;
  Scheduler s(e, llmkit::testing::byte_tokenizer(), so);
  auto running = s.submit(job(prompt(4, 1), 220, 0, 0));
  while (s.stats().busy == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  const Job small = job(prompt(4, 2), 5, 0, 0);
  auto waiting = s.submit(small);
  EXPECT_THROW(s.submit(small), serve::Overloaded);
  running->cancel();
  EXPECT_EQ(collect(*waiting, 1).ids[0], alone(m, small).ids[0]);
  EXPECT_EQ(collect(*running, 1).finish[0], "cancelled");
}

TEST(Scheduler, AReusedPrefixGivesTheSameTokens) {
  const auto m = model();
  infer::Engine e(m);
  Scheduler s(e, llmkit::testing::byte_tokenizer());
  const auto first = prompt(20, 5);
  const Result a = collect(*s.submit(job(first, 6, 0, 0)), 1);
  // The next prompt starts with the first one, then goes elsewhere than its answer did.
  std::vector<int32_t> longer = first;
  longer.push_back(a.ids[0][0] == 7 ? 8 : 7);
  longer.push_back(9);
  const Job next = job(longer, 8, 0.7, 3);
  const Result b = collect(*s.submit(next), 1);
  EXPECT_EQ(b.usage.cached_tokens, 20);
  EXPECT_EQ(b.ids[0], alone(m, next).ids[0]);
}

TEST(Scheduler, StopIdsAndTheContextEndAGeneration) {
  const auto m = model();
  infer::EngineOptions o;
  o.context = 40;
  infer::Engine e(m, o);
  Scheduler s(e, llmkit::testing::byte_tokenizer());
  const auto p = prompt(6, 11);
  const Result free_run = collect(*s.submit(job(p, 12, 0, 0)), 1);
  ASSERT_EQ(free_run.ids[0].size(), 12u);
  // Stop at the first id that did not occur before it (the stop id itself is not emitted).
  size_t k = 1;
  while (k < 12 &&
         std::count(free_run.ids[0].begin(), free_run.ids[0].begin() + k, free_run.ids[0][k]))
    ++k;
  ASSERT_LT(k, 12u) << "the greedy run repeats one token";
  Job stopped = job(p, 12, 0, 0);
  stopped.stop_ids = {free_run.ids[0][k]};
  const Result r = collect(*s.submit(stopped), 1);
  EXPECT_EQ(r.finish[0], "stop");
  EXPECT_EQ(r.ids[0], std::vector<int32_t>(free_run.ids[0].begin(), free_run.ids[0].begin() + k));
  // A prompt 3 short of the context: 4 tokens (the last needs no position), then "length".
  const Result full = collect(*s.submit(job(prompt(37, 12), 100, 0, 0)), 1);
  EXPECT_EQ(full.finish[0], "length");
  EXPECT_EQ(full.usage.completion_tokens, 4);
}

TEST(Scheduler, BadJobsAreRefusedBeforeTheyQueue) {
  const auto m = model();
  infer::EngineOptions o;
  o.slots = 2;
  o.context = 32;
  infer::Engine e(m, o);
  Scheduler s(e, llmkit::testing::byte_tokenizer());
  EXPECT_THROW(s.submit(job({}, 5, 0, 0)), Error);
  Job three = job(prompt(4, 1), 5, 0, 0);
  three.n = 3;
  EXPECT_THROW(s.submit(three), Error);
  EXPECT_THROW(s.submit(job(prompt(32, 1), 5, 0, 0)), serve::ContextOverflow);
  EXPECT_THROW(s.submit(job({1, 257}, 5, 0, 0)), Error);
  EXPECT_THROW(s.submit(job(prompt(4, 1), 0, 0, 0)), Error);
  EXPECT_THROW(s.submit(job(prompt(4, 1), 5, -1, 0)), Error);
  EXPECT_EQ(s.stats().queued, 0);
}
