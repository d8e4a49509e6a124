// A run directory and its checkpoints. Layout (DESIGN.md's model directory plus training state):
//   config.json            the model config       \  what `generate`, `eval`, `chat` read: the
//   model.safetensors      weights; metadata step  |  latest committed step (model.safetensors
//   tokenizer.json         Hugging Face format     |  is a hard link into its step directory)
//   trainer_state.json     the train config, ...  /   (eval reads the objective from it)
//   metrics.csv, loss.svg  the loss curve
//   data/                  token shards (reused across runs with the same inputs)
//   checkpoints/latest.json       {"step": N, "dir": "step-0000000N"}: the commit point
//   checkpoints/step-0000000N/    the committed set: config.json, model.safetensors,
//                                 optimizer.safetensors (AdamW moments, "<param>.exp_avg(_sq)"),
//                                 trainer_state.json (step, train config, data files, the task's
//                                 data position and RNG states, per-step history), tokenizer.json
//   train.lock             held (flock) by the process training here
// A checkpoint is atomic as a set: its files are written and fsynced in checkpoints/.tmp-<name>/,
// that directory is renamed to step-<N>, then latest.json is replaced (temp + rename) -- the
// commit; only then are the top-level files updated and older step directories removed. A kill
// at any instant leaves latest.json naming a complete step directory (or no latest.json before
// the first commit), and --resume reads only that directory. Run directories of the older
// layout (the same files at the top, no checkpoints/) still resume.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "llmkit/data/batches.h"
#include "llmkit/data/shards.h"
#include "llmkit/infer/generate.h"
#include "llmkit/train/adamw.h"
#include "llmkit/train/schedule.h"
#include "llmkit/train/task.h"
#include "llmkit/train/trainer.h"

namespace llmkit::train {

struct Checkpoint {
  nlohmann::json model_config;  // the "model" object (vocab_size set from the tokenizer)
  TrainConfig train_config;
  std::vector<std::string> data;   // text files
  std::vector<std::string> pairs;  // parallel-corpus files (translation)
  data::ShardSet shards;           // empty paths when there are no text files
  std::string tokenizer_path;      // the tokenizer.json the run uses
  std::string tokenizer_json;      // its text, written into every checkpoint
  std::string resume_dir;          // the committed checkpoint to restore; empty: a new run
  // Link each committed model.safetensors and config.json to the run directory's top (what
  // generate and eval read). Fine-tuning writes its own usable model there instead (finetune.h).
  bool publish_model = true;
};

// Holds an exclusive lock on DIR/train.lock (creating DIR) while it lives, so that two processes
// never write checkpoints into one run directory; the kernel drops it when the process dies.
// Once locked, it removes the "<file>.tmp.<pid>" files that killed writers left in DIR and
// DIR/data. An Error when another process holds the lock.
class RunLock {
 public:
  explicit RunLock(const std::string& dir);
  ~RunLock();
  RunLock(const RunLock&) = delete;
  RunLock& operator=(const RunLock&) = delete;

 private:
  int fd_ = -1;
};

// The directory holding the last committed checkpoint of a run directory: checkpoints/step-N,
// the run directory itself for the older layout, or "" when nothing was committed.
std::string committed_checkpoint(const std::string& run_dir);
// The step of that checkpoint; -1 when there is none.
int64_t committed_step(const std::string& run_dir);

// Reads or creates everything a run needs before the model exists: configs (with overrides),
// the tokenizer (loaded, or trained on the data with the family's special tokens and saved), and
// the token shards. On resume everything comes from the committed checkpoint.
Checkpoint prepare_run(const TrainRun& run);
// Commits a checkpoint of the current step (history.size()) into run_dir as described above.
void save_checkpoint(const std::string& run_dir, const Checkpoint& ck, Task& task, const AdamW& opt,
                     const std::vector<StepRecord>& history);
// Restores weights, optimizer, task state and history from a committed checkpoint directory
// (committed_checkpoint); an Error names any file that is missing or disagrees on the step.
void restore_checkpoint(const std::string& checkpoint_dir, Task& task, AdamW& opt,
                        std::vector<StepRecord>& history);
LrSchedule make_schedule(const TrainConfig& tc);

// Loads a trained GPT directory (config.json + model.safetensors) through models::load (the
// one loader; generate and chat use it directly).
std::unique_ptr<models::GPT> load_model(const std::string& dir);

// Rebuilds the Task of a model directory (any family) with its trained weights, in eval mode,
// for `llmkit eval`: the objective is the one it was trained with (trainer_state.json), or the
// family's default; `data` says what to evaluate on (val_shard / pairs).
// batch_size > 0 replaces the trained batch size.
std::unique_ptr<Task> load_task(const std::string& dir, TaskData data, int64_t batch_size = 0);

}  // namespace llmkit::train
