// Preference pairs (preferences.h): TRL's three JSONL layouts, implicit-prompt extraction, and
// tokenisation of the prompt and both answers through the chat template (the answers exactly as
// SFT labels them) or as plain text. Not here: the reward and DPO losses (train/align.h).
#include "llmkit/data/preferences.h"

#include <algorithm>

#include "llmkit/core/error.h"
#include "llmkit/data/chat_detail.h"

namespace llmkit::data {

using tokenizer::ChatMessage;

namespace {

// "chosen" / "rejected" when a prompt is given: the answer's text, or a list holding one
// assistant message.
std::string answer_from_json(const nlohmann::json& j, const std::string& field,
                             const std::string& where) {
  if (j.is_string()) return j.get<std::string>();
  LLMKIT_CHECK(j.is_array(), where, ": \"", field, "\" is neither a string nor a message list");
  const std::vector<ChatMessage> m = detail::messages_from_json(j, field, where);
  LLMKIT_CHECK(m.size() == 1 && m[0].role == "assistant", where, ": \"", field,
               "\" must hold one assistant message, got ", m.size(), " messages");
  return m[0].content;
}

// The implicit-prompt layout: both lists share their leading messages (the prompt) and each then
// has exactly one assistant message, its answer. The shared part stops before the last message
// so that identical lists (chosen == rejected) still have their answers.
void split_implicit(const std::vector<ChatMessage>& chosen,
                    const std::vector<ChatMessage>& rejected, const std::string& where,
                    PreferencePair& p) {
  LLMKIT_CHECK(!chosen.empty() && !rejected.empty(), where,
               ": \"chosen\" and \"rejected\" must not be empty");
  const size_t limit = std::min(chosen.size(), rejected.size()) - 1;
  size_t k = 0;
  while (k < limit && chosen[k].role == rejected[k].role &&
         chosen[k].content == rejected[k].content)
    ++k;
  auto answer = [&](const std::vector<ChatMessage>& m, const char* field) {
    LLMKIT_CHECK(m.size() == k + 1 && m.back().role == "assistant", where, ": \"", field,
                 "\" must be the shared prompt messages and then one assistant message (the "
                 "lists differ from message ",
                 k, ")");
    return m.back().content;
  };
  p.chosen = answer(chosen, "chosen");
  p.rejected = answer(rejected, "rejected");
  p.prompt.assign(chosen.begin(), chosen.begin() + static_cast<std::ptrdiff_t>(k));
}

// The prompt cut from the left to `keep` tokens, a bos in front kept in front.
void cut_prompt_left(std::vector<int32_t>& ids, int64_t keep, const ChatFormat& f) {
  if (keep <= 0 || static_cast<int64_t>(ids.size()) <= keep) return;
  const bool bos = f.add_bos && ids[0] == f.bos_id && keep > 1;
  const auto first = ids.end() - static_cast<std::ptrdiff_t>(keep - (bos ? 1 : 0));
  std::vector<int32_t> out;
  out.reserve(static_cast<size_t>(keep));
  if (bos) out.push_back(f.bos_id);
  out.insert(out.end(), first, ids.end());
  ids = std::move(out);
}

// The prompt's ids and an answer's labelled tokens (its content and end-of-turn) from the
// conversation prompt + [assistant: answer], tokenised as SFT tokenises it.
std::pair<std::vector<int32_t>, std::vector<int32_t>> chat_ids(const PreferencePair& p,
                                                               const std::string& answer,
                                                               const ChatFormat& f) {
  Conversation c{p.prompt};
  c.messages.push_back({"assistant", answer});
  const detail::TokenizedTurns t = detail::tokenize_turns(c, f);
  const auto begin = t.ex.ids.begin() + static_cast<std::ptrdiff_t>(t.last_span_begin);
  std::vector<int32_t> prompt(t.ex.ids.begin(), begin), ans;
  for (size_t i = static_cast<size_t>(t.last_span_begin); i < t.ex.ids.size(); ++i)
    if (t.ex.labels[i] != -100) ans.push_back(t.ex.ids[i]);
  return {std::move(prompt), std::move(ans)};
}

}  // namespace

std::vector<PreferencePair> read_preferences(const std::string& path, int64_t limit) {
  std::vector<PreferencePair> out;
  detail::for_each_jsonl(path, limit, [&](const nlohmann::json& j, const std::string& where) {
    LLMKIT_CHECK(j.contains("chosen"), where, ": no field \"chosen\"");
    LLMKIT_CHECK(j.contains("rejected"), where, ": no field \"rejected\"");
    PreferencePair p;
    if (j.contains("prompt")) {
      const nlohmann::json& q = j["prompt"];
      if (q.is_string())
        p.prompt = {{"user", q.get<std::string>()}};
      else if (q.is_array())
        p.prompt = detail::messages_from_json(q, "prompt", where);
      else
        fail(where, ": \"prompt\" is neither a string nor a message list");
      p.chosen = answer_from_json(j["chosen"], "chosen", where);
      p.rejected = answer_from_json(j["rejected"], "rejected", where);
    } else {
      LLMKIT_CHECK(j["chosen"].is_array() && j["rejected"].is_array(), where,
                   ": no field \"prompt\" (without one, \"chosen\" and \"rejected\" must be "
                   "message lists that share the prompt)");
      split_implicit(detail::messages_from_json(j["chosen"], "chosen", where),
                     detail::messages_from_json(j["rejected"], "rejected", where), where, p);
    }
    LLMKIT_CHECK(!p.chosen.empty(), where, ": empty \"chosen\" answer");
    LLMKIT_CHECK(!p.rejected.empty(), where, ": empty \"rejected\" answer");
    out.push_back(std::move(p));
  });
  LLMKIT_CHECK(!out.empty(), "data: '", path, "' holds no preference pairs");
  return out;
}

PreferenceExample tokenize_preference(const PreferencePair& p, const ChatFormat& f, bool chat,
                                      int64_t max_len, int64_t max_prompt) {
  LLMKIT_CHECK(max_len <= 0 || (max_prompt > 0 && max_prompt < max_len), "preferences: max_len ",
               max_len, " needs 0 < max_prompt < max_len (max_prompt ", max_prompt,
               "), to leave room for the answers");
  PreferenceExample ex;
  if (chat) {
    auto [prompt_c, chosen] = chat_ids(p, p.chosen, f);
    auto [prompt_r, rejected] = chat_ids(p, p.rejected, f);
    LLMKIT_CHECK(prompt_c == prompt_r,
                 "preferences: the chat template renders the prompt differently before the two "
                 "answers");
    ex = {std::move(prompt_c), std::move(chosen), std::move(rejected)};
  } else {
    LLMKIT_CHECK(f.tok != nullptr, "preferences: ChatFormat has no tokenizer");
    LLMKIT_CHECK(f.eos_id >= 0 && f.eos_id < f.tok->vocab_size(), "preferences: eos id ", f.eos_id,
                 " is not a token of the tokenizer");
    LLMKIT_CHECK(p.prompt.size() == 1, "preferences: a conversational prompt (", p.prompt.size(),
                 " messages) needs chat tokenisation");
    ex.prompt = f.tok->encode(p.prompt[0].content);
    if (f.add_bos) {
      LLMKIT_CHECK(f.bos_id >= 0 && f.bos_id < f.tok->vocab_size(), "preferences: bos id ",
                   f.bos_id, " is not a token of the tokenizer");
      ex.prompt.insert(ex.prompt.begin(), f.bos_id);
    }
    ex.chosen = f.tok->encode(p.chosen);
    ex.chosen.push_back(f.eos_id);
    ex.rejected = f.tok->encode(p.rejected);
    ex.rejected.push_back(f.eos_id);
  }
  cut_prompt_left(ex.prompt, max_prompt, f);
  if (max_len > 0) {
    const auto room = static_cast<size_t>(max_len - static_cast<int64_t>(ex.prompt.size()));
    if (ex.chosen.size() > room) ex.chosen.resize(room);
    if (ex.rejected.size() > room) ex.rejected.resize(room);
  }
  return ex;
}

}  // namespace llmkit::data
