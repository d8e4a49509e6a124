// `llmkit bench`: inference speed of a decoder, measured like llama.cpp's `llama-bench`, so a user
// can compare their own machine with the tables in bench/README.md. pp<P>: one eval of P token ids
// (random, seeded) from an empty KV cache; tg<N>: N one-token evals from an empty cache
// (llama-bench starts tg from an empty context too). One warm-up run of each, then --repetitions
// timed runs; tokens/s as mean +- sample standard deviation over the runs. Also: load time (path to
// a ready engine), the weight bytes one decoded token reads and what that makes in GB/s at the tg
// rate. The last line of stdout is JSON: {"pp512": ..., "tg128": ..., "load_s": ...,
// "weights_bytes":
// ..., "threads": ..., ...}. Not here: the machine's memory bandwidth (bench/bench_bandwidth.cpp).
#include <sys/resource.h>
#include <cstdio>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "llmkit/core/parallel.h"
#include "llmkit/infer/engine.h"
#include "llmkit/models/gguf_export.h"
#include "llmkit/models/load.h"
#include "tools/llmkit/command.h"

namespace {

struct Args {
  std::string model, type = "f32";
  int threads = 0;
  int64_t n_prompt = 512, n_gen = 128, reps = 5;
  uint64_t seed = 1234;
  bool batch_invariant = false;
};

double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

struct Rate {
  double mean = 0, sd = 0;
};

// Mean and sample standard deviation of the per-run rates (llama-bench's avg_ts / stdev_ts).
Rate rate_of(const std::vector<double>& r) {
  Rate out;
  for (double x : r) out.mean += x / static_cast<double>(r.size());
  if (r.size() > 1) {
    double ss = 0;
    for (double x : r) ss += (x - out.mean) * (x - out.mean);
    out.sd = std::sqrt(ss / static_cast<double>(r.size() - 1));
  }
  return out;
}

// Seconds to prefill `ids` into an empty cache in one eval.
double time_pp(llmkit::infer::Engine& e, const std::vector<int32_t>& ids) {
  e.truncate(0);
  const double t0 = now();
  e.eval(ids);
  return now() - t0;
}

// Seconds to decode `ids` one token per eval, starting from an empty cache.
double time_tg(llmkit::infer::Engine& e, const std::vector<int32_t>& ids) {
  e.truncate(0);
  const double t0 = now();
  for (int32_t id : ids) e.eval(std::span<const int32_t>(&id, 1));
  return now() - t0;
}

void run_bench(const Args& a) {
  using namespace llmkit;
  if (a.threads > 0) set_num_threads(a.threads);
  infer::EngineOptions eo;
  eo.weight_type = models::parse_file_type(a.type);
  eo.context = std::max<int64_t>(a.n_prompt, a.n_gen);
  eo.batch_invariant = a.batch_invariant;
  const double t0 = now();
  models::LoadOptions lo;
  lo.tokenizer = false;
  lo.gguf_module = false;  // a .gguf runs on its mapped blocks, as stored; no f32 copy
  const models::LoadedModel m = models::load(a.model, lo);
  infer::Engine engine(m, eo);
  const double load_s = now() - t0;

  std::mt19937_64 rng(a.seed);
  std::uniform_int_distribution<int32_t> pick(0, static_cast<int32_t>(engine.vocab() - 1));
  std::vector<int32_t> pp_ids(a.n_prompt), tg_ids(a.n_gen);
  for (auto& t : pp_ids) t = pick(rng);
  for (auto& t : tg_ids) t = pick(rng);

  std::vector<double> pp, tg;
  if (a.n_prompt > 0) {
    time_pp(engine, pp_ids);  // warm-up: first touch of the weights and buffers
    for (int64_t r = 0; r < a.reps; ++r)
      pp.push_back(static_cast<double>(a.n_prompt) / time_pp(engine, pp_ids));
  }
  if (a.n_gen > 0) {
    time_tg(engine, {tg_ids[0]});
    for (int64_t r = 0; r < a.reps; ++r)
      tg.push_back(static_cast<double>(a.n_gen) / time_tg(engine, tg_ids));
  }
  const Rate p = rate_of(pp), g = rate_of(tg);
  const double bytes = static_cast<double>(engine.weight_bytes());
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);

  const std::string pp_name = "pp" + std::to_string(a.n_prompt);
  const std::string tg_name = "tg" + std::to_string(a.n_gen);
  std::printf("%s\n", engine.describe().c_str());
  std::printf("| weights | threads | test | t/s |\n|---:|---:|---|---:|\n");
  if (!pp.empty())
    std::printf("| %.1f MiB | %d | %s | %.2f ± %.2f |\n", bytes / (1 << 20), num_threads(),
                pp_name.c_str(), p.mean, p.sd);
  if (!tg.empty())
    std::printf("| %.1f MiB | %d | %s | %.2f ± %.2f |\n", bytes / (1 << 20), num_threads(),
                tg_name.c_str(), g.mean, g.sd);
  std::printf("load %.3f s; %lld repetitions after one warm-up; peak RSS %.1f MiB\n", load_s,
              static_cast<long long>(a.reps), ru.ru_maxrss / 1024.0);
  if (!tg.empty())
    std::printf("decode reads %.1f MiB of weights per token: %.2f GB/s at %.2f tokens/s\n",
                bytes / (1 << 20), bytes * g.mean / 1e9, g.mean);

  nlohmann::json j = {{"model", a.model},
                      {"describe", engine.describe()},
                      {"type", a.type},
                      {"batch_invariant", a.batch_invariant},
                      {"load_s", load_s},
                      {"weights_bytes", engine.weight_bytes()},
                      {"threads", num_threads()},
                      {"repetitions", a.reps},
                      {"peak_rss_bytes", static_cast<int64_t>(ru.ru_maxrss) * 1024}};
  if (!pp.empty()) {
    j[pp_name] = p.mean;
    j[pp_name + "_sd"] = p.sd;
  }
  if (!tg.empty()) {
    j[tg_name] = g.mean;
    j[tg_name + "_sd"] = g.sd;
    j["weights_gbps"] = bytes * g.mean / 1e9;
  }
  std::printf("%s\n", j.dump().c_str());
}

}  // namespace

LLMKIT_COMMAND(
    {"bench", "Prefill (pp) and decode (tg) tokens/s of a decoder, like llama-bench",
     [](CLI::App& sub) {
       auto a = std::make_shared<Args>();
       sub.add_option("--model", a->model,
                      "an llmkit run directory, a Hugging Face directory or "
                      "a .gguf file (gpt or llama)")
           ->required()
           ->check(CLI::ExistingPath);
       sub.add_option("--threads", a->threads, "threads (default: LLMKIT_THREADS or all cores)")
           ->check(llmkit::cli::positive());
       sub.add_option("-p,--n-prompt", a->n_prompt, "prompt tokens of the pp test (0: skip it)")
           ->capture_default_str()
           ->check(llmkit::cli::non_negative());
       sub.add_option("-n,--n-gen", a->n_gen, "generated tokens of the tg test (0: skip it)")
           ->capture_default_str()
           ->check(llmkit::cli::non_negative());
       sub.add_option("-r,--repetitions", a->reps, "timed runs of each test")
           ->capture_default_str()
           ->check(llmkit::cli::positive());
       sub.add_option("--type", a->type,
                      "weight type for f32 sources (f32, f16, q8_0, q4_0, q4_1, q4_k, q6_k); a "
                      ".gguf keeps its stored types")
           ->capture_default_str();
       sub.add_option("--seed", a->seed, "seed of the random token ids")->capture_default_str();
       sub.add_flag("--batch-invariant", a->batch_invariant,
                    "every product on the 8-bit path, as `llmkit serve --batch-invariant` (prefill "
                    "without f32 BLAS)");
       return [a] {
         LLMKIT_CHECK(a->n_prompt > 0 || a->n_gen > 0,
                      "bench: -p and -n are both 0; nothing to measure");
         run_bench(*a);
       };
     }});
