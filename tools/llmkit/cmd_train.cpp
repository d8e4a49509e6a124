// `llmkit train`: train a model (gpt, llama, bert, t5, bart, rnn: the config's model.arch) on
// text files, or on a parallel corpus for translation (train/trainer.h does the work).
// Exit status: 0 when the run reached its steps, 130 when Ctrl-C stopped it (a checkpoint of the
// last step is committed; --resume continues), 1 on an error.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <nlohmann/json.hpp>

#include "llmkit/core/parallel.h"
#include "llmkit/train/trainer.h"
#include "tools/llmkit/command.h"

namespace {

struct Args {
  llmkit::train::TrainRun run;
  int64_t steps = 0, batch = 0, checkpoint_interval = -1;
  double lr = 0;
  uint64_t seed = 0;
  int threads = 0;
  bool has_seed = false;
};

constexpr const char* kFooter = R"(
--resume continues the run in --out from its last committed checkpoint, exactly: the same
losses and weights as a run never stopped. It reads the run's stored config; --steps N then
moves where the run stops, not the lr schedule: the schedule keeps the length the run started
with (train.schedule_steps), and after its end the lr stays at min_lr (constant schedule: lr).
So `--resume --steps N` with N = the configured steps equals an uninterrupted run, and a larger
N trains on at min_lr. Other flags given with --resume replace the stored settings.
Checkpoints are committed atomically (model, optimizer, data position, tokenizer as one set):
a kill at any moment loses at most the steps since the last one. With --resume and --config,
a directory without a committed checkpoint starts a new run.
Ctrl-C finishes the current step, commits a checkpoint and exits with status 130; a second
Ctrl-C stops at once. Defaults: warm-up min(100, steps / 10) steps; weight decay on projection
matrices only (docs/training.md).)";

}  // namespace

LLMKIT_COMMAND(
    {"train", "Train a model (GPT, llama, BERT, T5, BART, RNN) on text or translation pairs",
     [](CLI::App& sub) {
       auto a = std::make_shared<Args>();
       sub.footer(kFooter);
       sub.add_option("--config", a->run.config_path, "training config (configs/*.json)")
           ->check(CLI::ExistingFile);
       sub.add_option("--data", a->run.data, "text files to train on")->check(CLI::ExistingFile);
       sub.add_option("--pairs", a->run.pairs,
                      "parallel corpus (TSV: source<TAB>target per line) for objective translate")
           ->check(CLI::ExistingFile);
       sub.add_option("--out", a->run.out_dir, "run directory (model, checkpoints, logs)")
           ->required();
       sub.add_option("--tokenizer", a->run.tokenizer_path,
                      "tokenizer.json to use (default: train a BPE on the data)")
           ->check(CLI::ExistingFile);
       sub.add_option("--steps", a->steps,
                      "train to step N (train.steps); with --resume: continue the same run to "
                      "step N, lr schedule unchanged")
           ->check(CLI::PositiveNumber);
       sub.add_option("--batch-size", a->batch, "override train.batch_size")
           ->check(CLI::PositiveNumber);
       sub.add_option("--lr", a->lr, "override train.lr")->check(CLI::PositiveNumber);
       sub.add_option("--seed", a->seed, "override train.seed");
       sub.add_option("--checkpoint-interval", a->checkpoint_interval,
                      "also commit a checkpoint every N steps (train.checkpoint_interval; 0: "
                      "only at evaluations, the end and Ctrl-C)")
           ->check(CLI::NonNegativeNumber);
       sub.add_option("--threads", a->threads, "threads (default: LLMKIT_THREADS or all cores)")
           ->check(CLI::PositiveNumber);
       sub.add_flag("--resume", a->run.resume,
                    "continue the run in --out from its last committed checkpoint");
       return [a, &sub] {
         if (a->threads > 0) llmkit::set_num_threads(a->threads);
         nlohmann::json over = nlohmann::json::object();
         if (a->steps > 0) over["steps"] = a->steps;
         if (a->batch > 0) over["batch_size"] = a->batch;
         if (a->lr > 0) over["lr"] = a->lr;
         if (sub.count("--seed") > 0) over["seed"] = a->seed;
         if (a->checkpoint_interval >= 0) over["checkpoint_interval"] = a->checkpoint_interval;
         a->run.train_overrides = &over;
         const auto res = llmkit::train::train_model(a->run);
         if (res.last_val_loss >= 0) {
           nlohmann::json out = {{"step", res.step}, {"val_loss", res.last_val_loss}};
           for (const auto& [k, v] : res.last_val_metrics)
             if (k != "loss") out["val_" + k] = v;
           if (!res.last_val_metrics.count("accuracy"))
             out["val_perplexity"] = std::exp(res.last_val_loss);
           std::printf("%s\n", out.dump().c_str());
         }
         if (res.interrupted) {
           std::fflush(stdout);
           std::exit(130);  // 128 + SIGINT, as a shell reports a Ctrl-C'd command
         }
       };
     }});
