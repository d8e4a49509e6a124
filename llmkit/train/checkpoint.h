// A run directory and its checkpoints. Layout (DESIGN.md's model directory plus training state):
//   config.json            the model config (what `generate`, `eval` and `chat` read)
//   tokenizer.json         Hugging Face format
//   model.safetensors      weights by the family's (Hugging Face) names; metadata "step"
//   optimizer.safetensors  AdamW moments by "<param>.exp_avg(_sq)"; metadata "step"
//   trainer_state.json     step, the train config, data files, the task's state (data position,
//                          RNG positions), and the per-step history (the commit point:
//                          written last, so a crash mid-checkpoint leaves the previous one whole
//                          or a step mismatch that --resume reports)
//   metrics.csv, loss.svg  the loss curve
//   data/                  token shards (reused across runs with the same inputs)
// Every file is written to a temporary name and renamed.
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
  std::string tokenizer_path;      // the run's tokenizer.json
};

// Reads or creates everything a run needs before the model exists: configs (with overrides),
// the tokenizer (loaded, or trained on the data with the family's special tokens and saved), and
// the token shards.
Checkpoint prepare_run(const TrainRun& run);
void save_checkpoint(const std::string& dir, const Checkpoint& ck, Task& task, const AdamW& opt,
                     const std::vector<StepRecord>& history);
void restore_checkpoint(const std::string& dir, Task& task, AdamW& opt,
                        std::vector<StepRecord>& history);
LrSchedule make_schedule(const TrainConfig& tc);

// Loads a trained GPT directory (config.json + model.safetensors) for generation.
std::unique_ptr<models::GPT> load_model(const std::string& dir);

// A decoder model directory (gpt, llama or rnn) ready for generation: the model and the
// generation adapter over it (declared in this order, so the adapter dies first).
struct LoadedDecoder {
  std::unique_ptr<nn::Module> model;
  std::unique_ptr<infer::Decoder> decoder;
  std::string arch;
};
LoadedDecoder load_decoder(const std::string& dir);

// Rebuilds the Task of a model directory (any family) with its trained weights, in eval mode,
// for `llmkit eval`: the objective is the one it was trained with (trainer_state.json), or the
// family's default; `data` says what to evaluate on (val_shard / pairs).
// batch_size > 0 replaces the trained batch size.
std::unique_ptr<Task> load_task(const std::string& dir, TaskData data, int64_t batch_size = 0);

// Reads a JSON file; an Error names the file when it is missing or malformed.
nlohmann::json read_json_file(const std::string& path);

}  // namespace llmkit::train
