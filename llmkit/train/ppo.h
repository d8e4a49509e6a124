// RLHF with PPO (the notes' 인간 피드백 강화학습; Ouyang et al. 2022, Ziegler et al. 2019), as
// TRL's PPO trainer does it, on the CPU:
//   1. rollouts   the policy continues a batch of prompts with our sampler (temperature, top-k)
//   2. score      a reward model (models::Classifier: a regression head's score, or a classifier's
//                 logit of one label) reads prompt + continuation: one number per sequence
//   3. rewards    per token: -kl_coef * (log pi(a_t) - log ref(a_t)), plus the score on the last
//                 token. The reference is the policy as loaded (adapters off under LoRA:
//                 nn::LoraDisabled; a frozen copy under full fine-tuning)
//   4. GAE        advantages and returns from the value head's estimates (gamma, lambda),
//                 advantages whitened over the batch
//   5. update     ppo_epochs passes over the batch in mini-batches: the clipped policy loss
//                 max(-A r, -A clip(r, 1 - eps, 1 + eps)), r = pi_new / pi_old per token, plus
//                 vf_coef * the clipped value loss, one AdamW step per mini-batch
// The value head is a Linear [1, C] on the policy's last hidden states (TRL's
// AutoModelForCausalLMWithValueHead, "v_head"), sharing the body. Each step is logged as TRL logs
// it (objective/scores, objective/kl, policy/clipfrac, loss/policy, loss/value, ...), to stderr
// and to metrics.csv in the run directory; the policy is written like sft's (a model directory or
// a PEFT adapter) at the end and every save_interval steps (atomically).
// Not here: SFT / DPO / the reward model (train/align.h), sampling (infer/sampler.h).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "llmkit/nn/lora.h"

namespace llmkit::train {

struct PpoRun {
  std::string policy_path;   // the decoder to tune (usually an SFT result)
  std::string reward_path;   // a classifier directory (llmkit finetune's output, or an adapter)
  std::string reward_label;  // classification reward: this label's logit (empty: regression)
  std::string prompts_path;  // JSONL {"prompt": ...} (or {"messages": ...}), or plain text lines
  std::string out_dir;
  bool chat = false;            // prompts through the policy's chat template
  std::string method = "lora";  // full | lora
  nn::LoraConfig lora;
  // TRL's PPOConfig defaults (0.12) where they exist.
  int64_t steps = 100;          // PPO iterations (one batch of rollouts each)
  int64_t batch_size = 16;      // rollouts per iteration
  int64_t mini_batch_size = 4;  // rollouts per optimizer step
  int64_t ppo_epochs = 4;       // passes over each batch
  int64_t max_prompt = 64;      // prompt tokens kept (cut from the left)
  int64_t max_new_tokens = 24;  // response length
  double temperature = 0.7, top_p = 1.0;
  int64_t top_k = 0;
  double lr = 3e-6;  // TRL's PPOConfig learning_rate (lora: 1e-4 unless given)
  double kl_coef = 0.05;
  double cliprange = 0.2, cliprange_value = 0.2;
  double vf_coef = 0.1;
  double gamma = 1.0, lam = 0.95;
  double grad_clip = 1.0;
  bool whiten_rewards = false;
  int64_t save_interval = 0;  // 0: only at the end
  uint64_t seed = 1337;
  bool quiet = false;
  int64_t log_interval = 1;
};

// One iteration's figures (TRL's names in metrics.csv's header).
struct PpoStats {
  int64_t step = 0;
  double score = 0;             // objective/scores: mean reward-model score of the rollouts
  double kl = 0;                // objective/kl: mean over rollouts of sum_t (log pi - log ref)
  double non_score_reward = 0;  // objective/non_score_reward: mean of -kl_coef * kl sums
  double rlhf_reward = 0;       // objective/rlhf_reward: score + non_score_reward
  double entropy = 0;           // objective/entropy: mean per-token entropy of the policy
  double policy_loss = 0, value_loss = 0;
  double clipfrac = 0;  // policy/clipfrac_avg
  double approxkl = 0;  // policy/approxkl_avg: mean 0.5 (log r)^2
  double value_clipfrac = 0;
  double seconds = 0;  // wall time of the iteration (rollouts + update)
  double rollout_seconds = 0;
};

struct PpoResult {
  std::vector<PpoStats> history;
  int64_t trainable_params = 0, all_params = 0;
  std::string export_dir;
};

// Errors: a policy that is not a decoder, a reward model that is not a classifier, a
// reward_label it does not have (or one given for a regression head), an empty prompt file,
// mini_batch_size not dividing batch_size.
PpoResult ppo(const PpoRun& run);

// GAE (Schulman et al. 2016) over one response of T tokens: advantages[t] = sum_k (gamma lam)^k
// delta_{t+k}, delta_t = rewards[t] + gamma values[t + 1] - values[t] (values[T] = 0); returns =
// advantages + values.
void gae(std::span<const float> rewards, std::span<const float> values, double gamma, double lam,
         std::span<float> advantages, std::span<float> returns);

}  // namespace llmkit::train
