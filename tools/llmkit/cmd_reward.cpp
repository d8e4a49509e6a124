// `llmkit reward train`: a reward model from preference pairs (train/align.h: reward_train).
// `llmkit reward eval`: a policy's mean reward and KL to a reference on held-out prompts (one
// point of the reward-vs-KL frontier), optionally writing reward-ranked preference pairs
// (train/ppo.h: evaluate_policy). Progress on stderr; the last stdout line is JSON.
#include "llmkit/train/ppo.h"
#include "tools/llmkit/align_options.h"

namespace {

constexpr const char* kTrainFooter = R"(
Data: JSONL preference pairs in TRL's formats ({"prompt", "chosen", "rejected"}). The model: a
pretrained body (decoder or encoder) with a one-output head, trained with the Bradley-Terry loss
-log sigmoid(r(chosen) - r(rejected)) as TRL's RewardTrainer; evaluation reports the accuracy
(r(chosen) > r(rejected)) and the mean margin on --val. The result is a classifier directory:
`llmkit classify --model DIR` scores texts, `llmkit ppo --reward DIR` uses it. Defaults: --method
lora, --steps 200, --batch-size 8, --lr 1e-3 (lora) / 1e-5 (full), --max-len 512.)";

constexpr const char* kEvalFooter = R"(
Samples --samples continuations of each prompt (JSONL {"prompt"} / {"messages"} or text lines)
with the policy, scores prompt + continuation with the reward model (a regression head's output,
or the logit of --reward-label), and estimates KL(policy || reference) per sample as the sum of
log pi - log ref over the sampled tokens. Sample k of prompt i uses the same random stream for
every policy. --pairs-out F writes each prompt's best and worst sample as a preference pair (the
data `llmkit dpo` trains on). Defaults: --samples 1, --max-new-tokens 24, --temperature 1.)";

}  // namespace

LLMKIT_COMMAND(
    {"reward", "Reward models: `reward train` (Bradley-Terry), `reward eval` (reward and KL)",
     [](CLI::App& sub) {
       sub.require_subcommand(1);
       auto run = std::make_shared<llmkit::train::RewardRun>();
       auto a = std::make_shared<llmkit::cli::AlignArgs>();
       CLI::App* train =
           sub.add_subcommand("train", "Train a reward model on preference pairs (Bradley-Terry)");
       train->footer(kTrainFooter);
       llmkit::cli::add_align_options(*train, *run, *a, "training pairs (.jsonl)");
       train->add_flag("--plain", a->plain, "prompts as plain text, no chat template");

       auto e = std::make_shared<llmkit::train::RolloutEvalRun>();
       auto threads = std::make_shared<int>(0);
       CLI::App* ev = sub.add_subcommand(
           "eval", "A policy's mean reward and KL to a reference on prompts; preference pairs");
       ev->footer(kEvalFooter);
       ev->add_option("--policy", e->policy_path, "the policy (dir, .gguf or adapter)")->required();
       ev->add_option("--reference", e->reference_path, "the reference policy (for the KL)")
           ->required();
       ev->add_option("--reward", e->reward_path, "the reward model (a classifier directory)")
           ->required();
       ev->add_option("--reward-label", e->reward_label, "classifier reward: this label's logit");
       ev->add_option("--prompts", e->prompts_path, "prompts (.jsonl or text lines)")->required();
       ev->add_flag("--chat", e->chat, "prompts through the policy's chat template");
       ev->add_option("--limit", e->limit, "the first N prompts")->check(CLI::PositiveNumber);
       ev->add_option("--samples", e->samples, "samples per prompt")->check(CLI::PositiveNumber);
       ev->add_option("--max-prompt", e->max_prompt, "prompt tokens kept")
           ->check(CLI::PositiveNumber);
       ev->add_option("--max-new-tokens", e->max_new_tokens, "tokens per sample")
           ->check(CLI::PositiveNumber);
       ev->add_option("--temperature", e->temperature, "sampling temperature")
           ->check(llmkit::cli::positive());
       ev->add_option("--top-k", e->top_k, "top-k (0: off)")->check(CLI::NonNegativeNumber);
       ev->add_option("--top-p", e->top_p, "top-p")->check(llmkit::cli::number_in(0, 1, true));
       ev->add_option("--seed", e->seed, "sampling seed");
       ev->add_option("--pairs-out", e->pairs_out, "write best/worst samples as pairs (.jsonl)");
       ev->add_option("--samples-out", e->samples_out, "write every sample (.jsonl)");
       ev->add_option("--threads", *threads, "threads")->check(CLI::PositiveNumber);
       return [run, a, train, e, threads] {
         const auto t0 = std::chrono::steady_clock::now();
         if (train->parsed()) {
           llmkit::cli::finish_align_run("reward", *run, *a);
           llmkit::cli::print_align_result(llmkit::train::reward_train(*run), t0);
           return;
         }
         if (*threads > 0) llmkit::set_num_threads(*threads);
         const auto r = llmkit::train::evaluate_policy(*e);
         nlohmann::json out = {{"score", r.score}, {"score_std", r.score_std},
                               {"kl", r.kl},       {"kl_std", r.kl_std},
                               {"samples", r.n},   {"seconds", r.seconds}};
         if (!e->pairs_out.empty()) out["pairs"] = r.pairs;
         std::printf("%s\n", out.dump().c_str());
       };
     }});
