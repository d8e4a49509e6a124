// `llmkit dpo`: Direct Preference Optimization of a decoder on preference pairs
// (train/align.h: dpo). Progress on stderr; the last stdout line is JSON.
#include "tools/llmkit/align_options.h"

namespace {

constexpr const char* kFooter = R"(
Data: JSONL preference pairs in TRL's formats: {"prompt": ..., "chosen": ..., "rejected": ...}
(strings, or lists of messages). Loss: TRL's sigmoid DPO loss -log sigmoid(beta * ((log pi(c) -
log ref(c)) - (log pi(r) - log ref(r)))); the reference is the model as loaded, whose
log-probabilities are computed once before step 1 (reference_logps.json), so no second copy is
held. Reported as TRL does: rewards/chosen, rewards/rejected, rewards/accuracies,
rewards/margins, logps/chosen, logps/rejected. Prompts go through the chat template unless
--plain. Defaults: --beta 0.1, --method lora, --steps 200, --batch-size 8, --lr 5e-6 (lora) /
1e-6 (full), --max-len 512, --max-prompt 128.)";

}  // namespace

LLMKIT_COMMAND({"dpo", "Direct Preference Optimization on preference pairs", [](CLI::App& sub) {
                  auto run = std::make_shared<llmkit::train::DpoRun>();
                  auto a = std::make_shared<llmkit::cli::AlignArgs>();
                  sub.footer(kFooter);
                  llmkit::cli::add_align_options(sub, *run, *a, "training pairs (.jsonl)");
                  sub.add_option("--beta", run->beta, "DPO's beta (KL strength)")
                      ->check(llmkit::cli::positive());
                  sub.add_option("--max-prompt", run->max_prompt, "prompt tokens kept")
                      ->check(CLI::PositiveNumber);
                  sub.add_flag("--plain", a->plain, "prompts as plain text, no chat template");
                  return [run, a] {
                    llmkit::cli::finish_align_run("dpo", *run, *a);
                    const auto t0 = std::chrono::steady_clock::now();
                    llmkit::cli::print_align_result(llmkit::train::dpo(*run), t0);
                  };
                }});
