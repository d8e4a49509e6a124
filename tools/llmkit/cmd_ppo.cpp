// `llmkit ppo`: RLHF with PPO (train/ppo.h does the work): a policy decoder learns to write what
// a reward model scores high while a KL penalty keeps it near where it started. Progress on
// stderr, one line per logged iteration; the last stdout line is JSON: the first and last
// iterations' mean scores and KL, trainable / all parameters, seconds and the output directory.
#include <chrono>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>

#include "llmkit/core/parallel.h"
#include "llmkit/train/ppo.h"
#include "tools/llmkit/command.h"

namespace {

struct Args {
  llmkit::train::PpoRun run;
  std::string targets;
  int threads = 0;
};

constexpr const char* kFooter = R"(
Each iteration samples --batch-size responses to prompts of --prompts (JSONL {"prompt": ...} or
{"messages": [...]} with --chat, or one prompt per line), scores prompt + response with --reward
(a regression head's output, or the logit of --reward-label for a classifier), adds the per-token
penalty -kl-coef * (log pi - log ref) against the policy as loaded, and takes --ppo-epochs passes
of clipped PPO updates in mini-batches of --mini-batch-size (TRL's algorithm and defaults). --out
gets metrics.csv (TRL's column names), samples.jsonl, scores.svg, the policy (lora: a PEFT adapter
naming the base; full: a model directory) and v_head.safetensors. Defaults: --method lora,
--steps 100, --batch-size 16, --mini-batch-size 4, --ppo-epochs 4, --max-new-tokens 24,
--max-prompt 64, --temperature 0.7, --lr 3e-6 (full) or 1e-4 (lora) with linear decay to 0,
--kl-coef 0.05, --cliprange 0.2, --cliprange-value 0.2, --vf-coef 0.1, --gamma 1, --lam 0.95,
--lora-r 8 on PEFT's default targets.)";

void print_result(const llmkit::train::PpoResult& res, double seconds) {
  const auto& h = res.history;
  nlohmann::json out = {{"steps", h.size()},
                        {"trainable_params", res.trainable_params},
                        {"all_params", res.all_params},
                        {"seconds", seconds}};
  if (!h.empty()) {
    out["first_score"] = h.front().score;
    out["last_score"] = h.back().score;
    out["first_kl"] = h.front().kl;
    out["last_kl"] = h.back().kl;
  }
  if (!res.export_dir.empty()) out["model"] = res.export_dir;
  std::printf("%s\n", out.dump().c_str());
}

}  // namespace

LLMKIT_COMMAND(
    {"ppo", "RLHF: tune a decoder against a reward model with PPO (full or LoRA)",
     [](CLI::App& sub) {
       using llmkit::cli::non_negative;
       using llmkit::cli::number_in;
       using llmkit::cli::positive;
       auto a = std::make_shared<Args>();
       auto& r = a->run;
       sub.footer(kFooter);
       sub.add_option("--model", r.policy_path, "the policy to tune (dir, .gguf)")->required();
       sub.add_option("--reward", r.reward_path, "the reward model: a classifier directory")
           ->required();
       sub.add_option("--reward-label", r.reward_label,
                      "a classifier's label whose logit is the reward (not for regression)");
       sub.add_option("--prompts", r.prompts_path, "prompts (.jsonl or one per line)")->required();
       sub.add_option("--out", r.out_dir, "run directory")->required();
       sub.add_flag("--chat", r.chat, "render prompts with the policy's chat template");
       sub.add_option("--method", r.method, "full | lora")->check(CLI::IsMember({"full", "lora"}));
       sub.add_option("--lora-r", r.lora.r, "LoRA rank")->check(CLI::PositiveNumber);
       sub.add_option("--lora-alpha", r.lora.alpha, "LoRA alpha")->check(positive());
       sub.add_option("--lora-dropout", r.lora.dropout, "LoRA dropout")
           ->check(number_in(0, 1, false, true));
       sub.add_option("--lora-targets", a->targets, "module names to adapt, a,b (default: PEFT's)");
       sub.add_option("--steps", r.steps, "PPO iterations")->check(CLI::PositiveNumber);
       sub.add_option("--batch-size", r.batch_size, "rollouts per iteration")
           ->check(CLI::PositiveNumber);
       sub.add_option("--mini-batch-size", r.mini_batch_size, "rollouts per optimizer step")
           ->check(CLI::PositiveNumber);
       sub.add_option("--ppo-epochs", r.ppo_epochs, "passes over each batch")
           ->check(CLI::PositiveNumber);
       sub.add_option("--max-prompt", r.max_prompt, "prompt tokens kept (from the end)")
           ->check(CLI::PositiveNumber);
       sub.add_option("--max-new-tokens", r.max_new_tokens, "response tokens")
           ->check(CLI::PositiveNumber);
       sub.add_option("--temperature", r.temperature, "sampling temperature")->check(positive());
       sub.add_option("--top-k", r.top_k, "keep the k most likely tokens (0: off)")
           ->check(CLI::NonNegativeNumber);
       sub.add_option("--top-p", r.top_p, "nucleus sampling mass (1: off)")
           ->check(number_in(0, 1, true, false));
       sub.add_option("--lr", r.lr, "peak learning rate")->check(positive());
       sub.add_option("--kl-coef", r.kl_coef, "KL penalty coefficient")->check(non_negative());
       sub.add_option("--cliprange", r.cliprange, "policy ratio clip")->check(positive());
       sub.add_option("--cliprange-value", r.cliprange_value, "value clip")->check(positive());
       sub.add_option("--vf-coef", r.vf_coef, "value loss weight")->check(non_negative());
       sub.add_option("--gamma", r.gamma, "discount")->check(number_in(0, 1));
       sub.add_option("--lam", r.lam, "GAE lambda")->check(number_in(0, 1));
       sub.add_option("--grad-clip", r.grad_clip, "max gradient norm (0: off)")
           ->check(non_negative());
       sub.add_flag("--whiten-rewards", r.whiten_rewards, "whiten per-token rewards before GAE");
       sub.add_option("--save-interval", r.save_interval, "also save every N iterations")
           ->check(CLI::NonNegativeNumber);
       sub.add_option("--log-interval", r.log_interval, "log (and sample) every N iterations")
           ->check(CLI::PositiveNumber);
       sub.add_option("--seed", r.seed, "seed (sampling, prompt order, mini-batches, inits)");
       sub.add_option("--threads", a->threads, "threads")->check(CLI::PositiveNumber);
       sub.add_flag("--quiet", r.quiet, "no progress on stderr");
       return [a] {
         if (a->threads > 0) llmkit::set_num_threads(a->threads);
         auto& r = a->run;
         r.lora.target_modules = llmkit::cli::split_commas(a->targets);
         const auto t0 = std::chrono::steady_clock::now();
         const auto res = llmkit::train::ppo(r);
         print_result(res,
                      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
       };
     }});
