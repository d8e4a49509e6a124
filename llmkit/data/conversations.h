// Instruction data for supervised fine-tuning (SFT, the notes' 지시 튜닝): conversations read from
// JSONL, rendered by the model's chat template, tokenised with a label per token that is the
// token itself on what the assistant says (and the end-of-turn token after it) and -100 (ignored
// by the loss) everywhere else -- system prompt, user turns, template markup -- so the model
// learns to answer, not to repeat questions. Short examples are packed into rows of a fixed
// length with a segment id per token (models::GPT::forward_packed keeps them apart).
// Not here: the training loop (train/align.h), the data extraction (scripts/data/).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "llmkit/tokenizer/chat_template.h"
#include "llmkit/tokenizer/tokenizer.h"

namespace llmkit::data {

// One training conversation: alternating turns, at least one "assistant" turn.
struct Conversation {
  std::vector<tokenizer::ChatMessage> messages;
};

// Reads a JSONL file, one conversation per line, in TRL's formats:
//   {"messages": [{"role": "system"|"user"|"assistant", "content": "..."}, ...]}
//   {"prompt": "...", "completion": "..."}   -> user: prompt, assistant: completion
//   {"prompt": [messages], "completion": [messages]}  -> the two lists one after the other
// Other keys are ignored; blank lines skipped; the file is read line by line. Errors name the file
// and line: bad JSON, neither format, a role other than system/user/assistant, non-string
// content, no assistant turn, invalid UTF-8, a file without conversations. limit > 0: only the
// first `limit` conversations.
std::vector<Conversation> read_conversations(const std::string& path, int64_t limit = 0);

// How conversations become tokens for one model.
struct ChatFormat {
  const tokenizer::Tokenizer* tok = nullptr;
  // The model's template; a model without one gets plain_template() (documented there).
  tokenizer::ChatTemplate tpl = tokenizer::ChatTemplate::chatml();
  // The end-of-turn token the model must learn to emit after every assistant turn: the
  // template's eos_token when the tokenizer has it, else the model's first eos id.
  int32_t eos_id = -1;
  bool add_bos = false;  // put bos_id first (tokenizer config's add_bos_token)
  int32_t bos_id = -1;
};

// The built-in template for a model that has none (a base model we pretrained): plain text
// turns "User: ...\n" / "System: ...\n" and "Assistant: ..." followed by the eos token and "\n";
// the generation prompt is "Assistant:". Its eos token is `eos_token` (the tokenizer's
// <|endoftext|> for our GPT runs).
tokenizer::ChatTemplate plain_template(const std::string& eos_token);

// A tokenised conversation: labels[i] = ids[i] where the assistant speaks (its content and the
// end-of-turn token), -100 elsewhere.
struct SftExample {
  std::vector<int32_t> ids, labels;
  int64_t assistant_tokens() const;  // labels that are not -100
};

// Renders and tokenises one conversation. Assistant spans are found by rendering the
// conversation up to each assistant turn with the generation prompt and up to its end without
// it: the difference is that turn. A template where the first is not a prefix of the second, or
// where the text before a turn does not continue the text up to the previous answer (one that
// renders earlier turns differently once more follow), is an Error naming the turn
// ("messages[3]"). The text between answers is tokenised separately from the answers, so no
// token spans a boundary. Each assistant span is labelled up to and including the first eos_id in
// it (what follows, such as the "\n" after <|im_end|>, is -100); a span without one gets eos_id
// appended (and labelled). Messages after the last assistant turn are dropped. Special tokens in
// the rendered template text are recognised; in message content they are not (a user cannot
// inject <|im_end|>: such text is encoded as ordinary text; see conversations.cpp for how). bos
// first when add_bos, unless the template wrote it. Longer than max_len (> 0): the first max_len
// tokens are kept (labels too). Errors: no assistant turn, an eos_id / bos_id that is not a
// token, a template error. Thread-safe.
SftExample tokenize_conversation(const Conversation& c, const ChatFormat& f, int64_t max_len);

// The prompt of a conversation for generation: its messages without a final assistant turn (the
// reference answer, when the last message is one), rendered with the generation prompt and
// tokenised as tokenize_conversation does (content never yields special tokens; bos first when
// add_bos and the template did not write it).
std::vector<int32_t> prompt_ids(std::span<const tokenizer::ChatMessage> messages,
                                const ChatFormat& f);

// Rows of `row_len` tokens, each holding whole examples back to back, the rest padded: ids with
// pad_id, labels -100, segments -1 for padding and 0, 1, 2 ... for the examples of the row in
// the order they were placed. First fit in the order given: each example goes to the first row
// (lowest index) with room for it, else a new row at the end, so the result depends only on the
// order (deterministic; shuffle before packing for a random mix). An example longer than row_len
// gets a new row of its own, cut to its first row_len tokens. Empty examples are skipped.
// O(n log n) in the number of examples.
struct PackedRows {
  int64_t rows = 0, row_len = 0;
  std::vector<int32_t> ids, labels, segments;  // [rows * row_len]
  int64_t examples = 0, tokens = 0;            // examples packed, real (non-pad) tokens
};
PackedRows pack_examples(std::span<const SftExample> examples, int64_t row_len, int32_t pad_id);

}  // namespace llmkit::data
