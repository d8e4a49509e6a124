// RLHF with PPO (the notes' 인간 피드백 강화학습; Ouyang et al. 2022, Ziegler et al. 2019), as
// TRL's PPO trainer does it, on the CPU:
//   1. rollouts   the policy continues a batch of prompts with our sampler (temperature, top-k,
//                 top-p; seeded per rollout), one prompt at a time with its KV cache; a response
//                 ends after the policy's first eos token (with chat also the template's
//                 end-of-turn token), which it keeps, or after max_new_tokens
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
// The log-probabilities are those of the temperature-scaled distribution (TRL divides the logits
// by the temperature; top-k / top-p are not applied to them). The policy runs without dropout.
// The value head is a Linear [1, C] with a bias on the policy's last hidden states (TRL's
// AutoModelForCausalLMWithValueHead: "v_head.summary.weight" / ".bias"), sharing the body,
// initialised N(0, 0.02), bias 0; saved as v_head.safetensors. Each step is logged as TRL logs
// it (objective/scores, objective/kl, policy/clipfrac, loss/policy, loss/value, ...), to stderr
// and to metrics.csv in the run directory, with a few rollouts per logged step in samples.jsonl
// and the scores' curve in scores.svg; the policy is written like sft's (a model directory or a
// PEFT adapter with task_type CAUSAL_LM naming the base) at the end and every save_interval steps
// (atomically). Determinism: the same run, seed and thread count give bit-identical results.
// Not here: SFT / DPO / the reward model (train/align.h), sampling (infer/sampler.h).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "llmkit/core/tensor.h"
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
  // AdamW (torch's defaults as TRL uses them: betas 0.9 / 0.999, eps 1e-8, no weight decay),
  // decayed linearly to 0 over the steps (TRL's lr_scheduler_type "linear"). 0: 3e-6 (full,
  // TRL's PPOConfig learning_rate) or 1e-4 (lora).
  double lr = 0;
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
  double entropy = 0;  // objective/entropy: mean per-token entropy of the policy (at sampling)
  double policy_loss = 0, value_loss = 0;
  double clipfrac = 0;  // policy/clipfrac_avg
  double approxkl = 0;  // policy/approxkl_avg: mean 0.5 (log r)^2
  double value_clipfrac = 0;
  double seconds = 0;  // wall time of the iteration (rollouts + update)
  double rollout_seconds = 0;
  double lr = 0;               // the learning rate of this iteration's updates
  int64_t num_eos_tokens = 0;  // val/num_eos_tokens: rollouts that ended with an eos token
};

struct PpoResult {
  std::vector<PpoStats> history;
  int64_t trainable_params = 0, all_params = 0;
  std::string export_dir;
};

// Errors: a policy that is not a decoder, a reward model that is not a classifier, a
// reward_label it does not have (or one given for a regression head, or none for a classifier),
// an empty prompt file (or a bad line, naming file:line; a "messages" prompt without chat),
// mini_batch_size not dividing batch_size, max_new_tokens that fill the policy's context; all
// before the run directory is touched.
PpoResult ppo(const PpoRun& run);

// The two clipped losses of one mini-batch, TRL's formulas, over right-padded [B, T] tensors
// (f32) aligned per response token: logp / values (with autograd) of the current policy,
// old_logp / old_values / advantages / returns from the rollout (constants), mask 1 on real
// response tokens and 0 on padding. With r = exp(logp - old_logp):
//   policy_loss = mean_mask max(-A r, -A clamp(r, 1 - cliprange, 1 + cliprange))
//   value_loss  = 0.5 mean_mask max((v - R)^2, (old_v + clamp(v - old_v, -cv, cv) - R)^2)
// and the figures TRL logs about them (no gradient): the fraction of tokens where the clipped
// term won (policy, value) and approxkl = mean_mask 0.5 (logp - old_logp)^2.
struct PpoLoss {
  Tensor policy_loss, value_loss;  // scalars
  double clipfrac = 0, value_clipfrac = 0, approxkl = 0;
};
PpoLoss ppo_loss(const Tensor& logp, const Tensor& values, const Tensor& old_logp,
                 const Tensor& old_values, const Tensor& advantages, const Tensor& returns,
                 const Tensor& mask, double cliprange, double cliprange_value);

// GAE (Schulman et al. 2016) over one response of T tokens: advantages[t] = sum_k (gamma lam)^k
// delta_{t+k}, delta_t = rewards[t] + gamma values[t + 1] - values[t] (values[T] = 0); returns =
// advantages + values.
void gae(std::span<const float> rewards, std::span<const float> values, double gamma, double lam,
         std::span<float> advantages, std::span<float> returns);

// One point of the reward-vs-KL frontier (the DPO paper's figure 2): a policy's samples on
// held-out prompts, their mean reward-model score and the mean KL to a reference, estimated per
// sample as sum_t (log pi(y_t) - log ref(y_t)) over the sampled tokens (at `temperature`, the
// distribution sampled). Sample k of prompt i is drawn from the stream (seed, k, i), so
// policies are compared on the same randomness. With pairs_out (samples >= 2): the best- and
// worst-scored samples of each prompt as a preference pair {"prompt", "chosen", "rejected",
// "score_chosen", "score_rejected"} (prompts whose samples tie are skipped) -- DPO's data when
// the preferences come from a reward model.
struct RolloutEvalRun {
  std::string policy_path, reference_path, reward_path, reward_label, prompts_path;
  bool chat = false;
  int64_t limit = 0;    // the first N prompts (0: all)
  int64_t samples = 1;  // per prompt
  int64_t max_prompt = 64, max_new_tokens = 24;
  double temperature = 1.0, top_p = 1.0;
  int64_t top_k = 0;
  uint64_t seed = 1337;
  std::string pairs_out, samples_out;  // JSONL files written atomically ("" : none)
  bool quiet = false;
};
struct RolloutEvalResult {
  double score = 0, score_std = 0, kl = 0, kl_std = 0;
  int64_t n = 0, pairs = 0;
  double seconds = 0;
};
RolloutEvalResult evaluate_policy(const RolloutEvalRun& run);

}  // namespace llmkit::train
