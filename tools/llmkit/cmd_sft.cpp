// `llmkit sft`: supervised fine-tuning (instruction tuning) of a decoder on conversations
// (train/align.h: sft). Progress on stderr; the last stdout line is JSON.
#include "tools/llmkit/align_options.h"

namespace {

constexpr const char* kFooter = R"(
Data: JSONL, one conversation per line: {"messages": [{"role": "user", "content": ...},
{"role": "assistant", "content": ...}, ...]} or {"prompt": ..., "completion": ...}. The model's
chat template renders them (a model without one gets a plain "User: / Assistant:" template, saved
with the result); the loss counts only the assistant's tokens and the end-of-turn token after
each answer. Short conversations are packed into rows of --max-len tokens that never attend
across examples (--no-pack: one per row). --out ends up usable by generate / chat: a model
directory (full) or a PEFT adapter directory naming the base (lora); plus metrics.csv, loss.svg
and report.json. Defaults: --method lora (r 8, PEFT's targets), --steps 200, --batch-size 8,
--lr 2e-4 (lora) / 2e-5 (full), 10% warm-up then linear decay, --max-len 512.)";

}  // namespace

LLMKIT_COMMAND({"sft", "Supervised fine-tuning on conversations (instruction tuning)",
                [](CLI::App& sub) {
                  auto run = std::make_shared<llmkit::train::SftRun>();
                  auto a = std::make_shared<llmkit::cli::AlignArgs>();
                  sub.footer(kFooter);
                  llmkit::cli::add_align_options(sub, *run, *a, "training conversations (.jsonl)");
                  auto np = std::make_shared<bool>(false);
                  sub.add_flag("--plain", a->plain,
                               "prompt/completion as plain text (continue text; no template)");
                  sub.add_flag("--no-pack", *np, "one conversation per row (no packing)");
                  return [run, a, np] {
                    run->pack = !*np;
                    llmkit::cli::finish_align_run("sft", *run, *a);
                    const auto t0 = std::chrono::steady_clock::now();
                    llmkit::cli::print_align_result(llmkit::train::sft(*run), t0);
                  };
                }});
