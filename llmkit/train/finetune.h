// Fine-tuning a pretrained model on labelled text (the notes' 전이 학습, 파인튜닝, LoRA, QLoRA):
// load the body (models::load: an llmkit dir, a Hugging Face dir or a .gguf), add a task head
// (models/classifier.h), choose what trains, and run the Trainer's loop (trainer.h: schedule,
// clipping, accumulation, evaluation, atomic checkpoints, exact resume, Ctrl-C) on batches of
// labelled examples. Methods:
//   full   every parameter trains (except the --freeze prefixes)
//   head   the body is frozen; only the new head trains (a linear probe on the features)
//   lora   the body is frozen; LoRA adapters (nn/lora.h) and the head train
//   qlora  lora over a body whose adapted Linear weights are kept quantised (q4_0 by default)
// The run directory ends up usable by `llmkit classify`: full / head write a model directory
// (config.json with the head fields, model.safetensors, tokenizer files); lora / qlora write a
// PEFT adapter directory (models/peft.h) naming the base model. Also there: metrics.csv, loss.svg,
// confusion.txt / report.json of the last evaluation, checkpoints/ (only the trainable tensors).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "llmkit/infer/classify.h"
#include "llmkit/models/load.h"
#include "llmkit/nn/lora.h"
#include "llmkit/train/task.h"
#include "llmkit/train/trainer.h"

namespace llmkit::train {

struct FinetuneRun {
  std::string model_path;            // the pretrained body (or a classifier to continue from)
  std::string task = "classify";     // classify | regress
  std::string train_path, val_path;  // TSV / JSONL (data/labelled.h)
  std::string out_dir;
  std::string method = "lora";      // full | head | lora | qlora
  std::vector<std::string> freeze;  // parameter-name prefixes frozen (full method)
  nn::LoraConfig lora;              // targets empty: PEFT's defaults for the arch
  std::string qlora_type = "q4_0";  // the base weights' ggml type for qlora
  std::string pooling;              // encoders: cls | mean (empty: cls); decoders: last
  int64_t max_len = 128;            // tokens per text (cut)
  int64_t limit = 0;                // train on N examples drawn at random (seeded; 0: all)
  // Re-initialise the body's weights (seeded) before training: the "no pretraining" baseline,
  // same architecture and tokenizer, only the labelled data.
  bool from_scratch = false;
  TrainConfig train;  // objective "classify"; see finetune_defaults
  bool resume = false;
  bool quiet = false;
  int64_t stop_after = 0;  // as TrainRun::stop_after (tests)
  // On resume every setting comes from the run directory (finetune_run.json and the committed
  // checkpoint's train config) except train.steps, which moves the end when > 0.
};

// The TrainConfig defaults of a method: lr 2e-5 (full), 1e-2 (head), 1e-3 (lora, qlora);
// weight decay 0.01, warm-up 6% of the steps, linear schedule to 0, batch 16, eval every 100.
TrainConfig finetune_defaults(const std::string& method);

struct FinetuneResult {
  TrainResult train;
  infer::ClassificationReport report;  // the last evaluation (classification)
  double val_mse = -1;                 // the last evaluation (regression)
  // Wall time of the training loop in this invocation (steps, evaluations, checkpoints) and
  // the steps it ran: what ms per step is measured from.
  double train_seconds = 0;
  int64_t steps_run = 0;
  double val_pearson = 0;  // the last evaluation (regression)
  double val_loss = -1;    // the last evaluation
  int64_t trainable_params = 0, all_params = 0;
  std::string export_dir;  // where the usable model / adapter was written ("" if interrupted)
};

// The labelled examples of a run, tokenised: ids per text, and label ids (classification) or
// targets (regression).
struct ClassifyExamples {
  std::vector<std::vector<int32_t>> ids;
  std::vector<int32_t> labels;
  std::vector<float> targets;
  size_t size() const { return ids.size(); }
};

// The train::Task of fine-tuning (task_classify.cpp): shuffled epochs (the order of epoch e
// drawn from a generator seeded by (seed, e)), batches right-padded with attention masks, the
// head's loss; evaluation over the whole validation set (max_batches ignored): loss, accuracy
// and macro_f1 (regression: loss, mse, pearson), headline "accuracy" ("pearson").
class ClassifyTask : public Task {
 public:
  // `model` is borrowed and must outlive the task. save_all: checkpoints hold every parameter
  // (method full) instead of only the trainable ones.
  ClassifyTask(models::Classifier& model, ClassifyExamples train, ClassifyExamples val,
               int64_t batch_size, uint64_t seed, bool save_all, nlohmann::json model_config);

  nn::Module& model() override { return model_; }
  nlohmann::json model_config() const override { return model_config_; }
  double tokens_per_batch() const override;
  Tensor next_loss() override;
  Metrics evaluate(int64_t max_batches) override;
  std::string headline_metric() const override;
  nlohmann::json state() const override;
  void load_state(const nlohmann::json& state) override;
  nn::NamedTensors checkpoint_tensors() override;
  std::vector<Tensor> embedding_tables() const override;

  // The report and metrics of the last evaluate() (classification), and whether there was one.
  const infer::ClassificationReport& last_report() const { return report_; }
  const Metrics& last_metrics() const { return metrics_; }
  bool evaluated() const { return !metrics_.empty(); }

 private:
  void shuffle_epoch();
  models::Classifier& model_;
  ClassifyExamples train_, val_;
  int64_t batch_;
  uint64_t seed_;
  bool save_all_;
  nlohmann::json model_config_;
  std::vector<size_t> order_;
  int64_t epoch_ = 0;
  size_t pos_ = 0;
  infer::ClassificationReport report_;
  Metrics metrics_;
};

// The loop of a fine-tuning run (finetune here, sft / dpo / reward_train in align.h): AdamW over
// the model's trainable parameters, the checkpoint at resume_dir restored when given (committed
// checkpoints hold the task's checkpoint_tensors, not a published model), train_loop to
// tc.steps; the wall time and the steps this invocation ran.
struct FinetuneLoop {
  TrainResult train;
  double train_seconds = 0;
  int64_t steps_run = 0;
};
FinetuneLoop run_finetune_loop(Task& task, nn::Module& model, const TrainConfig& tc,
                               const std::string& out_dir, std::vector<std::string> data,
                               const std::string& tokenizer_json, const std::string& resume_dir,
                               bool quiet, int64_t stop_after);

// Writes a classifier to out_dir as finetune does (and reward_train, align.h): method full / head
// -> config.json with the head fields and model.safetensors; lora / qlora -> a PEFT adapter
// (SEQ_CLS or TOKEN_CLS) naming base_model_path, with our config.json (the head, the method); both
// with the tokenizer files (tokenizer_json, `loaded`'s tokenizer config, bos / eos).
void export_classifier(models::Classifier& model, const models::LoadedModel& loaded,
                       const std::string& tokenizer_json, const std::string& method,
                       const nn::LoraConfig& lora, const std::string& base_model_path,
                       const std::string& out_dir, const std::string& qlora_type = "q4_0");

// Errors: unknown method / task, data files (data/labelled.h), a validation label the training
// data does not have, a model that cannot take a head (t5, rnn), LoRA targets that match nothing.
FinetuneResult finetune(const FinetuneRun& run);

}  // namespace llmkit::train
