// From a pretrained decoder to an assistant (the notes' 지시 튜닝, 보상 모델, RLHF, DPO):
//   sft           supervised fine-tuning on conversations: next-token loss on the assistant's
//                 tokens only (data/conversations.h), short examples packed into rows whose
//                 examples never attend to each other (GPT::forward_packed)
//   reward_train  a reward model: a one-output head on a pretrained body (models::Classifier,
//                 Hugging Face's *ForSequenceClassification with num_labels 1, as TRL's
//                 RewardTrainer) trained with the Bradley-Terry loss -log sigmoid(r_chosen -
//                 r_rejected) on preference pairs (data/preferences.h)
//   dpo           Direct Preference Optimization (Rafailov et al. 2023), TRL's sigmoid loss:
//                 -log sigmoid(beta ((pi_c - ref_c) - (pi_r - ref_r))), pi / ref the summed
//                 log-probabilities of an answer's tokens under the policy / the reference
// All three run the Trainer's loop (trainer.h: schedule, clipping, accumulation, evaluation,
// atomic checkpoints, exact resume, Ctrl-C), full or LoRA (PEFT's defaults: r 8 on the
// attention's q/v or c_attn). The reference of DPO is the model as loaded: its log-probabilities
// are computed once before step 1 (TRL's precompute_ref_log_probs) and kept in the run directory,
// so no second copy of the model is held in memory, with either method.
// Outputs: method full writes a model directory (models::save_model_dir, loadable by every
// command), lora a PEFT adapter directory (task_type CAUSAL_LM / SEQ_CLS) naming the base.
// Not here: PPO (train/ppo.h), the data formats (data/).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "llmkit/data/conversations.h"
#include "llmkit/models/load.h"
#include "llmkit/nn/lora.h"
#include "llmkit/train/task.h"
#include "llmkit/train/trainer.h"

namespace llmkit::train {

// What sft, reward_train and dpo share.
struct AlignRun {
  std::string model_path;            // the pretrained decoder (llmkit dir, HF dir, .gguf, adapter)
  std::string train_path, val_path;  // JSONL (val may be empty: no evaluation)
  std::string out_dir;
  std::string method = "lora";  // full | lora
  nn::LoraConfig lora;          // targets empty: PEFT's defaults for the arch
  int64_t max_len = 512;        // tokens per example (prompt + answer)
  int64_t limit = 0;            // the first N training examples (0: all)
  // Render through the model's chat template (its own, or data::plain_template when it has none).
  // false: prompt and answer as plain text, joined by a space when neither has one, the answer
  // ending with eos (SFT then takes prompt/completion pairs only: continuing text, as the DPO
  // paper's SFT on IMDb reviews).
  bool chat = true;
  TrainConfig train;  // see align_defaults
  bool resume = false;
  bool quiet = false;
  int64_t stop_after = 0;  // as TrainRun::stop_after (tests)
};

struct SftRun : AlignRun {
  bool pack = true;  // pack examples into rows of max_len tokens (false: one example per row)
};

struct DpoRun : AlignRun {
  double beta = 0.1;
  int64_t max_prompt = 128;  // prompt tokens kept (cut from the left)
};

using RewardRun = AlignRun;

// The TrainConfig defaults: SFT lr 2e-5 full / 2e-4 lora, DPO 5e-7 full / 5e-6 lora (TRL's
// DPOConfig uses 1e-6), reward 1e-5 full / 1e-3 lora; linear schedule with 10% warm-up, weight
// decay 0, batch 8, eval every 50 steps.
TrainConfig align_defaults(const std::string& command, const std::string& method);

struct AlignResult {
  TrainResult train;
  Metrics last_eval;  // the last evaluation's figures (empty without val data)
  int64_t trainable_params = 0, all_params = 0;
  double train_seconds = 0;
  int64_t steps_run = 0;
  std::string export_dir;  // the usable model / adapter ("" if interrupted)
};

// Evaluation figures. sft: loss (per assistant token), perplexity. reward: loss, accuracy
// (r_chosen > r_rejected), margin (mean r_chosen - r_rejected). dpo, as TRL logs them:
// loss, rewards/chosen, rewards/rejected (beta * (pi - ref) means), rewards/accuracies,
// rewards/margins, logps/chosen, logps/rejected.
AlignResult sft(const SftRun& run);
AlignResult reward_train(const RewardRun& run);
AlignResult dpo(const DpoRun& run);

// How a loaded decoder renders conversations (sft, dpo, reward train, ppo): its own chat
// template, or data::plain_template() with its end-of-text token, which is then written into m
// (chat_template, eos_token) so that the exported policy carries it and chat and generate use it
// afterwards. The end-of-turn id is the template's eos token when it is a special token, else
// m's first eos id. Errors name `command`: no tokenizer, no end-of-text token, no eos id.
data::ChatFormat chat_format(models::LoadedModel& m, const std::string& command);

// Writes a tuned policy to out_dir, as every command loads it: method "full" a model directory
// (models::save_model_dir in `format`, "hf" or "llmkit"); "lora" a PEFT adapter (task_type
// CAUSAL_LM, base_model_name_or_path base_path) beside the tokenizer files with m's chat
// template. Each file atomically.
void export_policy(const models::LoadedModel& m, models::GPT& gpt, const std::string& method,
                   const std::string& format, const nn::LoraConfig& lora,
                   const std::string& base_path, const std::string& out_dir);

// TRL's DPO sigmoid loss for a batch, given the summed answer log-probabilities [B] of the
// policy (with autograd) and of the reference (constants): the mean loss, and the batch's
// rewards beta * (pi - ref) for chosen and rejected (no gradient), what dpo() reports.
struct DpoLoss {
  Tensor loss;                              // scalar
  Tensor chosen_rewards, rejected_rewards;  // [B]
};
DpoLoss dpo_loss(const Tensor& policy_chosen, const Tensor& policy_rejected,
                 const Tensor& ref_chosen, const Tensor& ref_rejected, double beta);

// The summed log-probability of each row's labelled tokens: logits [B, T, V] of ids [B, T] and
// labels [B, T] aligned with the ids (labels[b, t] = ids[b, t] where the token counts, -100 where
// it does not); the logits at position t - 1 predict labels[b, t]. -> [B], with autograd.
Tensor sequence_log_probs(const Tensor& logits, const Tensor& labels);

}  // namespace llmkit::train
