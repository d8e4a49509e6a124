// The llmkit side of bench/train_vs_torch: trains the GPT of a config on random tokens with AdamW
// and gradient clipping (what llmkit train does per step, without data loading), then measures
// prefill (half a context) and KV-cached decode on infer::Engine (DECODE tokens after it, default
// 64, at most half a context: enough for a steady rate, and short enough for a busy machine).
// Prints one JSON line with the keys torch_gpt.py prints.
// Usage: bench_train_gpt CONFIG.json STEPS BATCH [DECODE]
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "llmkit/core/allocator.h"
#include "llmkit/core/parallel.h"
#include "llmkit/infer/engine.h"
#include "llmkit/infer/generate.h"
#include "llmkit/train/adamw.h"
#include "llmkit/train/clip.h"

using namespace llmkit;
using Clock = std::chrono::steady_clock;

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: %s CONFIG.json STEPS BATCH [DECODE]\n", argv[0]);
    return 2;
  }
  try {
    const models::GPTConfig cfg = models::GPTConfig::load(argv[1]);
    const int64_t steps = std::atoll(argv[2]), B = std::atoll(argv[3]);
    const int64_t decode = argc > 4 ? std::atoll(argv[4]) : 64;
    const int64_t T = cfg.block_size, V = cfg.vocab_size;
    models::GPT model(cfg, 0);
    train::AdamW opt(model.named_parameters(),
                     {.lr = 3e-4, .beta1 = 0.9, .beta2 = 0.95, .eps = 1e-8, .weight_decay = 0.1});
    Generator g(1);
    std::vector<double> times;
    Tensor ids = Tensor::empty({B, T}, DType::I32), tgt = Tensor::empty({B, T}, DType::I32);
    double loss_v = 0;
    for (int64_t step = 0; step < steps + 2; ++step) {
      std::vector<int32_t> x(B * (T + 1));
      for (auto& v : x) v = static_cast<int32_t>(g.randint(V));
      int32_t *pi = ids.data<int32_t>(), *pt = tgt.data<int32_t>();
      for (int64_t b = 0; b < B; ++b)
        for (int64_t t = 0; t < T; ++t) {
          pi[b * T + t] = x[b * (T + 1) + t];
          pt[b * T + t] = x[b * (T + 1) + t + 1];
        }
      const auto t0 = Clock::now();
      opt.zero_grad();
      Tensor loss = model.loss(ids, tgt);
      loss.backward();
      train::clip_grad_norm(model.parameters(), 1.0);
      opt.step();
      loss_v = loss.item<double>();
      if (step >= 2) times.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
    }
    std::sort(times.begin(), times.end());
    const double ms = times[times.size() / 2] * 1000;
    model.eval();
    std::vector<int32_t> prompt(T / 2);
    for (auto& v : prompt) v = static_cast<int32_t>(g.randint(V));
    infer::GenerateOptions go;
    go.max_new_tokens = std::min(decode, T / 2 - 1);
    go.sampler.temperature = 0;
    infer::GenerateStats st;
    // Inference on infer::Engine, what generate and chat run (it borrows the trained f32 weights),
    // not on the training forward.
    models::LoadedModel loaded;
    loaded.arch = cfg.arch;
    loaded.path = argv[1];
    loaded.gpt = &model;
    loaded.gpt_config = model.config();
    infer::Engine engine(loaded);
    infer::generate_ids(engine, prompt, go, {}, &st);
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    nlohmann::json out = {{"impl", "llmkit"},
                          {"threads", num_threads()},
                          {"ms_per_step", ms},
                          {"tokens_per_sec", B * T / (ms / 1000)},
                          {"peak_rss_mb", ru.ru_maxrss / 1024.0},
                          {"prefill_tokens_per_sec", st.prompt_tokens / st.prefill_seconds},
                          {"decode_tokens_per_sec", st.new_tokens / st.decode_seconds},
                          {"final_loss", loss_v}};
    std::printf("%s\n", out.dump().c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_train_gpt: %s\n", e.what());
    return 1;
  }
}
