// `llmkit demo`: the main job on built-in defaults (train/gpt_demo.h). `--engine` runs the
// engine showcase instead: an MLP learns XOR and one attention block learns to recall the first
// token, on synthetic data, with plain SGD (train/engine_demo.h).
#include <cmath>
#include <cstdio>
#include <memory>

#include "llmkit/core/parallel.h"
#include "llmkit/kernels/cpu/gemm.h"
#include "llmkit/train/engine_demo.h"
#include "llmkit/train/gpt_demo.h"
#include "tools/llmkit/command.h"

namespace {

using llmkit::train::DemoOptions;
using llmkit::train::DemoResult;

void report(const char* name, const DemoResult& r) {
  std::printf("%s: loss %.4f -> %.4f, accuracy %.1f%% on a fresh batch, %.2f s\n\n", name,
              r.losses.front(), r.losses.back(), 100 * r.accuracy, r.seconds);
}

llmkit::train::DemoProgress every(int64_t n, int64_t total) {
  return [n, total](int64_t step, double loss) {
    if ((step + 1) % n == 0 || step == 0)
      std::printf("  step %5lld/%lld  loss %.4f\n", static_cast<long long>(step + 1),
                  static_cast<long long>(total), loss);
    std::fflush(stdout);
  };
}

void engine_demo(uint64_t seed) {
  std::printf("llmkit engine demo: %d threads, %s\n\n", llmkit::num_threads(),
              llmkit::kernels::blas_info().c_str());
  DemoOptions mlp;
  mlp.steps = 200;
  mlp.batch = 64;
  mlp.lr = 0.1;
  mlp.seed = seed;
  std::printf("1. A two-layer MLP (2 -> 32 -> 2, GELU) learns XOR of noisy clusters\n");
  report("mlp", llmkit::train::mlp_xor(mlp, every(50, mlp.steps)));
  DemoOptions att;
  att.steps = 200;
  att.seq_len = 64;
  att.vocab = 32;
  att.n_embd = 64;
  att.seed = seed;
  std::printf(
      "2. One causal self-attention block learns to answer the FIRST token of a 64-token "
      "sequence at every position (chance: ln 31 = %.2f nats)\n",
      std::log(31.0));
  report("attention", llmkit::train::attention_recall(att, every(25, att.steps)));
}

}  // namespace

LLMKIT_COMMAND(
    {"demo", "Train a tokenizer and a small GPT on the demo corpus and sample from it",
     [](CLI::App& sub) {
       auto opt = std::make_shared<llmkit::train::GptDemoOptions>();
       auto engine = std::make_shared<bool>(false);
       sub.add_option("--data", opt->data, "text file to learn")->capture_default_str();
       sub.add_option("--out", opt->out, "run directory (replaced)")->capture_default_str();
       sub.add_option("--steps", opt->steps, "training steps")
           ->capture_default_str()
           ->check(llmkit::cli::positive());
       sub.add_option("--seed", opt->seed, "random seed")->capture_default_str();
       sub.add_flag("--engine", *engine, "run the small engine showcase instead (synthetic data)");
       return [opt, engine] {
         if (*engine)
           engine_demo(opt->seed);
         else
           llmkit::train::run_gpt_demo(*opt);
       };
     }});
