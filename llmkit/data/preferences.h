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
// With a prompt, either kind of prompt goes with either kind of answer (a string, or a list of
// exactly one assistant message). Without one, the prompt is the longest run of leading messages
// the two lists share (never their last message), and after it each list must hold exactly one
// assistant message, its answer. Errors name the file and line (bad JSON, missing field, a
// message list of another shape, a bad role, chosen == rejected is allowed but an empty answer is
// not, invalid UTF-8, a file without pairs). limit > 0: the first `limit` pairs.
std::vector<PreferencePair> read_preferences(const std::string& path, int64_t limit = 0);

// A pair as ids: the prompt, then each answer (ending with the end-of-turn / eos id).
struct PreferenceExample {
  std::vector<int32_t> prompt, chosen, rejected;
};

// chat = true: prompt + [assistant: answer] tokenised as tokenize_conversation does; the prompt is
// the ids before the answer's span (the template's text with the generation prompt, bos first
// when add_bos), the answer its labelled tokens (content up to and including the end-of-turn
// eos_id), so DPO scores exactly the tokens SFT trains; the template's text after the eos is not
// part of it. chat = false: the prompt must be one message, whose text is tokenised as is (no
// special tokens recognised; bos first when add_bos), each answer's text tokenised likewise and
// eos_id appended; put the space between them in the data (" Paris"). Cuts: the prompt to its last
// max_prompt tokens when max_prompt > 0 (a leading bos stays); with max_len > 0 (which needs
// 0 < max_prompt < max_len), each answer to its first max_len - prompt tokens, so an answer that
// does not fit loses its eos (it is not an ended answer).
PreferenceExample tokenize_preference(const PreferencePair& p, const ChatFormat& f, bool chat,
                                      int64_t max_len, int64_t max_prompt);

}  // namespace llmkit::data
