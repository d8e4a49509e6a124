// Chat with a pretrained (not instruction-tuned) model. Such a model only continues text, so the
// conversation is kept as a transcript and the model writes the assistant's next turn:
//
//   <preamble, optional: a "system prompt" kept at the top>
//
//   User: first question
//   Assistant: first answer
//   User: new question
//   Assistant:                      <- the prompt ends here; the model continues it
//
// The same text is the saved-transcript format (`llmkit chat --transcript/--save`). The prompt
// is trimmed to the model's context by dropping the oldest turns, never the new question; the
// reply is streamed through a StopMatcher, so a stop string ("\nUser:", ...) is never shown even
// in part. Instruction-tuned models (SmolLM2-Instruct, Llama-3-Instruct, ...) talk through their
// chat template instead: template_chat_reply below renders the history with it.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "llmkit/infer/generate.h"
#include "llmkit/infer/text_stream.h"
#include "llmkit/tokenizer/chat_template.h"
#include "llmkit/tokenizer/tokenizer.h"

namespace llmkit::infer {

enum class Role { kUser, kAssistant };

// "User" or "Assistant": the label a turn starts with in the transcript (followed by ':').
const char* role_label(Role role);

struct Turn {
  Role role = Role::kUser;
  std::string text;  // normalised (see Conversation::add); may span lines
  bool operator==(const Turn&) const = default;
};

// Transcript text format: a line that starts with "User:" or "Assistant:" opens a turn (the
// label and the spaces after it are not part of the text); the following lines, up to the next
// such line, continue it. Lines before the first turn are the preamble. Line ends may be \n or
// \r\n. parse_transcript(c.render()) == c for every conversation that parse_transcript returns.
struct Conversation {
  std::string preamble;  // must not start with a role label (it would read back as a turn)
  std::vector<Turn> turns;
  bool operator==(const Conversation&) const = default;

  // Appends a turn. The text is normalised as parsing would leave it: \r at line ends removed,
  // leading and trailing whitespace trimmed. A later line of `text` that starts with a role label
  // would read back as a turn of its own; chat's stop strings keep replies from holding one.
  void add(Role role, std::string_view text);
  // The transcript from turn `first` on: the preamble and a blank line (if any), then one
  // "Label: text\n" per turn.
  std::string render(size_t first = 0) const;
  // render(first) + "Assistant:": what the model continues to write the next reply.
  std::string prompt(size_t first = 0) const;
};

// Parses a transcript (see Conversation). `name` (a file name) is used in errors. Invalid
// UTF-8 is an Error naming the line.
Conversation parse_transcript(std::string_view text, const std::string& name = "transcript");

struct ChatPrompt {
  std::vector<int32_t> ids;  // the tokens of conversation.prompt(first_turn)
  size_t first_turn = 0;     // turns before this one were dropped to fit
};

// The prompt for the reply to the last turn, within `budget` tokens: drops the fewest oldest
// turns that make it fit; the preamble and the last turn (the new question) are always kept. If
// they alone exceed the budget, an Error says how long the question is and how much fits.
// Cost: O(log turns) encodings of the transcript.
ChatPrompt fit_prompt(const Conversation& conversation, const tokenizer::Tokenizer& tok,
                      int64_t budget);

// What ends a reply: the next turn's label on a new line, or a blank line.
std::vector<std::string> chat_stop_strings();

struct ChatReplyInfo {
  size_t dropped_turns = 0;  // turns left out of this prompt to fit the context
  GenerateStats stats;
};

// One round: adds `question` as a user turn, fits the prompt to the decoder's context (a
// decoder without a limit, an RNN, uses `unbounded_context`) keeping room for the reply
// (opt.max_new_tokens, but at most half the context), generates the reply streaming it to
// on_text (stopping at opt.stop_ids, opt.stop_strings and chat_stop_strings(), none of which is
// shown), and adds it as an assistant turn. Returns the reply. When the question does not fit,
// the Error leaves the conversation as it was.
std::string chat_reply(Decoder& decoder, const tokenizer::Tokenizer& tok,
                       Conversation& conversation, std::string_view question,
                       const GenerateOptions& opt,
                       const std::function<void(std::string_view)>& on_text = {},
                       ChatReplyInfo* info = nullptr, int64_t unbounded_context = 4096);

// ---- Chat through a model's chat template (instruction-tuned models) ----

struct TemplatePrompt {
  std::vector<int32_t> ids;  // the tokens of the rendered prompt (special tokens recognised)
  size_t first_message = 0;  // messages after the leading system ones and before this were dropped
};

// The prompt for the reply to the last message of `history`: the template rendered with the
// generation prompt and encoded with special tokens recognised (as apply_chat_template with
// tokenize=True). To fit `budget` tokens it drops the fewest oldest whole turns (a turn starts
// at a user message); the leading system message(s) and the last turn are always kept. If they
// alone exceed the budget, an Error says how long the prompt is and how much fits.
TemplatePrompt fit_template_prompt(const tokenizer::ChatTemplate& tpl,
                                   std::span<const tokenizer::ChatMessage> history,
                                   const tokenizer::Tokenizer& tok, int64_t budget);

// The ids that end an assistant turn: the tokenizer's id of tpl.eos_token() (if any) and the
// special token the template writes right after an assistant message (<|im_end|> for ChatML,
// <|eot_id|> for Llama 3, <end_of_turn> for Gemma, ...), found by rendering a probe conversation.
std::vector<int32_t> end_of_turn_ids(const tokenizer::ChatTemplate& tpl,
                                     const tokenizer::Tokenizer& tok);

// One round with an instruction-tuned model: appends {user, question} to `history`, fits the
// prompt to the decoder's context keeping room for the reply (opt.max_new_tokens, at most half
// the context), streams the reply to on_text token by token (never a partial UTF-8 character,
// never any part of opt.stop_strings), stopping at end_of_turn_ids() and opt.stop_ids (none of
// them shown), and appends {assistant, reply}. Returns the reply as generated; info->dropped_turns
// counts the user turns left out of this prompt. When the question does not fit, or the template
// refuses the history (raise_exception), the Error leaves the history as it was.
std::string template_chat_reply(Decoder& decoder, const tokenizer::Tokenizer& tok,
                                const tokenizer::ChatTemplate& tpl,
                                std::vector<tokenizer::ChatMessage>& history,
                                std::string_view question, const GenerateOptions& opt,
                                const std::function<void(std::string_view)>& on_text = {},
                                ChatReplyInfo* info = nullptr, int64_t unbounded_context = 4096);

}  // namespace llmkit::infer
