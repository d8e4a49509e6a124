// What the conversation and preference readers and tokenisers share (conversations.cpp,
// preferences.cpp), not part of the data API: the JSONL line loop with its file:line errors,
// the parsing of a TRL message list, and the turn tokeniser that also says where the last
// assistant span starts (the preference tokeniser splits prompt from answer there).
// Not here: the record formats themselves (conversations.h, preferences.h).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "llmkit/data/conversations.h"

namespace llmkit::data::detail {

// Calls fn(record, where) for each non-blank line of a JSONL file, `where` being "path:line".
// Lines are read one at a time (a file of any size); each must be valid UTF-8 and one JSON
// object, else an Error naming the file and line. limit > 0: stop after `limit` records.
void for_each_jsonl(const std::string& path, int64_t limit,
                    const std::function<void(const nlohmann::json&, const std::string&)>& fn);

// A TRL message list, [{"role": "system"|"user"|"assistant", "content": "..."}, ...]; other keys
// ignored. `field` names the list in errors: "where: \"messages\"[2]: role 'tool' is not ...".
std::vector<tokenizer::ChatMessage> messages_from_json(const nlohmann::json& list,
                                                       const std::string& field,
                                                       const std::string& where);

// tokenize_conversation without the cut to max_len; last_span_begin is where the last assistant
// span's tokens start in ex.ids (bos included).
struct TokenizedTurns {
  SftExample ex;
  int64_t last_span_begin = 0;
};
TokenizedTurns tokenize_turns(const Conversation& c, const ChatFormat& f);

}  // namespace llmkit::data::detail
