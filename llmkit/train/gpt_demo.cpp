#include "llmkit/train/gpt_demo.h"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "llmkit/core/parallel.h"
#include "llmkit/infer/generate.h"
#include "llmkit/kernels/cpu/gemm.h"
#include "llmkit/train/checkpoint.h"

namespace llmkit::train {

namespace fs = std::filesystem;
using tokenizer::Tokenizer;
using tokenizer::TrainOptions;

namespace {

// The demo preset (same values as configs/gpt2-demo.json): ~3.7M parameters, 128-token
// context; 1200 steps of 16 x 128 tokens take about four minutes on 2 cores.
nlohmann::json demo_config(int64_t steps, uint64_t seed) {
  return {{"model",
           {{"arch", "gpt"},
            {"n_layer", 4},
            {"n_head", 4},
            {"n_embd", 256},
            {"block_size", 128},
            {"vocab_size", 2048},
            {"pos_encoding", "learned"},
            {"norm", "layernorm"},
            {"activation", "gelu"},
            {"bias", true},
            {"tie_embeddings", true},
            {"dropout", 0.0}}},
          {"train",
           {{"batch_size", 16},
            {"steps", steps},
            {"lr", 2e-3},
            {"min_lr", 2e-4},
            {"warmup", std::max<int64_t>(1, steps / 10)},
            {"weight_decay", 0.1},
            {"grad_clip", 1.0},
            {"eval_interval", std::max<int64_t>(1, steps / 4)},
            {"eval_batches", 16},
            {"log_interval", 10},
            {"seed", seed}}}};
}

void sample(models::GPT& model, const tokenizer::Tokenizer& tok, const std::string& prompt,
            uint64_t seed) {
  infer::GenerateOptions g;
  g.max_new_tokens = 60;
  g.sampler.temperature = 0.8;
  g.sampler.top_k = 40;
  g.sampler.seed = seed;
  g.stop_strings = {"\n\n"};
  std::printf("  > %s", prompt.c_str());
  infer::generate_text(model, tok, prompt, g, [](std::string_view s) {
    std::fwrite(s.data(), 1, s.size(), stdout);
    std::fflush(stdout);
  });
  std::printf("\n");
}

}  // namespace

double run_gpt_demo(const GptDemoOptions& opt) {
  LLMKIT_CHECK(fs::exists(opt.data), "demo: corpus '", opt.data,
               "' not found; `make demo` writes it (scripts/demo-corpus.sh runs/kjv.txt), or "
               "give any text file with --data");
  std::printf("llmkit demo: a GPT learns to write like the King James Bible\n");
  std::printf("  %d threads, GEMM: %s\n  corpus: %s (%.1f MB)\n\n", num_threads(),
              kernels::blas_info().c_str(), opt.data.c_str(), fs::file_size(opt.data) / 1e6);
  if (!committed_checkpoint(opt.out).empty() || fs::exists(fs::path(opt.out) / "checkpoints")) {
    std::printf("  (removing the previous demo run in %s)\n", opt.out.c_str());
    fs::remove_all(opt.out);
  }
  fs::create_directories(opt.out);
  const std::string config_path = (fs::path(opt.out) / "demo-config.json").string();
  {
    std::FILE* f = std::fopen(config_path.c_str(), "w");
    LLMKIT_CHECK(f != nullptr, "demo: cannot write ", config_path);
    const std::string s = demo_config(opt.steps, opt.seed).dump(2);
    std::fwrite(s.data(), 1, s.size(), f);
    std::fclose(f);
  }

  std::printf("1. Tokenizer: byte-level BPE, 2048 tokens, trained on the corpus\n");
  TrainOptions to;
  to.vocab_size = 2048;
  const Tokenizer tok = Tokenizer::train(std::vector<std::string>{opt.data}, to);
  const std::string tok_path = (fs::path(opt.out) / "demo-tokenizer.json").string();
  tok.save(tok_path);
  std::printf("   \"And God said\" -> %zu tokens\n\n", tok.encode("And God said").size());

  models::GPTConfig mc = models::GPTConfig::from_json(demo_config(opt.steps, opt.seed)["model"]);
  mc.vocab_size = tok.vocab_size();
  {
    models::GPT untrained(mc, opt.seed);  // the same initial weights training starts from
    untrained.eval();
    std::printf("2. Before training (random weights), a sample:\n");
    sample(untrained, tok, "And God said", opt.seed);
    std::printf("\n3. Training %lld steps (%.2fM parameters, batch 16 x 128 tokens):\n",
                static_cast<long long>(opt.steps), untrained.num_parameters() / 1e6);
  }
  std::fflush(stdout);
  TrainRun run;
  run.config_path = config_path;
  run.data = {opt.data};
  run.out_dir = opt.out;
  run.tokenizer_path = tok_path;
  const TrainResult res = train_model(run);

  auto model = load_model(opt.out);
  std::printf("\n4. After training, samples:\n");
  for (const char* p : {"And God said", "In the beginning", "The LORD is my"})
    sample(*model, tok, p, opt.seed);
  std::printf("\n5. Validation loss %.3f nats/token, perplexity %.1f (a uniform guess: %.0f)\n",
              res.last_val_loss, std::exp(res.last_val_loss), double(mc.vocab_size));
  std::printf("\nThe model is in %s (config.json, model.safetensors, tokenizer.json, loss.svg).\n",
              opt.out.c_str());
  std::printf("Next:\n  build/llmkit generate --model %s --prompt \"And Jesus said\"\n",
              opt.out.c_str());
  std::printf("  build/llmkit chat --model %s\n", opt.out.c_str());
  std::printf("  build/llmkit eval --model %s --data %s\n", opt.out.c_str(), opt.data.c_str());
  std::printf(
      "  build/llmkit train --out %s --resume --steps %lld   (the same run, longer; lr "
      "stays at min_lr)\n",
      opt.out.c_str(), static_cast<long long>(opt.steps * 2));
  return res.last_val_loss;
}

}  // namespace llmkit::train
