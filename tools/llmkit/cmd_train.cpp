// `llmkit train`: train a model (gpt, llama, bert, t5, bart, rnn: the config's model.arch) on
// text files, or on a parallel corpus for translation (train/trainer.h does the work).
#include <cmath>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>

#include "llmkit/core/parallel.h"
#include "llmkit/train/trainer.h"
#include "tools/llmkit/command.h"

namespace {

struct Args {
  llmkit::train::TrainRun run;
  int64_t steps = 0, batch = 0;
  double lr = 0;
  uint64_t seed = 0;
  int threads = 0;
  bool has_seed = false;
};

}  // namespace

LLMKIT_COMMAND(
    {"train", "Train a model (GPT, llama, BERT, T5, BART, RNN) on text or translation pairs",
     [](CLI::App& sub) {
       auto a = std::make_shared<Args>();
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
       sub.add_option("--steps", a->steps, "override train.steps")->check(CLI::PositiveNumber);
       sub.add_option("--batch-size", a->batch, "override train.batch_size")
           ->check(CLI::PositiveNumber);
       sub.add_option("--lr", a->lr, "override train.lr")->check(CLI::PositiveNumber);
       sub.add_option("--seed", a->seed, "override train.seed");
       sub.add_option("--threads", a->threads, "threads (default: LLMKIT_THREADS or all cores)")
           ->check(CLI::PositiveNumber);
       sub.add_flag("--resume", a->run.resume, "continue the run in --out from its checkpoint");
       return [a, &sub] {
         if (a->threads > 0) llmkit::set_num_threads(a->threads);
         nlohmann::json over = nlohmann::json::object();
         if (a->steps > 0) over["steps"] = a->steps;
         if (a->batch > 0) over["batch_size"] = a->batch;
         if (a->lr > 0) over["lr"] = a->lr;
         if (sub.count("--seed") > 0) over["seed"] = a->seed;
         a->run.train_overrides = &over;
         const auto res = llmkit::train::train_model(a->run);
         if (res.last_val_loss < 0) return;
         nlohmann::json out = {{"step", res.step}, {"val_loss", res.last_val_loss}};
         for (const auto& [k, v] : res.last_val_metrics)
           if (k != "loss") out["val_" + k] = v;
         if (!res.last_val_metrics.count("accuracy"))
           out["val_perplexity"] = std::exp(res.last_val_loss);
         std::printf("%s\n", out.dump().c_str());
       };
     }});
