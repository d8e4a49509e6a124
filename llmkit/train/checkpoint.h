// A run directory and its checkpoints. Layout (DESIGN.md's model directory plus training state):
//   config.json            the model config (what `generate`, `eval` and `chat` read)
//   tokenizer.json         Hugging Face format
//   model.safetensors      weights by GPT-2 names; metadata "step"
//   optimizer.safetensors  AdamW moments by "<param>.exp_avg(_sq)"; metadata "step"
//   trainer_state.json     step, the train config, data files, the batch sampler's and dropout
//                          generator's positions, and the per-step history (the commit point:
//                          written last, so a crash mid-checkpoint leaves the previous one whole
//                          or a step mismatch that --resume reports)
//   metrics.csv, loss.svg  the loss curve
//   data/                  token shards (reused across runs with the same inputs)
// Every file is written to a temporary name and renamed.
#pragma once

#include <string>
#include <vector>

#include "llmkit/data/batches.h"
#include "llmkit/data/shards.h"
#include "llmkit/train/adamw.h"
#include "llmkit/train/schedule.h"
#include "llmkit/train/trainer.h"

namespace llmkit::train {

struct Checkpoint {
  models::GPTConfig model_config;
  TrainConfig train_config;
  std::vector<std::string> data;
  data::ShardSet shards;
};

// Reads or creates everything a run needs before the model exists: configs (with overrides),
// the tokenizer (loaded, or trained on the data and saved), and the token shards.
Checkpoint prepare_run(const TrainRun& run);
void save_checkpoint(const std::string& dir, const Checkpoint& ck, models::GPT& model,
                     const AdamW& opt, const data::BatchSampler& sampler,
                     const std::vector<StepRecord>& history);
void restore_checkpoint(const std::string& dir, models::GPT& model, AdamW& opt,
                        data::BatchSampler& sampler, std::vector<StepRecord>& history);
LrSchedule make_schedule(const TrainConfig& tc);

// Loads a trained model directory (config.json + model.safetensors) for inference.
std::unique_ptr<models::GPT> load_model(const std::string& dir);

}  // namespace llmkit::train
