// The training loop. Checkpoint files and their exact-resume contract are in checkpoint.cpp.
#include "llmkit/train/trainer.h"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "llmkit/core/parallel.h"
#include "llmkit/data/batches.h"
#include "llmkit/train/adamw.h"
#include "llmkit/train/checkpoint.h"
#include "llmkit/train/clip.h"
#include "llmkit/train/schedule.h"
#include "llmkit/train/task.h"

namespace llmkit::train {

namespace fs = std::filesystem;
using nlohmann::json;

TrainConfig TrainConfig::from_json(const json& j) {
  TrainConfig c;
  LLMKIT_CHECK(j.is_object(), "config: \"train\" must be a JSON object");
  for (auto& [key, v] : j.items()) {
    // nlohmann converts a float to an integer field unchecked: undefined behaviour past the
    // type's range (found by fuzz_config_json). No field needs more than 2^53 or a negative seed.
    if (v.is_number_float()) {
      const double d = v.get<double>();
      LLMKIT_CHECK(std::fabs(d) <= 0x1p53 && (key != "seed" || d >= 0), "config: train field '",
                   key, "' is out of range (", v.dump(), ")");
    }
    try {
      if (key == "objective")
        v.get_to(c.objective);
      else if (key == "mask_prob")
        v.get_to(c.mask_prob);
      else if (key == "nsp")
        v.get_to(c.nsp);
      else if (key == "noise_density")
        v.get_to(c.noise_density);
      else if (key == "mean_span")
        v.get_to(c.mean_span);
      else if (key == "batch_size")
        v.get_to(c.batch_size);
      else if (key == "grad_accum")
        v.get_to(c.grad_accum);
      else if (key == "steps")
        v.get_to(c.steps);
      else if (key == "schedule_steps")
        v.get_to(c.schedule_steps);
      else if (key == "lr")
        v.get_to(c.lr);
      else if (key == "min_lr")
        v.get_to(c.min_lr);
      else if (key == "warmup")
        v.get_to(c.warmup);
      else if (key == "schedule")
        v.get_to(c.schedule);
      else if (key == "weight_decay")
        v.get_to(c.weight_decay);
      else if (key == "beta1")
        v.get_to(c.beta1);
      else if (key == "beta2")
        v.get_to(c.beta2);
      else if (key == "grad_clip")
        v.get_to(c.grad_clip);
      else if (key == "eval_interval")
        v.get_to(c.eval_interval);
      else if (key == "eval_batches")
        v.get_to(c.eval_batches);
      else if (key == "checkpoint_interval")
        v.get_to(c.checkpoint_interval);
      else if (key == "log_interval")
        v.get_to(c.log_interval);
      else if (key == "val_fraction")
        v.get_to(c.val_fraction);
      else if (key == "seed")
        v.get_to(c.seed);
      else
        fail("config: unknown train field '", key, "'");
    } catch (const json::exception&) {
      fail("config: train field '", key, "' has the wrong type (", v.dump(), ")");
    }
  }
  LLMKIT_CHECK(
      c.objective == "clm" || c.objective == "mlm" || c.objective == "span" ||
          c.objective == "infill" || c.objective == "translate" || c.objective == "classify" ||
          c.objective == "regress" || c.objective == "sft" || c.objective == "dpo" ||
          c.objective == "reward",
      "config: objective '", c.objective,
      "' is not one of clm, mlm, span, infill, translate, classify, regress, sft, dpo, reward");
  LLMKIT_CHECK(c.mask_prob > 0 && c.mask_prob < 1 && c.noise_density > 0 && c.noise_density < 1 &&
                   c.mean_span >= 1,
               "config: need 0 < mask_prob < 1, 0 < noise_density < 1 and mean_span >= 1");
  LLMKIT_CHECK(c.batch_size > 0 && c.grad_accum > 0 && c.steps > 0 && c.eval_interval > 0 &&
                   c.log_interval > 0 && c.eval_batches > 0,
               "config: batch_size, grad_accum, steps, eval_interval, eval_batches and "
               "log_interval must be positive");
  LLMKIT_CHECK(c.schedule_steps >= 0 && c.checkpoint_interval >= 0 && c.warmup >= -1,
               "config: schedule_steps, checkpoint_interval and warmup must not be negative");
  if (c.schedule_steps == 0) c.schedule_steps = c.steps;
  // A warm-up longer than a short run would spend the whole run below the configured lr.
  if (c.warmup < 0) c.warmup = std::min<int64_t>(100, c.schedule_steps / 10);
  LLMKIT_CHECK(c.lr > 0 && c.min_lr >= 0 && c.min_lr <= c.lr, "config: need 0 <= min_lr <= lr");
  LLMKIT_CHECK(c.val_fraction > 0 && c.val_fraction < 0.5, "config: val_fraction ", c.val_fraction,
               " outside (0, 0.5)");
  return c;
}

json TrainConfig::to_json() const {
  return json{{"objective", objective},
              {"mask_prob", mask_prob},
              {"nsp", nsp},
              {"noise_density", noise_density},
              {"mean_span", mean_span},
              {"batch_size", batch_size},
              {"grad_accum", grad_accum},
              {"steps", steps},
              {"schedule_steps", schedule_steps},
              {"lr", lr},
              {"min_lr", min_lr},
              {"warmup", warmup},
              {"schedule", schedule},
              {"weight_decay", weight_decay},
              {"beta1", beta1},
              {"beta2", beta2},
              {"grad_clip", grad_clip},
              {"eval_interval", eval_interval},
              {"eval_batches", eval_batches},
              {"checkpoint_interval", checkpoint_interval},
              {"log_interval", log_interval},
              {"val_fraction", val_fraction},
              {"seed", seed}};
}

namespace {

std::atomic<bool> g_interrupted{false};
extern "C" void on_sigint(int) {
  g_interrupted.store(true);
}

// Fails before step 1 when the text cannot fill one training batch or one evaluation, saying
// how much text would: the validation split is the last val_fraction of the tokens, at least 1.
void check_data_size(const data::ShardSet& shards, const TrainConfig& tc, const std::string& arch,
                     const DataNeeds& need) {
  const int64_t n_train = shards.train_tokens, n_val = shards.val_tokens;
  if (n_train >= need.train_tokens && n_val >= need.val_tokens) return;
  auto fits = [&](int64_t n) {
    const int64_t v = std::max<int64_t>(1, static_cast<int64_t>(n * tc.val_fraction));
    return v >= need.val_tokens && n - v >= need.train_tokens;
  };
  int64_t enough =
      std::max<int64_t>(need.train_tokens + need.val_tokens,
                        static_cast<int64_t>(std::ceil(need.val_tokens / tc.val_fraction)) - 2);
  while (!fits(enough)) ++enough;
  const int64_t total = n_train + n_val;
  if (n_val < need.val_tokens)
    fail("data: the validation split has ", n_val, " tokens (val_fraction ", tc.val_fraction,
         " of ", total, "), but ", arch, " needs ", need.val_tokens, " to evaluate (", need.val_why,
         "): give at least ", enough, " tokens of text, or raise val_fraction");
  fail("data: the training split has ", n_train, " tokens, but ", arch, " needs ",
       need.train_tokens, " for one batch (", need.train_why, "): give at least ", enough,
       " tokens of text (now ", total, ")");
}

// Installs the Ctrl-C handler for the duration of training and restores the previous one.
struct SigintScope {
  SigintScope() {
    g_interrupted.store(false);
    struct sigaction sa = {};
    sa.sa_handler = on_sigint;
    // SA_RESTART: a Ctrl-C must not fail a write of the checkpoint it asks for (EINTR).
    // SA_RESETHAND: a second Ctrl-C ends the process at once; the last checkpoint is intact.
    sa.sa_flags = SA_RESTART | SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old);
  }
  ~SigintScope() { sigaction(SIGINT, &old, nullptr); }
  struct sigaction old = {};
};

std::string format_duration(double s) {
  char buf[32];
  if (s < 60)
    std::snprintf(buf, sizeof buf, "%.0fs", s);
  else if (s < 3600)
    std::snprintf(buf, sizeof buf, "%dm%02ds", int(s) / 60, int(s) % 60);
  else
    std::snprintf(buf, sizeof buf, "%dh%02dm", int(s) / 3600, int(s) % 3600 / 60);
  return buf;
}

// One status line: redrawn in place on a terminal, a log line every log_interval otherwise.
void print_status(const StepRecord& r, int64_t total, double eta, bool tty, bool force) {
  char line[256];
  const int width = 24;
  const int fill = static_cast<int>(width * (r.step) / std::max<int64_t>(total, 1));
  std::string bar(fill, '#');
  bar.resize(width, '.');
  std::snprintf(line, sizeof line, "step %6lld/%lld  loss %.4f  lr %.2e  %.0f tok/s  ETA %s",
                static_cast<long long>(r.step), static_cast<long long>(total), r.loss, r.lr,
                r.tokens_per_sec, format_duration(eta).c_str());
  if (tty)
    std::fprintf(stderr, "\r[%s] %s\033[K%s", bar.c_str(), line, force ? "\n" : "");
  else if (force)
    std::fprintf(stderr, "%s\n", line);
}

void print_run_header(const Checkpoint& ck, const nn::Module& model, int64_t step) {
  const TrainConfig& tc = ck.train_config;
  std::fprintf(stderr, "model: %s, %.2fM parameters; objective %s; ",
               ck.model_config.value("arch", "gpt").c_str(), model.num_parameters() / 1e6,
               tc.objective.c_str());
  if (ck.data.empty())
    std::fprintf(stderr, "data: %zu pairs file(s)\n", ck.pairs.size());
  else
    std::fprintf(stderr, "data: %lld train / %lld val tokens\n",
                 static_cast<long long>(ck.shards.train_tokens),
                 static_cast<long long>(ck.shards.val_tokens));
  if (!ck.resume_dir.empty())
    std::fprintf(stderr, "resuming at step %lld of %lld (lr schedule of %lld steps)\n",
                 static_cast<long long>(step), static_cast<long long>(tc.steps),
                 static_cast<long long>(tc.schedule_steps));
  if (step >= tc.steps)
    std::fprintf(stderr, "the run is at step %lld, --steps %lld: nothing to train\n",
                 static_cast<long long>(step), static_cast<long long>(tc.steps));
}

std::vector<Tensor> trainable_tensors(const nn::Module& model) {
  std::vector<Tensor> out;
  for (auto& [name, t] : model.named_parameters())
    if (t.requires_grad()) out.push_back(t);
  return out;
}

}  // namespace

std::vector<std::pair<std::string, Tensor>> trainable_parameters(const nn::Module& model) {
  std::vector<std::pair<std::string, Tensor>> out;
  for (auto& [name, t] : model.named_parameters())
    if (t.requires_grad()) out.emplace_back(name, t);
  return out;
}

double evaluate_tokens(models::GPT& model, std::span<const int32_t> tokens, int64_t batch,
                       int64_t max_batches, int64_t context) {
  NoGradGuard ng;
  const bool was_training = model.is_training();
  LLMKIT_CHECK(context >= 0 && context <= model.config().block_size, "evaluate: context ", context,
               " is not in 1..", model.config().block_size, " (the model's block_size)");
  model.eval();
  const int64_t T = context > 0 ? context : model.config().block_size;
  const int64_t windows = (static_cast<int64_t>(tokens.size()) - 1) / T;
  LLMKIT_CHECK(windows > 0, "evaluate: ", tokens.size(), " tokens do not fill one window of ",
               T + 1, context > 0 ? " (context + 1)" : " (block_size + 1)");
  const int64_t limit = max_batches > 0 ? std::min(windows, max_batches * batch) : windows;
  double sum = 0;
  for (int64_t w0 = 0; w0 < limit; w0 += batch) {
    const int64_t rows = std::min(batch, limit - w0);
    std::vector<int32_t> ids(rows * T), tgt(rows * T);
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t t = 0; t < T; ++t) {
        ids[r * T + t] = tokens[(w0 + r) * T + t];
        tgt[r * T + t] = tokens[(w0 + r) * T + t + 1];
      }
    sum += model.loss(Tensor::from_vector(ids, {rows, T}), Tensor::from_vector(tgt, {rows, T}))
               .item<double>() *
           rows;
  }
  model.train(was_training);
  return sum / limit;
}

double evaluate_shard(models::GPT& model, const std::string& shard_path, int64_t batch,
                      int64_t max_batches) {
  const data::TokenShard shard = data::TokenShard::open(shard_path);
  std::vector<int32_t> tokens(shard.size());
  shard.read(0, shard.size(), tokens.data());
  return evaluate_tokens(model, tokens, batch, max_batches);
}

TrainResult train_model(const TrainRun& run) {
  LLMKIT_CHECK(!run.out_dir.empty(), "train: --out DIR is required");
  const RunLock lock(run.out_dir);
  Checkpoint ck = prepare_run(run);  // config, tokenizer, shards
  TrainConfig& tc = ck.train_config;
  const std::string config_name =
      ck.resume_dir.empty() ? run.config_path : ck.resume_dir + "/config.json";
  if (!ck.data.empty()) {
    DataNeeds need;
    try {
      need = task_data_needs(ck.model_config, tc);  // also validates "arch" and the model fields
    } catch (const Error& e) {
      fail(config_name, ": ", e.what());
    }
    check_data_size(ck.shards, tc, ck.model_config.value("arch", "gpt"), need);
  }
  const tokenizer::Tokenizer tok = tokenizer::Tokenizer::load(ck.tokenizer_path);
  TaskData td;
  td.train_shard = ck.shards.train;
  td.val_shard = ck.shards.val;
  td.pairs = ck.pairs;
  td.run_dir = run.out_dir;
  td.tokenizer = &tok;
  td.quiet = run.quiet;
  std::unique_ptr<Task> task;
  try {
    task = run.task_factory ? run.task_factory(ck.model_config, tc, td)
                            : make_task(ck.model_config, tc, td);
  } catch (const Error& e) {
    fail(config_name, ": ", e.what());
  }
  AdamW opt(trainable_parameters(task->model()),
            {.lr = tc.lr,
             .beta1 = tc.beta1,
             .beta2 = tc.beta2,
             .eps = 1e-8,
             .weight_decay = tc.weight_decay},
            task->embedding_tables());
  std::vector<StepRecord> history;
  if (!ck.resume_dir.empty()) restore_checkpoint(ck.resume_dir, *task, opt, history);
  if (!run.quiet) print_run_header(ck, task->model(), static_cast<int64_t>(history.size()));
  LoopOptions lo;
  lo.out_dir = run.out_dir;
  lo.quiet = run.quiet;
  lo.stop_after = run.stop_after;
  lo.save = [&](const std::vector<StepRecord>& h) {
    save_checkpoint(run.out_dir, ck, *task, opt, h);
  };
  return train_loop(*task, opt, tc, std::move(history), lo);
}

TrainResult train_loop(Task& task, AdamW& opt, const TrainConfig& tc,
                       std::vector<StepRecord> history, const LoopOptions& lo) {
  nn::Module& model = task.model();
  TrainResult res;
  res.history = std::move(history);
  res.step = static_cast<int64_t>(res.history.size());
  for (auto it = res.history.rbegin(); it != res.history.rend(); ++it)
    if (it->val_loss >= 0) {  // the last evaluation before the resume
      res.last_val_loss = it->val_loss;
      res.last_val_metrics = it->val_metrics;
      break;
    }
  const LrSchedule schedule = make_schedule(tc);
  const bool tty = !lo.quiet && isatty(STDERR_FILENO);
  const std::vector<Tensor> params = trainable_tensors(model);

  SigintScope sigint;
  model.train();
  const double tokens_per_step = task.tokens_per_batch() * tc.grad_accum;
  const std::string headline = task.headline_metric();
  const auto start = std::chrono::steady_clock::now();
  int64_t done_here = 0;
  while (res.step < tc.steps) {
    const auto t0 = std::chrono::steady_clock::now();
    StepRecord r;
    r.step = res.step + 1;
    r.lr = schedule.at(res.step);
    opt.set_lr(r.lr);
    opt.zero_grad();
    for (int64_t micro = 0; micro < tc.grad_accum; ++micro) {
      Tensor loss = task.next_loss();
      r.loss += loss.item<double>() / tc.grad_accum;
      (tc.grad_accum > 1 ? loss * (1.0 / tc.grad_accum) : loss).backward();
    }
    r.grad_norm = clip_grad_norm(params, tc.grad_clip);
    LLMKIT_CHECK(std::isfinite(r.loss), "training diverged at step ", r.step, " (loss ", r.loss,
                 "); lower the learning rate");
    opt.step();
    const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    r.tokens_per_sec = tokens_per_step / dt;
    res.step = r.step;
    ++done_here;
    const bool last = res.step == tc.steps;
    if (res.step % tc.eval_interval == 0 || last) {
      try {
        r.val_metrics = task.evaluate(tc.eval_batches);
      } catch (...) {
        // The step trained fine: keep it, then report the evaluation's error.
        res.history.push_back(r);
        lo.save(res.history);
        if (!lo.quiet)
          std::fprintf(stderr, "\nevaluation failed at step %lld; checkpoint saved in %s\n",
                       static_cast<long long>(res.step), lo.out_dir.c_str());
        throw;
      }
      model.train();
      // A task without validation data (sft / dpo without --val) returns no figures.
      if (!r.val_metrics.empty()) {
        r.val_loss = r.val_metrics.at("loss");
        res.last_val_loss = r.val_loss;
        res.last_val_metrics = r.val_metrics;
      }
    }
    res.history.push_back(r);
    // Read after the evaluation, so a Ctrl-C during it stops here, not a step later.
    const bool stop = g_interrupted.load() || (lo.stop_after > 0 && done_here >= lo.stop_after);
    if (!lo.quiet) {
      const double elapsed =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      const double eta = elapsed / done_here * (tc.steps - res.step);
      const bool log_line = res.step % tc.log_interval == 0 || last || r.val_loss >= 0;
      print_status(r, tc.steps, eta, tty, log_line && !tty ? true : (tty && r.val_loss >= 0));
      if (r.val_loss >= 0) {
        const auto it = r.val_metrics.find(headline);
        if (headline == "perplexity" || it == r.val_metrics.end())
          std::fprintf(stderr, "step %lld: val loss %.4f (perplexity %.2f)\n",
                       static_cast<long long>(r.step), r.val_loss, std::exp(r.val_loss));
        else
          std::fprintf(stderr, "step %lld: val loss %.4f, %s %.4f\n",
                       static_cast<long long>(r.step), r.val_loss, headline.c_str(), it->second);
      }
    }
    const bool interval = tc.checkpoint_interval > 0 && res.step % tc.checkpoint_interval == 0;
    if (r.val_loss >= 0 || last || stop || interval) lo.save(res.history);
    if (stop && !last) {
      res.interrupted = true;
      if (!lo.quiet)
        std::fprintf(stderr,
                     "\nstopped at step %lld; checkpoint saved in %s (continue with --resume)\n",
                     static_cast<long long>(res.step), lo.out_dir.c_str());
      break;
    }
  }
  return res;
}

}  // namespace llmkit::train
