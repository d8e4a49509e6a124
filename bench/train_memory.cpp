// Peak memory of GPT training steps: what the engine holds in forward, in backward and after,
// measured by the caching allocator (bytes in live tensors) and by the kernel (process peak RSS).
// Each step is forward + backward + gradient clipping + AdamW on random tokens, as
// bench_train_gpt runs it, so the two benches measure the same work. Not a timing benchmark.
// Usage: bench_train_memory [CONFIG.json] [STEPS] [BATCH]
//        (defaults: configs/gpt2-small.json 2 4, i.e. GPT-2 124M at batch 4, context 1024)
#include <sys/resource.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "llmkit/core/allocator.h"
#include "llmkit/core/parallel.h"
#include "llmkit/core/random.h"
#include "llmkit/models/gpt.h"
#include "llmkit/train/adamw.h"
#include "llmkit/train/clip.h"

using namespace llmkit;

namespace {

double mb(size_t bytes) {
  return static_cast<double>(bytes) / (1024.0 * 1024.0);
}

// Resident set size now, from /proc/self/statm (pages).
double rss_mb() {
  std::ifstream f("/proc/self/statm");
  size_t total = 0, resident = 0;
  f >> total >> resident;
  return mb(resident * 4096);
}

double peak_rss_mb() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss / 1024.0;  // KiB on Linux
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const std::string config = argc > 1 ? argv[1] : "configs/gpt2-small.json";
    const int64_t steps = argc > 2 ? std::atoll(argv[2]) : 2,
                  B = argc > 3 ? std::atoll(argv[3]) : 4;
    if (steps < 1 || B < 1) {
      std::fprintf(stderr, "usage: %s [CONFIG.json] [STEPS >= 1] [BATCH >= 1]\n", argv[0]);
      return 2;
    }
    const models::GPTConfig cfg = models::GPTConfig::load(config);
    const int64_t T = cfg.block_size, V = cfg.vocab_size;
    models::GPT model(cfg, 0);
    train::AdamW opt(model.named_parameters(),
                     {.lr = 3e-4, .beta1 = 0.9, .beta2 = 0.95, .eps = 1e-8, .weight_decay = 0.1});
    size_t param_bytes = 0;
    for (const Tensor& p : model.parameters()) param_bytes += p.numel() * dtype_size(p.dtype());
    Generator g(1);
    Tensor ids = Tensor::empty({B, T}, DType::I32), tgt = Tensor::empty({B, T}, DType::I32);
    auto& alloc = Allocator::instance();
    size_t fwd_peak = 0, fwd_end = 0, bwd_peak = 0, bwd_end = 0, step_peak = 0;
    uint64_t fresh_last = 0, evictions_last = 0;  // in the last step: 0 once the cache is warm
    for (int64_t step = 0; step < steps; ++step) {
      const AllocatorStats at_start = alloc.stats();
      int32_t *pi = ids.data<int32_t>(), *pt = tgt.data<int32_t>();
      for (int64_t i = 0; i < B * T; ++i) {
        pi[i] = static_cast<int32_t>(g.randint(V));
        pt[i] = static_cast<int32_t>(g.randint(V));
      }
      opt.zero_grad();
      alloc.reset_peak();
      Tensor loss = model.loss(ids, tgt);
      fwd_peak = std::max(fwd_peak, alloc.stats().peak_in_use_bytes);
      fwd_end = std::max(fwd_end, alloc.stats().in_use_bytes);
      alloc.reset_peak();
      loss.backward();
      bwd_peak = std::max(bwd_peak, alloc.stats().peak_in_use_bytes);
      bwd_end = std::max(bwd_end, alloc.stats().in_use_bytes);
      train::clip_grad_norm(model.parameters(), 1.0);
      opt.step();
      step_peak = std::max({step_peak, fwd_peak, alloc.stats().peak_in_use_bytes});
      fresh_last = alloc.stats().fresh_allocs - at_start.fresh_allocs;
      evictions_last = alloc.stats().evictions - at_start.evictions;
      std::fprintf(stderr, "step %lld: loss %.4f, in use %.0f MB, held %.0f MB, rss %.0f MB\n",
                   static_cast<long long>(step), loss.item<double>(),
                   mb(alloc.stats().in_use_bytes), mb(alloc.stats().held_bytes), rss_mb());
    }
    const AllocatorStats st = alloc.stats();
    nlohmann::json out = {{"config", config},
                          {"batch", B},
                          {"block_size", T},
                          {"steps", steps},
                          {"threads", num_threads()},
                          {"params_mb", mb(param_bytes)},
                          {"forward_peak_in_use_mb", mb(fwd_peak)},
                          {"forward_end_in_use_mb", mb(fwd_end)},
                          {"backward_peak_in_use_mb", mb(bwd_peak)},
                          {"backward_end_in_use_mb", mb(bwd_end)},
                          {"step_peak_in_use_mb", mb(step_peak)},
                          {"held_mb", mb(st.held_bytes)},
                          {"cache_limit_mb", mb(alloc.cache_limit())},
                          {"last_step_fresh_allocs", fresh_last},
                          {"last_step_evictions", evictions_last},
                          {"peak_rss_mb", peak_rss_mb()}};
    std::printf("%s\n", out.dump().c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_train_memory: %s\n", e.what());
    return 1;
  }
}
