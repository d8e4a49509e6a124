// Preference data (the notes' 선호도 데이터: RLHF's reward model and DPO): a prompt with two
// answers of which a person (or a reward model) preferred one. Read from JSONL in TRL's formats and
// tokenised for a decoder: prompt ids (through the chat template when the model has one) and
// each answer's ids with the end-of-turn token, which the answer's log-probability includes.
// Not here: the losses (train/align.h).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "llmkit/data/conversations.h"

namespace llmkit::data {

// One pair. Conversational prompts (a list of messages) are kept as messages; a plain-string
// prompt becomes one user message when `chat` tokenisation is asked for, raw text otherwise.
struct PreferencePair {
  std::vector<tokenizer::ChatMessage> prompt;  // conversational, or one "user" message
  std::string chosen, rejected;                // the assistant answers
};

// Reads JSONL, one pair per line, TRL's preference formats:
//   {"prompt": "...", "chosen": "...", "rejected": "..."}
//   {"prompt": [{"role", "content"}...], "chosen": [{"role": "assistant", ...}],
//    "rejected": [{"role": "assistant", ...}]}
//   {"chosen": [...messages...], "rejected": [...messages...]}  (implicit prompt: the shared
//                                                                 leading messages)
// Errors name the file and line (bad JSON, missing field, chosen == rejected is allowed but an
// empty answer is not, invalid UTF-8). limit > 0: the first `limit` pairs.
std::vector<PreferencePair> read_preferences(const std::string& path, int64_t limit = 0);

// A pair as ids: the prompt, then each answer (ending with the end-of-turn / eos id).
struct PreferenceExample {
  std::vector<int32_t> prompt, chosen, rejected;
};

// chat = true: the prompt through f.tpl with the generation prompt (as prompt_ids), each answer
// tokenised as assistant content plus eos_id. chat = false: the prompt's text tokenised as is
// (bos first when add_bos), each answer's text tokenised and eos_id appended. The prompt is cut
// from the left to max_prompt tokens, each answer to max_len - prompt tokens (the eos kept when it
// fits).
PreferenceExample tokenize_preference(const PreferencePair& p, const ChatFormat& f, bool chat,
                                      int64_t max_len, int64_t max_prompt);

}  // namespace llmkit::data
