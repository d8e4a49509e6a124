// `llmkit reward train`: a reward model from preference pairs (train/align.h: reward_train).
// Progress on stderr; the last stdout line is JSON. The result is a classifier directory with
// one output: `llmkit classify --model DIR` scores texts, `llmkit ppo --reward DIR` uses it.
#include "tools/llmkit/align_options.h"

namespace {

constexpr const char* kFooter = R"(
Data: JSONL preference pairs in TRL's formats ({"prompt", "chosen", "rejected"}). The model: a
pretrained body (decoder or encoder) with a one-output head, trained with the Bradley-Terry loss
-log sigmoid(r(chosen) - r(rejected)) as TRL's RewardTrainer; evaluation reports the accuracy
(r(chosen) > r(rejected)) and the mean margin on --val. Defaults: --method lora, --steps 200,
--batch-size 8, --lr 1e-4 (lora) / 1e-5 (full), --max-len 512.)";

}  // namespace

LLMKIT_COMMAND({"reward", "Reward models: `reward train` (Bradley-Terry on preference pairs)",
                [](CLI::App& sub) {
                  auto run = std::make_shared<llmkit::train::RewardRun>();
                  auto a = std::make_shared<llmkit::cli::AlignArgs>();
                  sub.require_subcommand(1);
                  CLI::App* train = sub.add_subcommand(
                      "train", "Train a reward model on preference pairs (Bradley-Terry)");
                  train->footer(kFooter);
                  llmkit::cli::add_align_options(*train, *run, *a, "training pairs (.jsonl)");
                  train->add_flag("--plain", a->plain, "prompts as plain text, no chat template");
                  return [run, a] {
                    llmkit::cli::finish_align_run("reward", *run, *a);
                    const auto t0 = std::chrono::steady_clock::now();
                    llmkit::cli::print_align_result(llmkit::train::reward_train(*run), t0);
                  };
                }});
