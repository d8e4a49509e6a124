// `llmkit finetune`: fine-tune a pretrained model (llmkit dir, Hugging Face dir or .gguf) with a
// task head on labelled text (train/finetune.h does the work). Progress on stderr; the last
// stdout line is JSON: the final validation metrics, trainable / all parameters and seconds.
// Exit status: 0 when the run reached its steps, 130 when Ctrl-C stopped it, 1 on an error.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>

#include "llmkit/core/parallel.h"
#include "llmkit/train/finetune.h"
#include "tools/llmkit/command.h"

namespace {

struct Args {
  llmkit::train::FinetuneRun run;
  std::string freeze, targets;
  int64_t steps = 0, batch = 0, grad_accum = 0, eval_interval = 0;
  double lr = 0;
  uint64_t seed = 1337;
  int threads = 0;
};

constexpr const char* kFooter = R"(
Methods: full (every parameter trains; --freeze P,... keeps name prefixes frozen), head (the
body is frozen: a linear probe), lora (LoRA adapters + head; PEFT's default targets per arch),
qlora (lora over a body quantised to --qlora-type). Data: TSV (text<TAB>label) or JSONL
({"text", "label"}). --out ends up usable by `llmkit classify --model DIR`: a model directory
(full, head) or a PEFT adapter directory naming the base model (lora, qlora); plus metrics.csv,
loss.svg, confusion.txt and report.json. --resume continues a stopped run exactly (its stored
settings; --steps N moves the end). Defaults: --steps 1000, --batch-size 16, --lr 2e-5 (full),
1e-2 (head), 1e-3 (lora, qlora) with 6% warm-up and linear decay to 0, --eval-interval 100,
--max-len 128, --lora-r 8 --lora-alpha 8 --lora-dropout 0, --qlora-type q4_0, --pooling cls.)";

void print_result(const llmkit::train::FinetuneResult& res, double seconds) {
  nlohmann::json out = {{"step", res.train.step},
                        {"trainable_params", res.trainable_params},
                        {"all_params", res.all_params},
                        {"seconds", seconds},
                        {"train_seconds", res.train_seconds},
                        {"steps_run", res.steps_run}};
  if (res.val_loss >= 0) out["val_loss"] = res.val_loss;
  if (res.val_mse >= 0) {
    out["val_mse"] = res.val_mse;
    out["val_pearson"] = res.val_pearson;
  } else if (res.report.n > 0) {
    out["val_accuracy"] = res.report.accuracy;
    out["val_macro_f1"] = res.report.macro_f1;
  }
  if (!res.export_dir.empty()) out["model"] = res.export_dir;
  std::printf("%s\n", out.dump().c_str());
}

}  // namespace

LLMKIT_COMMAND(
    {"finetune", "Fine-tune a pretrained model with a task head (full, head, LoRA, QLoRA)",
     [](CLI::App& sub) {
       auto a = std::make_shared<Args>();
       auto& r = a->run;
       sub.footer(kFooter);
       sub.add_option("--model", r.model_path, "pretrained model (dir or .gguf)")->required();
       sub.add_option("--task", r.task, "classify | regress")
           ->check(CLI::IsMember({"classify", "regress"}));
       sub.add_option("--train", r.train_path, "training data (.tsv / .jsonl)")->required();
       sub.add_option("--val", r.val_path, "validation data (.tsv / .jsonl)")->required();
       sub.add_option("--method", r.method, "full | head | lora | qlora")
           ->check(CLI::IsMember({"full", "head", "lora", "qlora"}));
       sub.add_option("--out", r.out_dir, "run directory")->required();
       sub.add_option("--freeze", a->freeze, "parameter-name prefixes to freeze (full), a,b,...");
       sub.add_option("--lora-r", r.lora.r, "LoRA rank")->check(CLI::PositiveNumber);
       sub.add_option("--lora-alpha", r.lora.alpha, "LoRA alpha")->check(llmkit::cli::positive());
       sub.add_option("--lora-dropout", r.lora.dropout, "LoRA dropout")
           ->check(llmkit::cli::number_in(0, 1, false, true));
       sub.add_option("--lora-targets", a->targets, "module names to adapt, a,b (default: PEFT's)");
       sub.add_option("--qlora-type", r.qlora_type, "base weight type for qlora (q4_0, q8_0)");
       sub.add_option("--pooling", r.pooling, "encoders: cls | mean")
           ->check(CLI::IsMember({"cls", "mean"}));
       sub.add_option("--max-len", r.max_len, "tokens per text")->check(CLI::Range(2, 1 << 20));
       sub.add_option("--limit", r.limit, "train on N training examples drawn at random (--seed)")
           ->check(CLI::PositiveNumber);
       sub.add_flag("--from-scratch", r.from_scratch, "re-initialise the body (no pretraining)");
       sub.add_option("--steps", a->steps, "optimizer steps")->check(CLI::PositiveNumber);
       sub.add_option("--batch-size", a->batch, "examples per micro-batch")
           ->check(CLI::PositiveNumber);
       sub.add_option("--lr", a->lr, "peak learning rate")->check(llmkit::cli::positive());
       sub.add_option("--grad-accum", a->grad_accum, "micro-batches per step")
           ->check(CLI::PositiveNumber);
       sub.add_option("--eval-interval", a->eval_interval, "evaluate every N steps")
           ->check(CLI::PositiveNumber);
       sub.add_option("--seed", a->seed, "seed (head init, shuffling, dropout, LoRA init)");
       sub.add_option("--threads", a->threads, "threads")->check(CLI::PositiveNumber);
       sub.add_flag("--resume", r.resume, "continue the run in --out");
       return [a] {
         if (a->threads > 0) llmkit::set_num_threads(a->threads);
         auto& r = a->run;
         r.freeze = llmkit::cli::split_commas(a->freeze);
         r.lora.target_modules = llmkit::cli::split_commas(a->targets);
         r.train = llmkit::train::finetune_defaults(r.method);
         r.train.seed = a->seed;
         r.train.steps = a->steps > 0 ? a->steps : (r.resume ? 0 : r.train.steps);
         if (a->batch > 0) r.train.batch_size = a->batch;
         if (a->lr > 0) r.train.lr = a->lr;
         if (a->grad_accum > 0) r.train.grad_accum = a->grad_accum;
         if (a->eval_interval > 0) r.train.eval_interval = a->eval_interval;
         const auto t0 = std::chrono::steady_clock::now();
         const auto res = llmkit::train::finetune(r);
         if (!res.report.labels.empty() && !r.quiet)
           std::fprintf(stderr, "%s", res.report.to_text().c_str());
         print_result(res,
                      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
         if (res.train.interrupted) {
           std::fflush(stdout);
           std::exit(130);
         }
       };
     }});
