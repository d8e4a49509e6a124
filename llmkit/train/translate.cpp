// Translation and its scores (translate.h).
#include "llmkit/train/translate.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <numeric>

#include "llmkit/io/safetensors.h"

namespace llmkit::train {

std::unique_ptr<models::T5> load_t5(const std::string& dir) {
  const std::string cfg_path = dir + "/config.json", weights = dir + "/model.safetensors";
  LLMKIT_CHECK(std::filesystem::exists(cfg_path), "translate: '", dir,
               "' is not a model directory (no config.json)");
  auto model = std::make_unique<models::T5>(models::T5Config::load(cfg_path));
  io::SafetensorsFile f = io::load_safetensors(weights);
  std::map<std::string, Tensor> state(f.tensors.begin(), f.tensors.end());
  try {
    model->load_state_dict(state);
  } catch (const Error& e) {
    fail(weights, ": ", e.what());
  }
  model->eval();
  return model;
}

std::vector<int32_t> encode_with_eos(const tokenizer::Tokenizer& tok, const std::string& text,
                                     int32_t eos_id, int64_t max_len) {
  std::vector<int32_t> ids = tok.encode(text);
  if (static_cast<int64_t>(ids.size()) > max_len - 1) ids.resize(max_len - 1);
  ids.push_back(eos_id);
  return ids;
}

int32_t pick_no_repeat(std::span<const float> logits, std::vector<int32_t>& history, int64_t n) {
  std::vector<int32_t> banned;
  const auto len = static_cast<int64_t>(history.size());
  for (int64_t i = 0; i + n <= len; ++i)  // each earlier n-gram history[i .. i + n - 1]
    if (std::equal(history.begin() + i, history.begin() + i + n - 1, history.end() - (n - 1)))
      banned.push_back(history[i + n - 1]);
  int32_t best = -1;
  for (size_t v = 0; v < logits.size(); ++v) {
    if (std::find(banned.begin(), banned.end(), static_cast<int32_t>(v)) != banned.end()) continue;
    if (best < 0 || logits[v] > logits[best]) best = static_cast<int32_t>(v);
  }
  if (best < 0)  // every token banned (a tiny vocabulary): plain greedy
    best = static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
  history.push_back(best);
  return best;
}

std::vector<std::string> translate(models::T5& model, const tokenizer::Tokenizer& tok,
                                   const std::vector<std::string>& sources,
                                   const TranslateOptions& opt) {
  const models::T5Config& c = model.config();
  LLMKIT_CHECK(tok.vocab_size() <= c.vocab_size, "translate: the tokenizer has ", tok.vocab_size(),
               " tokens, the model ", c.vocab_size);
  LLMKIT_CHECK(opt.batch_size > 0, "translate: batch_size must be positive");
  std::vector<std::vector<int32_t>> ids(sources.size());
  for (size_t i = 0; i < sources.size(); ++i)
    ids[i] = encode_with_eos(tok, sources[i], static_cast<int32_t>(c.eos_id), c.block_size);
  std::vector<size_t> order(sources.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return ids[a].size() < ids[b].size(); });
  models::T5GenerateOptions gen;
  gen.max_new_tokens = opt.max_new_tokens > 0 ? opt.max_new_tokens : c.block_size;
  std::vector<std::string> out(sources.size());
  for (size_t start = 0; start < order.size(); start += opt.batch_size) {
    const size_t end = std::min(order.size(), start + static_cast<size_t>(opt.batch_size));
    size_t T = 0;
    for (size_t i = start; i < end; ++i) T = std::max(T, ids[order[i]].size());
    const int64_t B = static_cast<int64_t>(end - start);
    std::vector<int32_t> src(B * T, static_cast<int32_t>(c.pad_id));
    for (size_t i = start; i < end; ++i)
      std::copy(ids[order[i]].begin(), ids[order[i]].end(), src.begin() + (i - start) * T);
    std::vector<std::vector<int32_t>> history(B);
    if (opt.no_repeat_ngram > 0)
      gen.pick = [&](std::span<const float> logits, int64_t b) {
        return pick_no_repeat(logits, history[b], opt.no_repeat_ngram);
      };
    const auto hyps = model.generate(Tensor::from_vector(src, {B, static_cast<int64_t>(T)}), gen);
    for (size_t i = start; i < end; ++i) out[order[i]] = tok.decode(hyps[i - start], true);
  }
  return out;
}

TranslationReport evaluate_translation(models::T5& model, const tokenizer::Tokenizer& tok,
                                       const std::vector<data::TextPair>& pairs,
                                       const TranslateOptions& opt) {
  LLMKIT_CHECK(!pairs.empty(), "translate: no pairs to score");
  std::vector<std::string> sources, refs;
  for (const auto& p : pairs) {
    sources.push_back(p.source);
    refs.push_back(p.target);
  }
  TranslationReport r;
  const auto t0 = std::chrono::steady_clock::now();
  r.hypotheses = translate(model, tok, sources, opt);
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  r.bleu = infer::corpus_bleu(r.hypotheses, refs);
  r.chrf = infer::corpus_chrf(r.hypotheses, refs);
  r.pairs = static_cast<int64_t>(pairs.size());
  return r;
}

}  // namespace llmkit::train
