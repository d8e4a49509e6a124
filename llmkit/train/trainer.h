// Pretraining on text files (1.1.3 사전 학습): the loop of llm.c/nanoGPT with what a practitioner
// needs around it, for every family through the Task interface (task.h: next-token prediction
// for gpt and rnn, masked tokens for bert, span corruption or translation for t5).
//   - data: text -> token shards made once (llmkit/data), random windows, a validation split;
//   - AdamW with cosine schedule and warm-up, global-norm gradient clipping, accumulation;
//   - evaluation every eval_interval steps; a progress bar on a terminal, log lines otherwise;
//     metrics.csv and loss.svg in the run directory;
//   - checkpoints committed atomically as a set (model, optimizer, RNG and data positions,
//     tokenizer; checkpoint.h), so --resume after a kill at any instant continues with exactly
//     the losses an uninterrupted run gives; Ctrl-C saves; data too small for one batch or one
//     evaluation is an error before step 1 (docs/training.md).
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "llmkit/models/gpt.h"

namespace llmkit::train {

// The "train" object of a training config. Command-line flags override fields.
struct TrainConfig {
  // clm (next token: gpt, rnn) | mlm (bert) | span (t5) | infill (bart) | translate (t5, bart)
  // | classify | regress (fine-tuning with a task head: finetune.h, not train_model)
  // | sft | dpo | reward (instruction and preference tuning: align.h, not train_model).
  // Each arch checks that it supports the objective (task.h).
  std::string objective = "clm";
  double mask_prob = 0.15;  // mlm: fraction of tokens to predict (80% [MASK], 10% random, 10% kept)
  bool nsp = false;         // mlm: add next-sentence prediction
  double noise_density = 0.15;  // span / infill: fraction of tokens corrupted
  double mean_span = 3.0;       // span / infill: mean corrupted span length
  int64_t batch_size = 8;
  int64_t grad_accum = 1;
  int64_t steps = 1000;  // where the run stops (`--resume --steps N` moves it)
  // Length of the lr schedule (warm-up + decay); 0 in a config: `steps`. Fixed when the run
  // starts, so continuing a run to more steps keeps the lr of every step it already has, and
  // the lr stays at min_lr (constant schedule: lr) after the schedule's end.
  int64_t schedule_steps = 0;
  double lr = 3e-4;
  double min_lr = 3e-5;
  int64_t warmup = -1;              // -1 in a config: min(100, schedule_steps / 10)
  std::string schedule = "cosine";  // cosine | linear | constant
  double weight_decay = 0.1;
  double beta1 = 0.9, beta2 = 0.95;
  double grad_clip = 1.0;  // 0: off
  int64_t eval_interval = 100;
  int64_t eval_batches = 20;
  // Also commit a checkpoint every this many steps; 0: only at evaluations, at the end and on
  // Ctrl-C. A kill loses at most the steps since the last committed checkpoint.
  int64_t checkpoint_interval = 0;
  int64_t log_interval = 10;
  double val_fraction = 0.05;
  uint64_t seed = 1337;

  // Reads a "train" object; the defaults above fill missing fields, and schedule_steps and
  // warmup come out resolved (never 0 / -1), so to_json() records what the run uses.
  static TrainConfig from_json(const nlohmann::json& j);
  nlohmann::json to_json() const;
};

class Task;
struct TaskData;
class AdamW;

struct TrainRun {
  std::string config_path;         // configs/X.json with "model" and "train"
  std::vector<std::string> data;   // text files
  std::vector<std::string> pairs;  // parallel-corpus files (objective translate)
  std::string out_dir;             // the run/model directory
  std::string tokenizer_path;      // empty: train a BPE on the data
  // Continue the run in out_dir from its last committed checkpoint. When there is none (a run
  // killed before its first checkpoint, or a new directory) and config_path is given, a new run
  // starts there; without config_path that is an Error saying there is nothing to resume.
  bool resume = false;
  nlohmann::json* train_overrides = nullptr;  // fields that replace the config's "train" ones
  bool quiet = false;
  // Stop (with a checkpoint) after this many steps of this invocation; 0 = run to the end.
  // Tests use it to simulate a kill.
  int64_t stop_after = 0;
  // Builds the Task instead of make_task (task.h): a custom objective, or a test's wrapper.
  std::function<std::unique_ptr<Task>(const nlohmann::json& model_config, const TrainConfig&,
                                      const TaskData&)>
      task_factory;
};

struct StepRecord {
  int64_t step = 0;
  double lr = 0, loss = 0, grad_norm = 0, tokens_per_sec = 0;
  double val_loss = -1;                       // -1: not evaluated at this step
  std::map<std::string, double> val_metrics;  // all validation metrics when evaluated
};

struct TrainResult {
  std::vector<StepRecord> history;  // every step of the run so far (including before a resume)
  int64_t step = 0;                 // steps completed
  bool interrupted = false;         // stopped by Ctrl-C or stop_after, with a checkpoint
  double last_val_loss = -1;
  std::map<std::string, double> last_val_metrics;
};

// What train_loop needs besides the task: where checkpoints go (for messages), and how to commit
// one (called with the history so far at evaluations, every checkpoint_interval steps, at the
// end, on Ctrl-C and on stop_after).
struct LoopOptions {
  std::string out_dir;
  bool quiet = false;
  int64_t stop_after = 0;  // as TrainRun::stop_after
  std::function<void(const std::vector<StepRecord>& history)> save;
};

// The training loop itself, shared by train_model and the fine-tuning driver (finetune.h):
// steps history.size() + 1 .. tc.steps of `task` with `opt` (built over the task's trainable
// parameters), tc's schedule, accumulation and clipping (over the parameters that require
// grad), evaluation every eval_interval, progress on stderr, lo.save at the commit points.
// `history` is what a restored checkpoint already holds (empty for a new run).
TrainResult train_loop(Task& task, AdamW& opt, const TrainConfig& tc,
                       std::vector<StepRecord> history, const LoopOptions& lo);

// The parameters of `model` that require grad (the ones an optimizer should hold; frozen
// parameters -- a fine-tuned body, a quantised base -- are left out), with their names.
std::vector<std::pair<std::string, Tensor>> trainable_parameters(const nn::Module& model);

// Trains the model of run.config_path (any family: the "model" object's arch picks the Task,
// task.h) on run.data / run.pairs in run.out_dir, or continues it there with run.resume.
// Errors: data too small for the objective (before step 1, saying how much is needed), a
// diverging loss, I/O. An error never touches the last committed checkpoint; an error thrown by
// evaluation first commits a checkpoint of the current step, then propagates. One process at a
// time may train in a directory (an Error otherwise).
TrainResult train_model(const TrainRun& run);

// Mean next-token loss over consecutive windows of context + 1 tokens (all of them, or the
// first max_batches * batch); context 0 means the model's block_size. The model's train/eval
// mode is restored afterwards.
double evaluate_tokens(models::GPT& model, std::span<const int32_t> tokens, int64_t batch,
                       int64_t max_batches = 0, int64_t context = 0);
// The same over a token shard file (llmkit/data).
double evaluate_shard(models::GPT& model, const std::string& shard_path, int64_t batch,
                      int64_t max_batches);

}  // namespace llmkit::train
