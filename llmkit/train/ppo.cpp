// RLHF with PPO (ppo.h), TRL's PPO trainer on our modules: the policy with its value head, the
// reference, the reward model, the rollout -> score -> GAE -> clipped-update loop, and the run
// directory (metrics.csv, samples.jsonl, scores.svg, the policy and v_head.safetensors).
// Glossary: B rollouts in a batch (or mini-batch), L the padded length of prompt + response, T a
// response's length, C channels, V vocab. A rollout's response tokens sit at positions
// P .. P + T - 1 of its row (P its prompt length); the logits and the value that belong to
// response token t are read at position P - 1 + t (the state before the token), so every
// per-token tensor below is [B, L] with the response at those "prediction positions".
// Not here: GAE and the clipped losses (ppo_loss.cpp), the ops (ops/loss.h token_log_probs,
// softmax_entropy), sampling (infer/sampler.h), the chat rendering (data/conversations.h).
#include "llmkit/train/ppo.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>

#include "llmkit/core/autograd.h"
#include "llmkit/core/random.h"
#include "llmkit/data/conversations.h"
#include "llmkit/infer/batching.h"
#include "llmkit/infer/classify.h"
#include "llmkit/infer/generate.h"
#include "llmkit/io/atomic_file.h"
#include "llmkit/io/safetensors.h"
#include "llmkit/io/svg_plot.h"
#include "llmkit/models/load.h"
#include "llmkit/models/peft.h"
#include "llmkit/nn/layers.h"
#include "llmkit/ops/elementwise.h"
#include "llmkit/ops/loss.h"
#include "llmkit/train/adamw.h"
#include "llmkit/train/align.h"
#include "llmkit/train/checkpoint.h"
#include "llmkit/train/clip.h"
#include "llmkit/train/schedule.h"
#include "llmkit/train/trainer.h"

namespace llmkit::train {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// TRL's masked_whiten over every response token of the batch: (x - mean) / sqrt(var + 1e-8),
// var unbiased (n / (n - 1)); shift_mean = false adds the mean back (whiten_rewards).
void whiten(std::vector<std::vector<float>>& xs, bool shift_mean) {
  double n = 0, sum = 0;
  for (const auto& x : xs)
    for (float v : x) {
      sum += v;
      n += 1;
    }
  if (n < 2) return;
  const double mean = sum / n;
  double sq = 0;
  for (const auto& x : xs)
    for (float v : x) sq += (v - mean) * (v - mean);
  const double var = sq / n * (n / (n - 1));
  const double scale = 1.0 / std::sqrt(var + 1e-8);
  for (auto& x : xs)
    for (float& v : x) v = static_cast<float>((v - mean) * scale + (shift_mean ? 0.0 : mean));
}

// ---------------------------------------------------------------------------------------------
// The policy with its value head.

// TRL's ValueHead ("v_head"): summary = Linear(C, 1) on the last hidden states, so the saved
// tensors are "v_head.summary.weight" [1, C] and "v_head.summary.bias" [1], TRL's names.
// Initialised N(0, 0.02) with a zero bias (Hugging Face's _init_weights, as TRL's PPOv2 value
// model's score head), not TRL's optional N(0, 0.2); TRL's summary dropout (0.1) is left out
// since the whole policy runs without dropout, as TRL's PPO trainer sets it.
class ValueHead : public nn::Module {
 public:
  ValueHead(int64_t n_embd, DType dt, uint64_t seed) {
    summary = register_module("summary", std::make_shared<nn::Linear>(n_embd, 1, true, dt));
    NoGradGuard ng;
    Generator g(seed);
    g.normal_(summary->weight, 0.0, 0.02);
    summary->bias.zero_();
  }
  // hidden [B, L, C] -> values [B, L]
  Tensor forward(const Tensor& hidden) const {
    return summary->forward(hidden).reshape({hidden.size(0), hidden.size(1)});
  }
  std::shared_ptr<nn::Linear> summary;
};

// TRL's AutoModelForCausalLMWithValueHead: the decoder registered without a prefix (its names
// stay its own) and the value head beside it, sharing the body.
class PolicyWithValueHead : public nn::Module {
 public:
  PolicyWithValueHead(std::shared_ptr<models::GPT> g, uint64_t seed) : gpt(std::move(g)) {
    register_module("", gpt);
    v_head = register_module(
        "v_head",
        std::make_shared<ValueHead>(gpt->config().n_embd, gpt->parameters().front().dtype(), seed));
  }
  std::shared_ptr<models::GPT> gpt;
  std::shared_ptr<ValueHead> v_head;
};

// ---------------------------------------------------------------------------------------------
// Prompts.

struct Prompt {
  std::string text;                              // a plain prompt
  std::vector<tokenizer::ChatMessage> messages;  // or a conversation ({"messages": ...})
  int64_t line = 0;
};

std::vector<Prompt> read_prompts(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  LLMKIT_CHECK(in.good(), "ppo: cannot open the prompt file '", path, "'");
  std::vector<Prompt> out;
  std::string line;
  int64_t n = 0;
  bool jsonl = false, decided = false;
  while (std::getline(in, line)) {
    ++n;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    const auto first = line.find_first_not_of(" \t");
    if (first == std::string::npos) continue;
    if (!decided) {  // a file is JSONL when its first non-blank line is a JSON object
      jsonl = line[first] == '{';
      decided = true;
    }
    Prompt p;
    p.line = n;
    if (!jsonl) {
      p.text = line;
      out.push_back(std::move(p));
      continue;
    }
    json j;
    try {
      j = json::parse(line);
    } catch (const json::exception& e) {
      fail(path, ":", n, ": not JSON (", e.what(), ")");
    }
    LLMKIT_CHECK(j.is_object(), path, ":", n, ": expected a JSON object");
    if (const auto it = j.find("prompt"); it != j.end()) {
      LLMKIT_CHECK(it->is_string(), path, ":", n, ": \"prompt\" must be a string");
      p.text = it->get<std::string>();
      LLMKIT_CHECK(!p.text.empty(), path, ":", n, ": empty \"prompt\"");
    } else if (const auto m = j.find("messages"); m != j.end()) {
      LLMKIT_CHECK(m->is_array() && !m->empty(), path, ":", n,
                   ": \"messages\" must be a non-empty array");
      for (const json& msg : *m) {
        LLMKIT_CHECK(msg.is_object() && msg.contains("role") && msg.contains("content") &&
                         msg["role"].is_string() && msg["content"].is_string(),
                     path, ":", n, ": every message needs string \"role\" and \"content\"");
        p.messages.push_back({msg["role"].get<std::string>(), msg["content"].get<std::string>()});
      }
    } else {
      fail(path, ":", n, ": a prompt line needs \"prompt\" or \"messages\"");
    }
    out.push_back(std::move(p));
  }
  LLMKIT_CHECK(!out.empty(), "ppo: the prompt file '", path, "' holds no prompt");
  return out;
}

// Every prompt as ids, cut from the left to `keep` tokens (the end of a prompt is what the
// response continues).
std::vector<std::vector<int32_t>> encode_prompts(const std::vector<Prompt>& prompts,
                                                 const models::LoadedModel& m,
                                                 const std::optional<data::ChatFormat>& fmt,
                                                 int64_t keep, const std::string& path) {
  const bool chat = fmt.has_value();
  std::vector<std::vector<int32_t>> out;
  out.reserve(prompts.size());
  for (const Prompt& p : prompts) {
    std::vector<int32_t> ids;
    if (chat) {
      std::vector<tokenizer::ChatMessage> msgs = p.messages;
      if (msgs.empty()) msgs.push_back({"user", p.text});
      ids = data::prompt_ids(msgs, *fmt);
    } else {
      LLMKIT_CHECK(p.messages.empty(), path, ":", p.line,
                   ": a \"messages\" prompt needs the chat template (--chat)");
      ids = infer::encode_prompt(m, p.text);
    }
    LLMKIT_CHECK(!ids.empty(), path, ":", p.line, ": the prompt encodes to no token");
    if (static_cast<int64_t>(ids.size()) > keep)
      ids.erase(ids.begin(), ids.end() - static_cast<std::ptrdiff_t>(keep));
    out.push_back(std::move(ids));
  }
  return out;
}

// The prompts of each iteration: shuffled epochs over the file (epoch e's order from a
// generator seeded by (seed, e)), batch_size at a time, continuing into the next epoch.
class PromptOrder {
 public:
  PromptOrder(size_t n, uint64_t seed) : n_(n), seed_(seed) {}
  std::vector<size_t> next(int64_t count) {
    std::vector<size_t> out;
    while (static_cast<int64_t>(out.size()) < count) {
      if (pos_ == order_.size()) shuffle();
      out.push_back(order_[pos_++]);
    }
    return out;
  }

 private:
  void shuffle() {
    order_.resize(n_);
    for (size_t i = 0; i < n_; ++i) order_[i] = i;
    Generator g(seed_ * 7919ULL + 17 + static_cast<uint64_t>(epoch_++));
    for (size_t i = n_; i > 1; --i) std::swap(order_[i - 1], order_[g.randint(i)]);
    pos_ = 0;
  }
  size_t n_;
  uint64_t seed_;
  int64_t epoch_ = 0;
  std::vector<size_t> order_;
  size_t pos_ = 0;
};

// ---------------------------------------------------------------------------------------------
// Rollouts.

struct Rollout {
  size_t prompt_index = 0;
  std::vector<int32_t> prompt, response;  // response: the sampled tokens, an eos last if any
  bool eos = false;
  // Per response token [T]:
  std::vector<float> logp, ref_logp, values, rewards, advantages, returns;
  double score = 0;
  std::string prompt_text, response_text;
};

// Rollouts right-padded into one batch: ids / key_mask [B, L] over prompt + response; targets
// [B, L] the response token each prediction position predicts (-100 elsewhere); mask [B, L] f32
// 1 at the prediction positions; start[b] = P_b - 1.
struct Batch {
  Tensor ids, key_mask, targets, mask;
  std::vector<int64_t> start;
  int64_t B = 0, L = 0;
};

Batch make_batch(const std::vector<const Rollout*>& rs) {
  std::vector<std::vector<int32_t>> rows;
  Batch b;
  b.B = static_cast<int64_t>(rs.size());
  for (const Rollout* r : rs) {
    std::vector<int32_t> row = r->prompt;
    row.insert(row.end(), r->response.begin(), r->response.end());
    b.L = std::max(b.L, static_cast<int64_t>(row.size()));
    rows.push_back(std::move(row));
  }
  const infer::PaddedBatch p = infer::pad_batch(rows, 0);
  b.ids = p.ids;
  b.key_mask = p.mask;
  std::vector<int32_t> targets(static_cast<size_t>(b.B * b.L), -100);
  std::vector<float> mask(targets.size(), 0.0f);
  for (int64_t i = 0; i < b.B; ++i) {
    const Rollout& r = *rs[static_cast<size_t>(i)];
    const int64_t start = static_cast<int64_t>(r.prompt.size()) - 1;
    b.start.push_back(start);
    for (size_t t = 0; t < r.response.size(); ++t) {
      const auto at = static_cast<size_t>(i * b.L + start) + t;
      targets[at] = r.response[t];
      mask[at] = 1.0f;
    }
  }
  b.targets = Tensor::from_vector(targets, {b.B, b.L});
  b.mask = Tensor::from_vector(mask, {b.B, b.L});
  return b;
}

// Per-token values of each rollout (one field) laid out as the batch's [B, L] tensor.
Tensor dense(const Batch& b, const std::vector<const Rollout*>& rs,
             std::vector<float> Rollout::*field) {
  std::vector<float> v(static_cast<size_t>(b.B * b.L), 0.0f);
  for (int64_t i = 0; i < b.B; ++i) {
    const std::vector<float>& x = rs[static_cast<size_t>(i)]->*field;
    std::copy(x.begin(), x.end(), v.begin() + i * b.L + b.start[static_cast<size_t>(i)]);
  }
  return Tensor::from_vector(v, {b.B, b.L});
}

// A [B, L] tensor's values at each rollout's prediction positions.
std::vector<std::vector<float>> sparse(const Batch& b, const std::vector<const Rollout*>& rs,
                                       const Tensor& t) {
  const std::vector<float> v = t.detach().contiguous().to_vector<float>();
  std::vector<std::vector<float>> out;
  for (int64_t i = 0; i < b.B; ++i) {
    const auto begin = v.begin() + i * b.L + b.start[static_cast<size_t>(i)];
    out.emplace_back(
        begin, begin + static_cast<std::ptrdiff_t>(rs[static_cast<size_t>(i)]->response.size()));
  }
  return out;
}

// The log-probabilities the loss compares are those of the temperature-scaled distribution the
// rollouts were drawn from (TRL divides the logits by the temperature everywhere); top-k / top-p
// are not applied to them, as in TRL.
struct Forward {
  Tensor logp, values, entropy;  // [B, L]
};
Forward forward(models::GPT& gpt, const ValueHead* v_head, const Batch& b, double temperature,
                bool entropy) {
  const Tensor hidden = gpt.hidden(b.ids, b.key_mask);  // [B, L, C]
  Tensor logits = gpt.lm_logits(hidden);                // [B, L, V]
  if (temperature != 1.0) logits = logits * (1.0 / temperature);
  Forward f;
  f.logp = ops::token_log_probs(logits, b.targets);
  if (v_head != nullptr) f.values = v_head->forward(hidden);
  if (entropy) f.entropy = ops::softmax_entropy(logits);
  return f;
}

// A per-rollout stream of the sampler (Philox of (seed, step, rollout)): a rollout's tokens do
// not depend on the others in its batch.
uint64_t rollout_seed(uint64_t seed, int64_t step, size_t i) {
  const auto w = philox4x32(static_cast<uint64_t>(step), i, seed ^ 0x9e3779b97f4a7c15ULL);
  return (static_cast<uint64_t>(w[0]) << 32) | w[1];
}

// ---------------------------------------------------------------------------------------------
// The run.

struct Setup {
  models::LoadedModel policy_loaded, reward_loaded, ref_loaded;
  std::shared_ptr<PolicyWithValueHead> policy;
  models::GPT* ref = nullptr;  // the full method's frozen copy; null under LoRA
  models::Classifier* reward = nullptr;
  int64_t reward_index = 0;  // the output read as the score
  bool reward_add_bos = false;
  nn::LoraConfig lora;
  std::vector<std::vector<int32_t>> prompts;
  std::vector<std::string> prompt_texts;
  // A response ends after one of these: the policy's eos ids, and with chat the template's
  // end-of-turn token (<|im_end|>), which a chat model emits where a base model emits eos.
  std::vector<int32_t> stop_ids;
  double lr = 0;
};

void check_run(const PpoRun& r) {
  LLMKIT_CHECK(!r.policy_path.empty(), "ppo: the policy model is required");
  LLMKIT_CHECK(!r.reward_path.empty(), "ppo: the reward model is required");
  LLMKIT_CHECK(!r.prompts_path.empty(), "ppo: the prompt file is required");
  LLMKIT_CHECK(!r.out_dir.empty(), "ppo: the output directory is required");
  LLMKIT_CHECK(r.method == "full" || r.method == "lora", "ppo: method '", r.method,
               "' is not full or lora");
  LLMKIT_CHECK(r.steps >= 1 && r.batch_size >= 1 && r.mini_batch_size >= 1 && r.ppo_epochs >= 1,
               "ppo: steps, batch_size, mini_batch_size and ppo_epochs must be at least 1");
  LLMKIT_CHECK(r.batch_size % r.mini_batch_size == 0, "ppo: mini_batch_size ", r.mini_batch_size,
               " does not divide batch_size ", r.batch_size);
  LLMKIT_CHECK(r.max_prompt >= 1 && r.max_new_tokens >= 1,
               "ppo: max_prompt and max_new_tokens must be at least 1");
  LLMKIT_CHECK(r.temperature > 0,
               "ppo: temperature must be > 0 (the log-probabilities of greedy "
               "decoding are not defined), got ",
               r.temperature);
  LLMKIT_CHECK(r.top_p > 0 && r.top_p <= 1, "ppo: top_p must be in (0, 1], got ", r.top_p);
  LLMKIT_CHECK(r.top_k >= 0, "ppo: top_k must not be negative");
  LLMKIT_CHECK(r.lr >= 0 && r.kl_coef >= 0 && r.vf_coef >= 0 && r.grad_clip >= 0,
               "ppo: lr, kl_coef, vf_coef and grad_clip must not be negative");
  LLMKIT_CHECK(r.cliprange > 0 && r.cliprange_value > 0,
               "ppo: cliprange and cliprange_value must be > 0");
  LLMKIT_CHECK(r.gamma >= 0 && r.gamma <= 1 && r.lam >= 0 && r.lam <= 1,
               "ppo: gamma and lam must be in [0, 1]");
  LLMKIT_CHECK(r.log_interval >= 1 && r.save_interval >= 0,
               "ppo: log_interval must be >= 1 and save_interval >= 0");
}

// The reward model and which of its outputs is the score.
void load_reward(Setup& s, const PpoRun& r) {
  s.reward_loaded = models::load(r.reward_path);
  models::LoadedModel& m = s.reward_loaded;
  LLMKIT_CHECK(m.classifier != nullptr, "ppo: the reward model '", r.reward_path, "' holds a ",
               m.arch, " model without a task head; it must be a classifier (llmkit finetune)");
  LLMKIT_CHECK(m.tokenizer.has_value(), "ppo: the reward model '", r.reward_path,
               "' has no tokenizer");
  s.reward = m.classifier;
  const models::HeadConfig& h = s.reward->head_config();
  LLMKIT_CHECK(h.task == "sequence", "ppo: the reward model '", r.reward_path,
               "' is a token classifier; it needs one score per text");
  std::string labels;
  for (const auto& l : h.labels) labels += (labels.empty() ? "" : ", ") + l;
  if (h.regression()) {
    LLMKIT_CHECK(r.reward_label.empty(), "ppo: the reward model '", r.reward_path,
                 "' is a regression head (its output is the score); drop reward_label '",
                 r.reward_label, "'");
    s.reward_index = 0;
  } else {
    LLMKIT_CHECK(
        !r.reward_label.empty(), "ppo: the reward model '", r.reward_path,
        "' is a classifier; name the label whose logit is the reward (reward_label: ", labels, ")");
    const auto it = std::find(h.labels.begin(), h.labels.end(), r.reward_label);
    LLMKIT_CHECK(it != h.labels.end(), "ppo: the reward model has no label '", r.reward_label,
                 "' (its labels: ", labels, ")");
    s.reward_index = it - h.labels.begin();
  }
  s.reward_add_bos =
      s.reward->gpt != nullptr && (m.add_bos || m.tokenizer_config.value("add_bos_token", false));
}

void load_policy(Setup& s, const PpoRun& r) {
  s.policy_loaded = models::load(r.policy_path);
  models::LoadedModel& m = s.policy_loaded;
  LLMKIT_CHECK(m.gpt != nullptr && m.classifier == nullptr, "ppo: the policy '", r.policy_path,
               "' holds a ", m.classifier ? "classifier" : m.arch,
               " model; it must be a decoder (gpt, llama) without a task head");
  LLMKIT_CHECK(m.tokenizer.has_value(), "ppo: the policy '", r.policy_path, "' has no tokenizer");
  const int64_t block = m.gpt->config().block_size;
  LLMKIT_CHECK(r.max_new_tokens < block, "ppo: max_new_tokens ", r.max_new_tokens,
               " leaves no room for a prompt in the policy's context of ", block, " tokens");
  std::shared_ptr<models::GPT> gpt(static_cast<models::GPT*>(m.module.release()));
  s.policy = std::make_shared<PolicyWithValueHead>(gpt, r.seed + 3);
  s.policy->eval();  // no dropout anywhere, as TRL's PPO trainer
  if (r.method == "lora") {
    s.lora = r.lora;
    if (s.lora.target_modules.empty()) s.lora.target_modules = nn::default_lora_targets(m.arch);
    nn::apply_lora(*gpt, s.lora, r.seed + 2,
                   s.lora.dropout > 0 ? &gpt->dropout_generator() : nullptr);
    nn::mark_only_lora_trainable(*gpt, {});
  } else {
    // The reference: a frozen second copy, as loaded.
    s.ref_loaded = models::load(r.policy_path);
    s.ref = s.ref_loaded.gpt;
    s.ref->eval();
    for (auto& [name, t] : s.ref->named_parameters()) {
      Tensor h = t;
      h.requires_grad_(false);
    }
  }
  s.lr = r.lr > 0 ? r.lr : r.method == "lora" ? 1e-4 : 3e-6;
}

// The prompts of r (the first `limit`, 0: all) for the loaded policy: their ids, cut to leave
// room for max_new_tokens, their text, and the ids that end a response (the policy's eos ids and,
// with --chat, the template's end-of-turn token).
void load_prompts(Setup& s, const PpoRun& r, const std::string& command, int64_t limit) {
  models::LoadedModel& m = s.policy_loaded;
  const int64_t keep =
      std::min(r.max_prompt, s.policy->gpt->config().block_size - r.max_new_tokens);
  std::optional<data::ChatFormat> fmt;
  if (r.chat) fmt = chat_format(m, command);
  s.prompts = encode_prompts(read_prompts(r.prompts_path), m, fmt, keep, r.prompts_path);
  if (limit > 0 && std::ssize(s.prompts) > limit) s.prompts.resize(static_cast<size_t>(limit));
  s.stop_ids = m.eos_ids;
  if (fmt && std::find(s.stop_ids.begin(), s.stop_ids.end(), fmt->eos_id) == s.stop_ids.end())
    s.stop_ids.push_back(fmt->eos_id);
  for (const auto& ids : s.prompts) s.prompt_texts.push_back(m.tokenizer->decode(ids, true));
}

Setup prepare(const PpoRun& r) {
  Setup s;
  load_reward(s, r);
  load_policy(s, r);
  load_prompts(s, r, "ppo", 0);
  return s;
}

// Samples one response per rollout with the policy, all rollouts in one batch (KV caches,
// infer::generate_batch), rollout i from the sampler stream seeds[i]: the tokens up to and
// including the first eos id, or max_new_tokens of them.
void sample_responses(Setup& s, const PpoRun& r, std::span<const uint64_t> seeds,
                      std::vector<Rollout>& rs) {
  const std::vector<int32_t>& eos = s.stop_ids;
  const tokenizer::Tokenizer& tok = *s.policy_loaded.tokenizer;
  infer::GenerateOptions g;
  g.max_new_tokens = r.max_new_tokens;
  g.sampler = {.temperature = r.temperature,
               .top_k = static_cast<int>(r.top_k),
               .top_p = r.top_p,
               .repetition_penalty = 1.0,
               .seed = 0};
  std::vector<std::vector<int32_t>> prompts;
  for (const Rollout& ro : rs) prompts.push_back(ro.prompt);
  // The eos token is part of the response (the policy chose to stop: it is an action with a
  // log-probability), so a row stops after it through the callback, not stop_ids.
  auto out = infer::generate_batch(*s.policy->gpt, prompts, g, seeds, [&](size_t i, int32_t id) {
    const bool stop = std::find(eos.begin(), eos.end(), id) != eos.end();
    rs[i].eos = rs[i].eos || stop;
    return !stop;
  });
  for (size_t i = 0; i < rs.size(); ++i) {
    rs[i].response = std::move(out[i]);
    LLMKIT_CHECK(!rs[i].response.empty(), "ppo: the policy produced no token");
    rs[i].response_text = tok.decode(rs[i].response, true);
  }
}

// The reward model's score of each rollout's text (prompt + response, special tokens dropped,
// re-encoded with the reward model's tokenizer).
void score(Setup& s, std::vector<Rollout>& rs) {
  const tokenizer::Tokenizer& ptok = *s.policy_loaded.tokenizer;
  const tokenizer::Tokenizer& rtok = *s.reward_loaded.tokenizer;
  std::vector<std::vector<int32_t>> ids;
  for (const Rollout& r : rs) {
    std::vector<int32_t> all = r.prompt;
    all.insert(all.end(), r.response.begin(), r.response.end());
    ids.push_back(infer::classifier_input_ids(*s.reward, rtok, ptok.decode(all, true), 0,
                                              s.reward_add_bos, s.reward_loaded.bos_id));
  }
  const auto out = infer::classify_ids(*s.reward, ids);
  for (size_t i = 0; i < rs.size(); ++i) rs[i].score = out[i][static_cast<size_t>(s.reward_index)];
}

// Old log-probabilities, reference log-probabilities and values of every rollout (no grad), in
// chunks of mini_batch_size; returns the mean per-token entropy.
double evaluate_rollouts(Setup& s, const PpoRun& r, std::vector<Rollout>& rs) {
  NoGradGuard ng;
  double ent = 0, n = 0;
  const auto chunk = static_cast<size_t>(r.mini_batch_size);
  for (size_t begin = 0; begin < rs.size(); begin += chunk) {
    std::vector<const Rollout*> part;
    for (size_t i = begin; i < std::min(rs.size(), begin + chunk); ++i) part.push_back(&rs[i]);
    const Batch b = make_batch(part);
    const Forward f = forward(*s.policy->gpt, s.policy->v_head.get(), b, r.temperature, true);
    Tensor ref;
    if (s.ref != nullptr) {
      ref = forward(*s.ref, nullptr, b, r.temperature, false).logp;
    } else {
      const nn::LoraDisabled off(*s.policy->gpt);
      ref = forward(*s.policy->gpt, nullptr, b, r.temperature, false).logp;
    }
    const auto logp = sparse(b, part, f.logp), ref_logp = sparse(b, part, ref),
               values = sparse(b, part, f.values), e = sparse(b, part, f.entropy);
    for (size_t i = 0; i < part.size(); ++i) {
      Rollout& ro = rs[begin + i];
      ro.logp = logp[i];
      ro.ref_logp = ref_logp[i];
      ro.values = values[i];
      for (float x : e[i]) ent += x;
      n += static_cast<double>(e[i].size());
    }
  }
  return ent / n;
}

// Per-token rewards, GAE, whitened advantages; fills the KL figures of `st`.
void advantages(const PpoRun& r, std::vector<Rollout>& rs, PpoStats& st) {
  double kl = 0, sc = 0;
  std::vector<std::vector<float>> rewards;
  for (Rollout& ro : rs) {
    const size_t T = ro.response.size();
    ro.rewards.assign(T, 0.0f);
    double kl_sum = 0;
    for (size_t t = 0; t < T; ++t) {
      const double k = double(ro.logp[t]) - ro.ref_logp[t];
      kl_sum += k;
      ro.rewards[t] = static_cast<float>(-r.kl_coef * k);
    }
    ro.rewards[T - 1] += static_cast<float>(ro.score);
    kl += kl_sum;
    sc += ro.score;
    st.num_eos_tokens += ro.eos ? 1 : 0;
    rewards.push_back(ro.rewards);
  }
  const double B = static_cast<double>(rs.size());
  st.score = sc / B;
  st.kl = kl / B;
  st.non_score_reward = 0.0 - r.kl_coef * st.kl;  // 0.0 - : no "-0" in metrics.csv
  st.rlhf_reward = st.score + st.non_score_reward;
  if (r.whiten_rewards) whiten(rewards, /*shift_mean=*/false);
  std::vector<std::vector<float>> adv;
  for (size_t i = 0; i < rs.size(); ++i) {
    Rollout& ro = rs[i];
    ro.advantages.assign(ro.response.size(), 0.0f);
    ro.returns.assign(ro.response.size(), 0.0f);
    gae(rewards[i], ro.values, r.gamma, r.lam, ro.advantages, ro.returns);
    adv.push_back(ro.advantages);
  }
  whiten(adv, /*shift_mean=*/true);
  for (size_t i = 0; i < rs.size(); ++i) rs[i].advantages = adv[i];
}

// ppo_epochs passes over the batch in shuffled mini-batches, one AdamW step each; fills the loss
// figures of `st` (means over the mini-batch steps).
void update(Setup& s, const PpoRun& r, int64_t step, const std::vector<Rollout>& rs, AdamW& opt,
            const std::vector<Tensor>& params, PpoStats& st) {
  const size_t mb = static_cast<size_t>(r.mini_batch_size);
  double n = 0;
  for (int64_t epoch = 0; epoch < r.ppo_epochs; ++epoch) {
    std::vector<size_t> order(rs.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    Generator g(r.seed * 104729ULL + static_cast<uint64_t>(step) * 131ULL +
                static_cast<uint64_t>(epoch));
    for (size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[g.randint(i)]);
    for (size_t begin = 0; begin < order.size(); begin += mb) {
      std::vector<const Rollout*> part;
      for (size_t i = begin; i < begin + mb; ++i) part.push_back(&rs[order[i]]);
      const Batch b = make_batch(part);
      const Forward f = forward(*s.policy->gpt, s.policy->v_head.get(), b, r.temperature, false);
      const PpoLoss l =
          ppo_loss(f.logp, f.values, dense(b, part, &Rollout::logp),
                   dense(b, part, &Rollout::values), dense(b, part, &Rollout::advantages),
                   dense(b, part, &Rollout::returns), b.mask, r.cliprange, r.cliprange_value);
      const Tensor loss = l.policy_loss + l.value_loss * r.vf_coef;
      opt.zero_grad();
      loss.backward();
      clip_grad_norm(params, r.grad_clip);
      opt.step();
      st.policy_loss += l.policy_loss.item<float>();
      st.value_loss += l.value_loss.item<float>();
      st.clipfrac += l.clipfrac;
      st.value_clipfrac += l.value_clipfrac;
      st.approxkl += l.approxkl;
      n += 1;
    }
  }
  st.policy_loss /= n;
  st.value_loss /= n;
  st.clipfrac /= n;
  st.value_clipfrac /= n;
  st.approxkl /= n;
}

// ---------------------------------------------------------------------------------------------
// Outputs.

std::string metrics_csv(const std::vector<PpoStats>& h) {
  std::ostringstream os;
  os.precision(8);
  os << "step,objective/scores,objective/kl,objective/non_score_reward,objective/rlhf_reward,"
        "objective/entropy,loss/policy_avg,loss/value_avg,policy/clipfrac_avg,"
        "policy/approxkl_avg,val/clipfrac_avg,val/num_eos_tokens,lr,time/iteration,"
        "time/rollout\n";
  for (const PpoStats& s : h)
    os << s.step << ',' << s.score << ',' << s.kl << ',' << s.non_score_reward << ','
       << s.rlhf_reward << ',' << s.entropy << ',' << s.policy_loss << ',' << s.value_loss << ','
       << s.clipfrac << ',' << s.approxkl << ',' << s.value_clipfrac << ',' << s.num_eos_tokens
       << ',' << s.lr << ',' << s.seconds << ',' << s.rollout_seconds << '\n';
  return os.str();
}

std::string scores_svg(const std::vector<PpoStats>& h) {
  io::PlotSeries score{"objective/scores", {}, {}}, rlhf{"objective/rlhf_reward", {}, {}};
  for (const PpoStats& s : h) {
    score.x.push_back(static_cast<double>(s.step));
    score.y.push_back(s.score);
    rlhf.x.push_back(static_cast<double>(s.step));
    rlhf.y.push_back(s.rlhf_reward);
  }
  io::PlotOptions po;
  po.title = "llmkit ppo";
  po.x_label = "step";
  po.y_label = "reward";
  return io::line_plot_svg({score, rlhf}, po);
}

// The policy as sft writes it (a PEFT adapter naming the base, or a model directory) and the
// value head; every file atomically.
void save_policy(Setup& s, const PpoRun& r) {
  const models::LoadedModel& m = s.policy_loaded;
  export_policy(m, *s.policy->gpt, r.method,
                m.source == models::SourceKind::HfDir ? "hf" : "llmkit", s.lora, r.policy_path,
                r.out_dir);
  io::save_safetensors((fs::path(r.out_dir) / "v_head.safetensors").string(),
                       {{"v_head.summary.weight", s.policy->v_head->summary->weight},
                        {"v_head.summary.bias", s.policy->v_head->summary->bias}},
                       {{"format", "pt"}});
}

constexpr size_t kSamplesPerLog = 3;

void log_samples(const std::vector<Rollout>& rs, int64_t step, std::string& samples) {
  for (size_t i = 0; i < std::min(kSamplesPerLog, rs.size()); ++i)
    samples += json{{"step", step},
                    {"prompt", rs[i].prompt_text},
                    {"response", rs[i].response_text},
                    {"score", rs[i].score}}
                   .dump(-1, ' ', false, json::error_handler_t::replace) +
               "\n";
}

}  // namespace

PpoResult ppo(const PpoRun& r) {
  check_run(r);
  Setup s = prepare(r);  // every input error before the run directory exists
  const RunLock lock(r.out_dir);
  PpoResult res;
  const nn::ParamCount pc = nn::count_parameters(*s.policy);
  res.trainable_params = pc.trainable;
  res.all_params = pc.all;
  const models::HeadConfig& head = s.reward->head_config();
  if (!r.quiet)
    std::fprintf(stderr,
                 "ppo: policy %s %s (method %s), reward %s %s (%s), %zu prompts, lr %g\n%s\n",
                 s.policy_loaded.arch.c_str(), r.policy_path.c_str(), r.method.c_str(),
                 s.reward_loaded.arch.c_str(), r.reward_path.c_str(),
                 head.regression() ? "regression" : ("label " + r.reward_label).c_str(),
                 s.prompts.size(), s.lr, nn::trainable_parameters_line(*s.policy).c_str());
  const auto named = trainable_parameters(*s.policy);
  std::vector<Tensor> params;
  for (const auto& [name, t] : named) params.push_back(t);
  // TRL's optimizer: torch AdamW with Trainer's defaults (no weight decay).
  AdamW opt(named, {.lr = s.lr, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .weight_decay = 0});
  const LrSchedule sched{
      .kind = LrSchedule::Kind::Linear, .warmup = 0, .total = r.steps, .max_lr = s.lr, .min_lr = 0};
  PromptOrder order(s.prompts.size(), r.seed);
  const fs::path dir(r.out_dir);
  std::string samples;
  for (int64_t step = 1; step <= r.steps; ++step) {
    const auto t0 = Clock::now();
    PpoStats st;
    st.step = step;
    st.lr = sched.at(step - 1);
    opt.set_lr(st.lr);
    std::vector<Rollout> rs;
    for (size_t i : order.next(r.batch_size)) {
      Rollout ro;
      ro.prompt_index = i;
      ro.prompt = s.prompts[i];
      ro.prompt_text = s.prompt_texts[i];
      rs.push_back(std::move(ro));
    }
    std::vector<uint64_t> seeds;
    for (size_t i = 0; i < rs.size(); ++i) seeds.push_back(rollout_seed(r.seed, step, i));
    sample_responses(s, r, seeds, rs);
    score(s, rs);
    st.entropy = evaluate_rollouts(s, r, rs);
    advantages(r, rs, st);
    st.rollout_seconds = seconds_since(t0);
    update(s, r, step, rs, opt, params, st);
    st.seconds = seconds_since(t0);
    LLMKIT_CHECK(std::isfinite(st.policy_loss) && std::isfinite(st.value_loss),
                 "ppo: the loss diverged at step ", step, " (policy ", st.policy_loss, ", value ",
                 st.value_loss, "); lower the learning rate");
    res.history.push_back(st);
    const bool log = step % r.log_interval == 0 || step == r.steps;
    if (log) {
      log_samples(rs, step, samples);
      io::write_file_atomic((dir / "samples.jsonl").string(), samples, io::Durability::kNone);
    }
    io::write_file_atomic((dir / "metrics.csv").string(), metrics_csv(res.history),
                          io::Durability::kNone);
    if (log && !r.quiet)
      std::fprintf(stderr,
                   "ppo %lld/%lld | score %.4f | kl %.4f | rlhf %.4f | entropy %.3f | pg %.4f | "
                   "vf %.4f | clip %.3f | %.2f s (rollout %.2f s)\n",
                   static_cast<long long>(step), static_cast<long long>(r.steps), st.score, st.kl,
                   st.rlhf_reward, st.entropy, st.policy_loss, st.value_loss, st.clipfrac,
                   st.seconds, st.rollout_seconds);
    if (r.save_interval > 0 && step % r.save_interval == 0 && step < r.steps) save_policy(s, r);
  }
  io::write_file_atomic((dir / "scores.svg").string(), scores_svg(res.history),
                        io::Durability::kNone);
  save_policy(s, r);
  res.export_dir = r.out_dir;
  return res;
}

// ---------------------------------------------------------------------------------------------
// Evaluating a policy: samples, scores and the KL to a reference (one point of the frontier).

RolloutEvalResult evaluate_policy(const RolloutEvalRun& e) {
  LLMKIT_CHECK(!e.policy_path.empty() && !e.reference_path.empty() && !e.reward_path.empty() &&
                   !e.prompts_path.empty(),
               "reward eval: --policy, --reference, --reward and --prompts are required");
  LLMKIT_CHECK(e.samples >= 1, "reward eval: samples must be at least 1");
  LLMKIT_CHECK(e.pairs_out.empty() || e.samples >= 2,
               "reward eval: preference pairs need at least 2 samples per prompt");
  PpoRun r;  // the rollout settings ppo uses, for the shared helpers
  r.policy_path = e.policy_path;
  r.reward_path = e.reward_path;
  r.reward_label = e.reward_label;
  r.prompts_path = e.prompts_path;
  r.chat = e.chat;
  r.max_prompt = e.max_prompt;
  r.max_new_tokens = e.max_new_tokens;
  r.temperature = e.temperature;
  r.top_k = e.top_k;
  r.top_p = e.top_p;
  r.seed = e.seed;
  r.mini_batch_size = 8;
  const auto t0 = Clock::now();
  Setup s;
  load_reward(s, r);
  s.policy_loaded = models::load(e.policy_path);
  models::LoadedModel& m = s.policy_loaded;
  LLMKIT_CHECK(m.gpt != nullptr && m.classifier == nullptr && m.tokenizer.has_value(),
               "reward eval: the policy '", e.policy_path, "' must be a decoder with a tokenizer");
  std::shared_ptr<models::GPT> gpt(static_cast<models::GPT*>(m.module.release()));
  s.policy = std::make_shared<PolicyWithValueHead>(gpt, e.seed);
  s.policy->eval();
  s.ref_loaded = models::load(e.reference_path);
  LLMKIT_CHECK(s.ref_loaded.gpt != nullptr && s.ref_loaded.classifier == nullptr,
               "reward eval: the reference '", e.reference_path, "' must be a decoder");
  LLMKIT_CHECK(s.ref_loaded.gpt->config().vocab_size == gpt->config().vocab_size,
               "reward eval: the reference's vocabulary (", s.ref_loaded.gpt->config().vocab_size,
               ") differs from the policy's (", gpt->config().vocab_size, ")");
  s.ref = s.ref_loaded.gpt;
  s.ref->eval();
  load_prompts(s, r, "reward eval", e.limit);

  RolloutEvalResult res;
  std::string pairs, samples;
  double sum_s = 0, sum_s2 = 0, sum_k = 0, sum_k2 = 0;
  // Prompts in chunks of about kEvalBatch rollouts, sampled in one batch.
  constexpr size_t kEvalBatch = 16;
  const auto per_prompt = static_cast<size_t>(e.samples);
  const size_t chunk = std::max<size_t>(1, kEvalBatch / per_prompt);
  for (size_t i0 = 0; i0 < s.prompts.size(); i0 += chunk) {
    const size_t i1 = std::min(s.prompts.size(), i0 + chunk);
    std::vector<Rollout> rs;
    std::vector<uint64_t> seeds;
    for (size_t i = i0; i < i1; ++i)
      for (size_t k = 0; k < per_prompt; ++k) {
        Rollout ro;
        ro.prompt_index = i;
        ro.prompt = s.prompts[i];
        ro.prompt_text = s.prompt_texts[i];
        rs.push_back(std::move(ro));
        // Sample k of prompt i comes from the stream (seed, k, i): the same for every policy.
        seeds.push_back(
            rollout_seed(r.seed, static_cast<int64_t>(k) * 1000003 + static_cast<int64_t>(i), 0));
      }
    sample_responses(s, r, seeds, rs);
    score(s, rs);
    evaluate_rollouts(s, r, rs);
    for (const Rollout& ro : rs) {
      double kl = 0;
      for (size_t t = 0; t < ro.response.size(); ++t) kl += double(ro.logp[t]) - ro.ref_logp[t];
      sum_s += ro.score;
      sum_s2 += ro.score * ro.score;
      sum_k += kl;
      sum_k2 += kl * kl;
      if (!e.samples_out.empty())
        samples += json{{"prompt", ro.prompt_text},
                        {"response", ro.response_text},
                        {"score", ro.score},
                        {"kl", kl}}
                       .dump() +
                   "\n";
    }
    for (size_t j = 0; !e.pairs_out.empty() && j < rs.size(); j += per_prompt) {
      const auto first = rs.begin() + static_cast<std::ptrdiff_t>(j);
      const auto [lo, hi] =
          std::minmax_element(first, first + static_cast<std::ptrdiff_t>(per_prompt),
                              [](const Rollout& a, const Rollout& b) { return a.score < b.score; });
      if (hi->score > lo->score && hi->response_text != lo->response_text) {
        pairs += json{{"prompt", hi->prompt_text},
                      {"chosen", hi->response_text},
                      {"rejected", lo->response_text},
                      {"score_chosen", hi->score},
                      {"score_rejected", lo->score}}
                     .dump() +
                 "\n";
        ++res.pairs;
      }
    }
    if (!e.quiet)
      std::fprintf(stderr, "\rreward eval: %zu / %zu prompts, mean score %.4f, mean KL %.4f", i1,
                   s.prompts.size(), sum_s / double(i1 * per_prompt),
                   sum_k / double(i1 * per_prompt));
  }
  if (!e.quiet) std::fprintf(stderr, "\n");
  res.n = static_cast<int64_t>(s.prompts.size()) * e.samples;
  const double n = static_cast<double>(res.n);
  res.score = sum_s / n;
  res.kl = sum_k / n;
  res.score_std = std::sqrt(std::max(0.0, sum_s2 / n - res.score * res.score));
  res.kl_std = std::sqrt(std::max(0.0, sum_k2 / n - res.kl * res.kl));
  if (!e.pairs_out.empty()) io::write_file_atomic(e.pairs_out, pairs);
  if (!e.samples_out.empty()) io::write_file_atomic(e.samples_out, samples);
  res.seconds = seconds_since(t0);
  return res;
}

}  // namespace llmkit::train
