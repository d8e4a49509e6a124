#include "llmkit/infer/generate.h"

#include "llmkit/infer/text_stream.h"

#include <algorithm>
#include <chrono>

#include "llmkit/core/autograd.h"
#include "llmkit/infer/engine.h"
#include "llmkit/infer/text_stream.h"

namespace llmkit::infer {
namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

Tensor row_tensor(std::span<const int32_t> ids) {
  return Tensor::from_vector(std::vector<int32_t>(ids.begin(), ids.end()),
                             {1, static_cast<int64_t>(ids.size())});
}

// Logits of the last position of `logits` [1, T, V] as floats.
std::vector<float> last_row(const Tensor& logits) {
  const int64_t T = logits.size(1);
  return logits.slice(1, T - 1, T).to_vector<float>();
}

}  // namespace

void GptDecoder::reset(bool use_cache) {
  use_cache_ = use_cache;
  caches_.clear();
  if (use_cache) caches_ = model_.make_caches(1, context());
}

std::span<const float> GptDecoder::next_logits(std::span<const int32_t> seq, size_t fresh) {
  const Tensor logits = use_cache_ ? model_.forward(row_tensor(seq.last(fresh)), &caches_)
                                   : model_.forward(row_tensor(seq));
  row_ = last_row(logits);
  return row_;
}

std::span<const float> RnnDecoder::next_logits(std::span<const int32_t> seq, size_t fresh) {
  row_ = last_row(model_.forward(row_tensor(seq.last(fresh)), &state_));
  return row_;
}

std::vector<int32_t> generate_ids(Decoder& decoder, std::span<const int32_t> prompt,
                                  const GenerateOptions& opt, const TokenCallback& on_token,
                                  GenerateStats* stats) {
  const int64_t ctx = decoder.context();
  LLMKIT_CHECK(!prompt.empty(), "generate: empty prompt (give at least one token)");
  LLMKIT_CHECK(opt.max_new_tokens >= 0, "generate: max_new_tokens must be >= 0, got ",
               opt.max_new_tokens);
  LLMKIT_CHECK(ctx == 0 || static_cast<int64_t>(prompt.size()) < ctx, "generate: the prompt has ",
               prompt.size(), " tokens but the model's context is ", ctx,
               " (block_size); shorten it to at most ", ctx - 1);
  NoGradGuard ng;
  GenerateStats st;
  st.prompt_tokens = static_cast<int64_t>(prompt.size());
  Sampler sampler(opt.sampler);
  std::vector<int32_t> seq(prompt.begin(), prompt.end()), out;
  decoder.reset(opt.use_cache);

  auto t0 = Clock::now();
  std::span<const float> row = decoder.next_logits(seq, seq.size());
  st.prefill_seconds = seconds_since(t0);
  t0 = Clock::now();
  st.stop_reason = "max_new_tokens";
  while (static_cast<int64_t>(out.size()) < opt.max_new_tokens) {
    const int32_t next = sampler.sample(row, seq);
    if (std::find(opt.stop_ids.begin(), opt.stop_ids.end(), next) != opt.stop_ids.end()) {
      st.stop_reason = "stop_id";
      break;
    }
    seq.push_back(next);
    out.push_back(next);
    if (on_token && !on_token(next)) {
      st.stop_reason = "stop_string";
      break;
    }
    if (ctx > 0 && static_cast<int64_t>(seq.size()) >= ctx) {
      st.stop_reason = "context";
      break;
    }
    if (static_cast<int64_t>(out.size()) == opt.max_new_tokens) break;
    row = decoder.next_logits(seq, 1);
  }
  st.new_tokens = static_cast<int64_t>(out.size());
  st.decode_seconds = seconds_since(t0);
  if (stats) *stats = st;
  return out;
}

std::vector<int32_t> generate_ids(models::GPT& model, std::span<const int32_t> prompt,
                                  const GenerateOptions& opt, const TokenCallback& on_token,
                                  GenerateStats* stats) {
  GptDecoder d(model);
  return generate_ids(d, prompt, opt, on_token, stats);
}

std::vector<std::vector<int32_t>> generate_batch(models::GPT& model,
                                                 std::span<const std::vector<int32_t>> prompts,
                                                 const GenerateOptions& opt,
                                                 std::span<const uint64_t> seeds,
                                                 const RowTokenCallback& on_token) {
  const size_t B = prompts.size();
  const int64_t ctx = model.config().block_size;
  LLMKIT_CHECK(B > 0 && seeds.size() == B, "generate_batch: ", B, " prompts and ", seeds.size(),
               " seeds (one per prompt, at least one)");
  LLMKIT_CHECK(opt.stop_strings.empty(), "generate_batch: stop strings are not supported");
  LLMKIT_CHECK(opt.max_new_tokens >= 0, "generate_batch: max_new_tokens must be >= 0, got ",
               opt.max_new_tokens);
  int64_t longest = 0;
  for (size_t i = 0; i < B; ++i) {
    const auto n = static_cast<int64_t>(prompts[i].size());
    LLMKIT_CHECK(n > 0 && n < ctx, "generate_batch: prompt ", i, " has ", n,
                 " tokens; it needs 1 to ", ctx - 1, " (the model's context is ", ctx, ")");
    longest = std::max(longest, n);
  }
  NoGradGuard ng;
  std::vector<Sampler> samplers;
  std::vector<std::vector<int32_t>> seq(B), out(B);
  std::vector<int64_t> pad(B);
  std::vector<int32_t> ids(B * longest, 0);  // the first call: prompts right-aligned
  for (size_t i = 0; i < B; ++i) {
    SamplerOptions so = opt.sampler;
    so.seed = seeds[i];
    samplers.emplace_back(so);
    seq[i] = prompts[i];
    pad[i] = longest - static_cast<int64_t>(prompts[i].size());
    std::copy(prompts[i].begin(), prompts[i].end(), ids.begin() + i * longest + pad[i]);
  }
  const int64_t steps = std::min(opt.max_new_tokens, ctx - longest);
  if (steps == 0) return out;
  std::vector<nn::KVCache> caches = model.make_caches(static_cast<int64_t>(B), longest + steps);
  Tensor logits =
      model.forward_rows(Tensor::from_vector(ids, {static_cast<int64_t>(B), longest}), caches, pad);
  std::vector<bool> done(B, false);
  std::vector<int32_t> next(B);
  for (int64_t step = 0; step < steps; ++step) {
    const std::vector<float> all = logits.to_vector<float>();
    const size_t V = all.size() / B;
    size_t live = 0;
    for (size_t i = 0; i < B; ++i) {
      if (done[i]) continue;  // rides along on its last token
      const int32_t id = samplers[i].sample(std::span(all).subspan(i * V, V), seq[i]);
      next[i] = id;
      if (std::find(opt.stop_ids.begin(), opt.stop_ids.end(), id) != opt.stop_ids.end()) {
        done[i] = true;
        continue;
      }
      seq[i].push_back(id);
      out[i].push_back(id);
      if (on_token && !on_token(i, id)) done[i] = true;
      live += done[i] ? 0 : 1;
    }
    if (live == 0 || step + 1 == steps) break;
    logits =
        model.forward_rows(Tensor::from_vector(next, {static_cast<int64_t>(B), 1}), caches, pad);
  }
  return out;
}

std::string generate_text(Decoder& decoder, const tokenizer::Tokenizer& tok,
                          std::string_view prompt, const GenerateOptions& opt,
                          const std::function<void(std::string_view)>& on_text,
                          GenerateStats* stats) {
  return generate_text_from_ids(decoder, tok, tok.encode(prompt), opt, on_text, stats);
}

std::string generate_text_from_ids(Decoder& decoder, const tokenizer::Tokenizer& tok,
                                   std::span<const int32_t> ids, const GenerateOptions& opt,
                                   const std::function<void(std::string_view)>& on_text,
                                   GenerateStats* stats) {
  // Whole characters only, and never any part of a stop string (text_stream.h).
  TokenTextStream text(tok);
  StopMatcher stop(opt.stop_strings);
  std::string emitted;  // text already sent to on_text
  auto emit = [&](const std::string& piece) {
    if (piece.empty()) return;
    emitted += piece;
    if (on_text) on_text(piece);
  };
  generate_ids(
      decoder, ids, opt,
      [&](int32_t id) {
        emit(stop.push(text.push(id)));
        return !stop.stopped();
      },
      stats);
  if (!stop.stopped()) {
    emit(stop.push(text.finish()));
    emit(stop.finish());
  }
  return emitted;
}

std::string generate_text(models::GPT& model, const tokenizer::Tokenizer& tok,
                          std::string_view prompt, const GenerateOptions& opt,
                          const std::function<void(std::string_view)>& on_text,
                          GenerateStats* stats) {
  GptDecoder d(model);
  return generate_text(d, tok, prompt, opt, on_text, stats);
}

std::unique_ptr<Decoder> make_decoder(models::LoadedModel& loaded) {
  if (loaded.gpt_config.has_value()) return std::make_unique<Engine>(loaded);
  if (loaded.rnn != nullptr) return std::make_unique<RnnDecoder>(*loaded.rnn);
  fail("'", loaded.path, "' holds a ", loaded.arch,
       " model; this command needs a decoder (gpt, llama or rnn)");
}

GenerateOptions with_model_stops(const models::LoadedModel& loaded, GenerateOptions opt) {
  for (int32_t id : loaded.eos_ids)
    if (std::find(opt.stop_ids.begin(), opt.stop_ids.end(), id) == opt.stop_ids.end())
      opt.stop_ids.push_back(id);
  return opt;
}

std::vector<int32_t> encode_prompt(const models::LoadedModel& loaded, std::string_view prompt) {
  LLMKIT_CHECK(loaded.tokenizer.has_value(), "'", loaded.path, "' has no tokenizer");
  std::vector<int32_t> ids;
  if (loaded.add_bos && loaded.bos_id >= 0) ids.push_back(loaded.bos_id);
  const auto body = loaded.tokenizer->encode(prompt);
  ids.insert(ids.end(), body.begin(), body.end());
  return ids;
}

}  // namespace llmkit::infer
