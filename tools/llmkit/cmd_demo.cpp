// `llmkit demo`: the main job on built-in defaults. Until the GPT lands it is an engine showcase:
// a two-layer MLP learns XOR, then a one-block attention model learns to recall the first token
// of a sequence, both with plain SGD on synthetic data, printing the loss as it falls.
#include <cmath>
#include <cstdio>
#include <memory>

#include "llmkit/core/parallel.h"
#include "llmkit/kernels/cpu/gemm.h"
#include "llmkit/train/engine_demo.h"
#include "tools/llmkit/command.h"

namespace {

using llmkit::train::DemoOptions;
using llmkit::train::DemoResult;

void report(const char* name, const DemoResult& r) {
  std::printf("%s: loss %.4f -> %.4f, accuracy %.1f%% on a fresh batch, %.2f s (%.0f steps/s)\n\n",
              name, r.losses.front(), r.losses.back(), 100 * r.accuracy, r.seconds,
              r.losses.size() / r.seconds);
}

llmkit::train::DemoProgress every(int64_t n, int64_t total) {
  return [n, total](int64_t step, double loss) {
    if ((step + 1) % n == 0 || step == 0)
      std::printf("  step %5lld/%lld  loss %.4f\n", static_cast<long long>(step + 1),
                  static_cast<long long>(total), loss);
    std::fflush(stdout);
  };
}

}  // namespace

LLMKIT_COMMAND({"demo", "Run the built-in showcase: train small models and watch the loss fall",
                [](CLI::App& sub) {
                  auto opt = std::make_shared<DemoOptions>();
                  opt->steps = 300;
                  opt->seq_len = 64;
                  opt->vocab = 32;
                  opt->n_embd = 64;
                  opt->batch = 32;
                  sub.add_option("--steps", opt->steps, "training steps of the attention model")
                      ->check(CLI::PositiveNumber);
                  sub.add_option("--seq-len", opt->seq_len, "sequence length")->check(CLI::Range(2, 4096));
                  sub.add_option("--seed", opt->seed, "random seed");
                  return [opt] {
                    std::printf("llmkit engine demo: %d threads, %s\n\n", llmkit::num_threads(),
                                llmkit::kernels::blas_info().c_str());
                    DemoOptions mlp = *opt;
                    mlp.steps = 200;
                    mlp.batch = 64;
                    mlp.lr = 0.1;
                    std::printf("1. A two-layer MLP (2 -> 32 -> 2, GELU) learns XOR of noisy clusters\n");
                    report("mlp", llmkit::train::mlp_xor(mlp, every(50, mlp.steps)));
                    std::printf(
                        "2. One causal self-attention block learns to answer the FIRST token of a "
                        "%lld-token sequence at every position\n   (chance: ln %lld = %.2f nats)\n",
                        static_cast<long long>(opt->seq_len), static_cast<long long>(opt->vocab - 1),
                        std::log(double(opt->vocab - 1)));
                    report("attention", llmkit::train::attention_recall(*opt, every(25, opt->steps)));
                  };
                }});
