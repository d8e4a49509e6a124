// End-to-end f32 inference speed of a llama-family model (default: SmolLM2-135M-Instruct from
// the model cache, dequantised to f32): load time (models::load: mmap + parse + dequantise),
// prefill of 512 tokens (pp512) and decoding of 128 tokens one at a time with the KV cache
// (tg128), like llama-bench. Prints one JSON line: {"model", "load_s", "pp512", "tg128",
// "threads"} in tokens/s. The llama.cpp side of the comparison is run separately.
// usage: bench_llama_f32 [--model PATH] [--pp N] [--tg N] [--reps N]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "llmkit/core/autograd.h"
#include "llmkit/core/parallel.h"
#include "llmkit/models/load.h"

using namespace llmkit;

namespace {
double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}
}  // namespace

int main(int argc, char** argv) {
  const char* home = std::getenv("HOME");
  std::string model = std::string(std::getenv("LLMKIT_MODELS")
                                      ? std::getenv("LLMKIT_MODELS")
                                      : std::string(home ? home : ".") + "/.cache/llmkit/models") +
                      "/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf";
  int64_t pp = 512, tg = 128, reps = 3;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--model")
      model = argv[i + 1];
    else if (a == "--pp")
      pp = std::atoll(argv[i + 1]);
    else if (a == "--tg")
      tg = std::atoll(argv[i + 1]);
    else if (a == "--reps")
      reps = std::atoll(argv[i + 1]);
  }
  try {
    models::LoadOptions lo;
    lo.tokenizer = false;
    models::LoadedModel m = models::load(model, lo);
    LLMKIT_CHECK(m.gpt != nullptr, model, " is not a decoder");
    models::GPT& g = *m.gpt;
    NoGradGuard ng;
    const int64_t V = g.config().vocab_size;
    std::vector<int32_t> ids(pp);
    for (int64_t i = 0; i < pp; ++i) ids[i] = static_cast<int32_t>((i * 7919 + 13) % V);
    double best_pp = 0, best_tg = 0;
    for (int64_t r = 0; r < reps; ++r) {
      auto caches = g.make_caches(1, pp + tg);
      double t0 = now();
      g.forward(Tensor::from_vector(ids, {1, pp}), &caches);
      best_pp = std::max(best_pp, pp / (now() - t0));
      // Decoding after a short prompt, as llama-bench's tg does.
      auto c2 = g.make_caches(1, tg + 1);
      g.forward(Tensor::from_vector(std::vector<int32_t>{1}, {1, 1}), &c2);
      t0 = now();
      for (int64_t i = 0; i < tg; ++i)
        g.forward(Tensor::from_vector(std::vector<int32_t>{ids[i % pp]}, {1, 1}), &c2);
      best_tg = std::max(best_tg, tg / (now() - t0));
    }
    std::printf(
        "{\"model\": \"%s\", \"load_s\": %.3f, \"pp%lld\": %.1f, \"tg%lld\": %.2f, \"threads\": "
        "%d}\n",
        model.c_str(), m.load_seconds, static_cast<long long>(pp), best_pp,
        static_cast<long long>(tg), best_tg, num_threads());
  } catch (const Error& e) {
    std::fprintf(stderr, "bench_llama_f32: %s\n", e.what());
    return 1;
  }
  return 0;
}
