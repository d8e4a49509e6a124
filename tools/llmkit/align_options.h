// The options sft, dpo and `reward train` share (train/align.h: AlignRun), and their JSON
// summary line, so the three subcommand files stay small and spell every flag the same way.
#pragma once

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "llmkit/core/parallel.h"
#include "llmkit/train/align.h"
#include "tools/llmkit/command.h"

namespace llmkit::cli {

struct AlignArgs {
  std::string targets;
  int64_t steps = 0, batch = 0, grad_accum = 0, eval_interval = 0;
  double lr = 0;
  uint64_t seed = 1337;
  int threads = 0;
  bool plain = false;
};

inline void add_align_options(CLI::App& sub, train::AlignRun& r, AlignArgs& a,
                              const char* data_help) {
  sub.add_option("--model", r.model_path, "pretrained model (dir, .gguf or adapter dir)")
      ->required();
  sub.add_option("--train", r.train_path, data_help)->required();
  sub.add_option("--val", r.val_path, "validation data (same format; optional)");
  sub.add_option("--out", r.out_dir, "run directory")->required();
  sub.add_option("--method", r.method, "full | lora")->check(CLI::IsMember({"full", "lora"}));
  sub.add_option("--lora-r", r.lora.r, "LoRA rank")->check(CLI::PositiveNumber);
  sub.add_option("--lora-alpha", r.lora.alpha, "LoRA alpha")->check(positive());
  sub.add_option("--lora-dropout", r.lora.dropout, "LoRA dropout")
      ->check(number_in(0, 1, false, true));
  sub.add_option("--lora-targets", a.targets, "module names to adapt, a,b (default: PEFT's)");
  sub.add_option("--max-len", r.max_len, "tokens per example")->check(CLI::Range(4, 1 << 20));
  sub.add_option("--limit", r.limit, "the first N training examples")->check(CLI::PositiveNumber);
  sub.add_option("--steps", a.steps, "optimizer steps")->check(CLI::PositiveNumber);
  sub.add_option("--batch-size", a.batch, "examples per micro-batch")->check(CLI::PositiveNumber);
  sub.add_option("--lr", a.lr, "peak learning rate")->check(positive());
  sub.add_option("--grad-accum", a.grad_accum, "micro-batches per step")
      ->check(CLI::PositiveNumber);
  sub.add_option("--eval-interval", a.eval_interval, "evaluate every N steps")
      ->check(CLI::PositiveNumber);
  sub.add_option("--seed", a.seed, "seed (shuffling, packing order, dropout, LoRA init)");
  sub.add_option("--threads", a.threads, "threads")->check(CLI::PositiveNumber);
  sub.add_flag("--resume", r.resume, "continue the run in --out");
}

// Fills r.train from the command's defaults and the flags given.
inline void finish_align_run(const char* command, train::AlignRun& r, const AlignArgs& a) {
  if (a.threads > 0) set_num_threads(a.threads);
  r.lora.target_modules = split_commas(a.targets);
  if (a.plain) r.chat = false;
  r.train = train::align_defaults(command, r.method);
  r.train.seed = a.seed;
  r.train.steps = a.steps > 0 ? a.steps : (r.resume ? 0 : r.train.steps);
  if (a.batch > 0) r.train.batch_size = a.batch;
  if (a.lr > 0) r.train.lr = a.lr;
  if (a.grad_accum > 0) r.train.grad_accum = a.grad_accum;
  if (a.eval_interval > 0) r.train.eval_interval = a.eval_interval;
}

// The last stdout line: the final evaluation, parameter counts and seconds; exit 130 after
// Ctrl-C.
inline void print_align_result(const train::AlignResult& res,
                               std::chrono::steady_clock::time_point t0) {
  nlohmann::json out = {
      {"step", res.train.step},
      {"trainable_params", res.trainable_params},
      {"all_params", res.all_params},
      {"seconds", std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()},
      {"train_seconds", res.train_seconds},
      {"steps_run", res.steps_run}};
  for (const auto& [k, v] : res.last_eval) out["val_" + k] = v;
  if (!res.export_dir.empty()) out["model"] = res.export_dir;
  std::printf("%s\n", out.dump().c_str());
  if (res.train.interrupted) {
    std::fflush(stdout);
    std::exit(130);
  }
}

}  // namespace llmkit::cli
