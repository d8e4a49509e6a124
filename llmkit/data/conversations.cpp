// Conversations for SFT (conversations.h): the JSONL reader, the chat-template tokeniser that
// labels the assistant's tokens, the plain template for models without one, and first-fit
// packing. Also the JSONL and message-list helpers preferences.cpp shares (chat_detail.h).
// Not here: the loss and the training loop (train/align.h).
#include "llmkit/data/conversations.h"

#include <algorithm>
#include <fstream>
#include <unordered_map>

#include "llmkit/core/error.h"
#include "llmkit/data/chat_detail.h"
#include "llmkit/tokenizer/unicode.h"

namespace llmkit::data {

using tokenizer::ChatMessage;

namespace {

constexpr int32_t kIgnore = -100;  // the label the loss skips (PyTorch's ignore_index)

// Special-token text inside message content must not become special tokens (a user could end
// the assistant's turn with a typed "<|im_end|>"), while the same text written by the template is
// markup. The template sees content in which each special-token string (and each code point of
// the sentinel range itself, so none is ambiguous) is replaced by one sentinel code point from
// Unicode's last private-use plane, U+100000 + j, where literals[j] is the text it stands for;
// the rendered text is then encoded piecewise: the template's text with special tokens
// recognised, each literal as ordinary text. Content without special-token text renders and
// encodes exactly as without escaping. A template that looks for special-token text inside
// content (splitting on it, say) does not see it.
constexpr int32_t kSentinelBase = 0x100000;
constexpr int32_t kSentinelCount = 0xFFFE;  // U+100000 .. U+10FFFD

struct Escaped {
  std::vector<ChatMessage> messages;
  std::vector<std::string> literals;  // sentinel j -> the text it replaced
};

class Escaper {
 public:
  explicit Escaper(const tokenizer::Tokenizer& tok) {
    for (std::string& s : tok.special_tokens())
      if (!s.empty()) specials_.push_back(std::move(s));
  }

  std::string escape(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    size_t pos = 0;
    while (pos < text.size()) {
      // The earliest special token (longest at equal positions, as the tokenizer matches them)
      // or the earliest code point U+100000.. (UTF-8 lead byte F4).
      size_t best = text.find('\xF4', pos), best_len = 0;
      if (best != std::string_view::npos) {
        int len = 1;
        tokenizer::utf8_decode(text, best, len);
        best_len = static_cast<size_t>(len);
      }
      for (const std::string& s : specials_) {
        const size_t at = text.find(s, pos);
        if (at < best || (at == best && at != std::string_view::npos && s.size() > best_len))
          best = at, best_len = s.size();
      }
      if (best == std::string_view::npos) break;
      out.append(text.substr(pos, best - pos));
      tokenizer::utf8_append(out,
                             kSentinelBase + sentinel(std::string(text.substr(best, best_len))));
      pos = best + best_len;
    }
    out.append(text.substr(pos));
    return out;
  }

  std::vector<std::string> take_literals() { return std::move(literals_); }

 private:
  int32_t sentinel(const std::string& literal) {
    auto [it, added] = index_.emplace(literal, static_cast<int32_t>(literals_.size()));
    if (added) {
      LLMKIT_CHECK(literals_.size() < static_cast<size_t>(kSentinelCount), "chat: more than ",
                   kSentinelCount, " distinct special-token texts in content");
      literals_.push_back(literal);
    }
    return it->second;
  }

  std::vector<std::string> specials_;
  std::vector<std::string> literals_;
  std::unordered_map<std::string, int32_t> index_;
};

Escaped escape_messages(std::span<const ChatMessage> messages, const tokenizer::Tokenizer& tok) {
  Escaper esc(tok);
  Escaped e;
  e.messages.reserve(messages.size());
  for (const ChatMessage& m : messages) e.messages.push_back({m.role, esc.escape(m.content)});
  e.literals = esc.take_literals();
  return e;
}

// Appends the ids of rendered (escaped) text: template text with special tokens recognised,
// each sentinel's literal as ordinary text. A code point U+10xxxx that is no sentinel of ours can
// only come from the template itself and stays ordinary text.
void encode_rendered(std::string_view text, const tokenizer::Tokenizer& tok,
                     const std::vector<std::string>& literals, std::vector<int32_t>& out) {
  tokenizer::EncodeOptions markup;
  markup.allow_special = true;
  auto append = [&](std::string_view piece, const tokenizer::EncodeOptions& o) {
    if (piece.empty()) return;
    const std::vector<int32_t> ids = tok.encode(piece, o);
    out.insert(out.end(), ids.begin(), ids.end());
  };
  size_t start = 0, pos = 0;
  while ((pos = text.find('\xF4', pos)) != std::string_view::npos) {
    int len = 1;
    const int32_t j = tokenizer::utf8_decode(text, pos, len) - kSentinelBase;
    if (j < 0 || j >= static_cast<int32_t>(literals.size())) {
      pos += static_cast<size_t>(len);
      continue;
    }
    append(text.substr(start, pos - start), markup);
    append(literals[static_cast<size_t>(j)], {});
    pos += static_cast<size_t>(len);
    start = pos;
  }
  append(text.substr(start), markup);
}

void check_format(const ChatFormat& f) {
  LLMKIT_CHECK(f.tok != nullptr, "chat: ChatFormat has no tokenizer");
  const int32_t v = f.tok->vocab_size();
  LLMKIT_CHECK(f.eos_id >= 0 && f.eos_id < v, "chat: eos id ", f.eos_id,
               " is not a token of the tokenizer (vocabulary ", v, ")");
  LLMKIT_CHECK(!f.add_bos || (f.bos_id >= 0 && f.bos_id < v), "chat: add_bos with bos id ",
               f.bos_id, " that is not a token of the tokenizer (vocabulary ", v, ")");
}

// bos first when asked for and the template did not already write it.
void add_bos(const ChatFormat& f, std::vector<int32_t>& ids, std::vector<int32_t>* labels) {
  if (!f.add_bos || (!ids.empty() && ids[0] == f.bos_id)) return;
  ids.insert(ids.begin(), f.bos_id);
  if (labels) labels->insert(labels->begin(), kIgnore);
}

bool starts_with(const std::string& s, const std::string& prefix) {
  return s.size() >= prefix.size() && s.compare(0, prefix.size(), prefix) == 0;
}

}  // namespace

namespace detail {

void for_each_jsonl(const std::string& path, int64_t limit,
                    const std::function<void(const nlohmann::json&, const std::string&)>& fn) {
  std::ifstream in(path, std::ios::binary);
  LLMKIT_CHECK(in, "data: cannot open '", path, "'");
  std::string line;
  int64_t line_no = 0, records = 0;
  while ((limit <= 0 || records < limit) && std::getline(in, line)) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;  // blank line
    const std::string where = path + ":" + std::to_string(line_no);
    const int64_t bad = tokenizer::utf8_find_invalid(line);
    LLMKIT_CHECK(bad < 0, where, ": not valid UTF-8 (byte ", bad + 1, ")");
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception&) {
      fail(where, ": not valid JSON");
    }
    LLMKIT_CHECK(j.is_object(), where, ": not a JSON object");
    fn(j, where);
    ++records;
  }
  LLMKIT_CHECK(!in.bad(), "data: error reading '", path, "'");
}

std::vector<ChatMessage> messages_from_json(const nlohmann::json& list, const std::string& field,
                                            const std::string& where) {
  LLMKIT_CHECK(list.is_array(), where, ": \"", field, "\" is not a list of messages");
  std::vector<ChatMessage> out;
  for (size_t i = 0; i < list.size(); ++i) {
    const nlohmann::json& m = list[i];
    const std::string at = where + ": \"" + field + "\"[" + std::to_string(i) + "]";
    LLMKIT_CHECK(m.is_object(), at, ": not a {\"role\", \"content\"} object");
    LLMKIT_CHECK(m.contains("role") && m["role"].is_string(), at, ": no string \"role\"");
    const std::string role = m["role"].get<std::string>();
    LLMKIT_CHECK(role == "system" || role == "user" || role == "assistant", at, ": role '", role,
                 "' is not system, user or assistant");
    LLMKIT_CHECK(m.contains("content") && m["content"].is_string(), at,
                 ": \"content\" is not a string");
    out.push_back({role, m["content"].get<std::string>()});
  }
  return out;
}

// Assistant turn i's tokens are the difference between the text up to it with the generation
// prompt (`before`) and the text up to its end (`with`); the text from the previous turn's end
// to `before` is prompt (system, user, markup). Each piece is encoded on its own, so the pieces'
// tokens never merge across a boundary and their labels are exact.
TokenizedTurns tokenize_turns(const Conversation& c, const ChatFormat& f) {
  check_format(f);
  const Escaped e = escape_messages(c.messages, *f.tok);
  const std::span<const ChatMessage> msgs(e.messages);
  TokenizedTurns out;
  SftExample& ex = out.ex;
  std::string done;  // the text encoded so far
  bool any = false;
  for (size_t i = 0; i < msgs.size(); ++i) {
    if (msgs[i].role != "assistant") continue;
    any = true;
    const std::string before = f.tpl.apply(msgs.first(i), true);
    std::string with = f.tpl.apply(msgs.first(i + 1), false);
    LLMKIT_CHECK(starts_with(before, done), "chat: messages[", i,
                 "] (assistant): the chat template renders the earlier turns differently once "
                 "more follow, so the text before this turn does not continue the text so far");
    LLMKIT_CHECK(starts_with(with, before), "chat: messages[", i,
                 "] (assistant): the chat template's text with the generation prompt is not a "
                 "prefix of its text with the answer, so the answer cannot be located");
    encode_rendered(std::string_view(before).substr(done.size()), *f.tok, e.literals, ex.ids);
    ex.labels.resize(ex.ids.size(), kIgnore);
    out.last_span_begin = static_cast<int64_t>(ex.ids.size());

    // The answer is learned up to and including its first end-of-turn token; what the template
    // writes after it ("\n" after <|im_end|>) is markup. No eos in the span: one is appended.
    std::vector<int32_t> span;
    encode_rendered(std::string_view(with).substr(before.size()), *f.tok, e.literals, span);
    const auto eos = std::find(span.begin(), span.end(), f.eos_id);
    const size_t n_labelled = static_cast<size_t>(eos - span.begin()) + (eos != span.end());
    for (size_t k = 0; k < span.size(); ++k) {
      ex.ids.push_back(span[k]);
      ex.labels.push_back(k < n_labelled ? span[k] : kIgnore);
    }
    if (eos == span.end()) {
      ex.ids.push_back(f.eos_id);
      ex.labels.push_back(f.eos_id);
    }
    done = std::move(with);
  }
  LLMKIT_CHECK(any, "chat: the conversation has no assistant turn");
  const size_t n = ex.ids.size();
  add_bos(f, ex.ids, &ex.labels);
  out.last_span_begin += static_cast<int64_t>(ex.ids.size() - n);
  return out;
}

}  // namespace detail

std::vector<Conversation> read_conversations(const std::string& path, int64_t limit) {
  std::vector<Conversation> out;
  detail::for_each_jsonl(path, limit, [&](const nlohmann::json& j, const std::string& where) {
    Conversation c;
    if (j.contains("messages")) {
      c.messages = detail::messages_from_json(j["messages"], "messages", where);
    } else if (j.contains("prompt") && j.contains("completion")) {
      const nlohmann::json &p = j["prompt"], &a = j["completion"];
      if (p.is_string() && a.is_string()) {
        c.messages = {{"user", p.get<std::string>()}, {"assistant", a.get<std::string>()}};
      } else {
        LLMKIT_CHECK(p.is_array() && a.is_array(), where,
                     ": \"prompt\" and \"completion\" must both be strings or both be message "
                     "lists");
        c.messages = detail::messages_from_json(p, "prompt", where);
        for (ChatMessage& m : detail::messages_from_json(a, "completion", where))
          c.messages.push_back(std::move(m));
      }
    } else {
      fail(where, ": neither {\"messages\": [...]} nor {\"prompt\": ..., \"completion\": ...}");
    }
    LLMKIT_CHECK(std::any_of(c.messages.begin(), c.messages.end(),
                             [](const ChatMessage& m) { return m.role == "assistant"; }),
                 where, ": no assistant turn");
    out.push_back(std::move(c));
  });
  LLMKIT_CHECK(!out.empty(), "data: '", path, "' holds no conversations");
  return out;
}

tokenizer::ChatTemplate plain_template(const std::string& eos_token) {
  // No trailing space after "Assistant:": the answer's first token carries its leading space
  // (" Paris"), as it would in running text, and is learned as part of the answer.
  return tokenizer::ChatTemplate(
      "{% for message in messages %}"
      "{% if message['role'] == 'system' %}{{ 'System: ' + message['content'] + '\\n' }}"
      "{% elif message['role'] == 'user' %}{{ 'User: ' + message['content'] + '\\n' }}"
      "{% elif message['role'] == 'assistant' %}"
      "{{ 'Assistant: ' + message['content'] + eos_token + '\\n' }}"
      "{% else %}{{ raise_exception('plain template: role ' + message['role'] + "
      "' is not system, user or assistant') }}{% endif %}"
      "{% endfor %}"
      "{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}",
      "", eos_token);
}

int64_t SftExample::assistant_tokens() const {
  return std::count_if(labels.begin(), labels.end(), [](int32_t l) { return l != kIgnore; });
}

SftExample tokenize_conversation(const Conversation& c, const ChatFormat& f, int64_t max_len) {
  SftExample ex = detail::tokenize_turns(c, f).ex;
  if (max_len > 0 && static_cast<int64_t>(ex.ids.size()) > max_len) {
    ex.ids.resize(static_cast<size_t>(max_len));
    ex.labels.resize(static_cast<size_t>(max_len));
  }
  return ex;
}

std::vector<int32_t> prompt_ids(std::span<const ChatMessage> messages, const ChatFormat& f) {
  check_format(f);
  if (!messages.empty() && messages.back().role == "assistant")
    messages = messages.first(messages.size() - 1);
  const Escaped e = escape_messages(messages, *f.tok);
  std::vector<int32_t> ids;
  encode_rendered(f.tpl.apply(e.messages, true), *f.tok, e.literals, ids);
  add_bos(f, ids, nullptr);
  return ids;
}

PackedRows pack_examples(std::span<const SftExample> examples, int64_t row_len, int32_t pad_id) {
  LLMKIT_CHECK(row_len > 0, "pack: row length ", row_len, " must be positive");
  const int64_t n = static_cast<int64_t>(examples.size());
  // First fit: each example goes to the first row with room for it. There are at most n rows;
  // a max-tree over their free room (unopened rows have all of it) finds that row in O(log n),
  // where scanning the open rows would be quadratic on a large data set. Opened rows stay a
  // prefix 0..rows-1 because the leftmost fitting row is taken.
  int64_t leaves = 1;
  while (leaves < std::max<int64_t>(n, 1)) leaves *= 2;
  std::vector<int64_t> room(static_cast<size_t>(2 * leaves), row_len);
  struct Place {
    int64_t row = -1, offset = 0, len = 0;
    int32_t segment = 0;
  };
  std::vector<Place> place(static_cast<size_t>(n));
  std::vector<int32_t> in_row(static_cast<size_t>(n), 0);
  PackedRows out;
  out.row_len = row_len;
  for (int64_t i = 0; i < n; ++i) {
    const SftExample& ex = examples[static_cast<size_t>(i)];
    LLMKIT_CHECK(ex.ids.size() == ex.labels.size(), "pack: example ", i, " has ", ex.ids.size(),
                 " ids but ", ex.labels.size(), " labels");
    const int64_t len = std::min<int64_t>(static_cast<int64_t>(ex.ids.size()), row_len);
    if (len == 0) continue;
    int64_t node = 1;
    if (static_cast<int64_t>(ex.ids.size()) > row_len) {
      node = leaves + out.rows;  // too long for any row: a fresh one of its own, cut
    } else {
      while (node < leaves)
        node = room[static_cast<size_t>(2 * node)] >= len ? 2 * node : 2 * node + 1;
    }
    const int64_t row = node - leaves;
    place[static_cast<size_t>(i)] = {row, row_len - room[static_cast<size_t>(node)], len,
                                     in_row[static_cast<size_t>(row)]++};
    room[static_cast<size_t>(node)] -= len;
    for (node /= 2; node >= 1; node /= 2)
      room[static_cast<size_t>(node)] =
          std::max(room[static_cast<size_t>(2 * node)], room[static_cast<size_t>(2 * node + 1)]);
    out.rows = std::max(out.rows, row + 1);
    ++out.examples;
    out.tokens += len;
  }
  const size_t size = static_cast<size_t>(out.rows * row_len);
  out.ids.assign(size, pad_id);
  out.labels.assign(size, kIgnore);
  out.segments.assign(size, -1);
  for (int64_t i = 0; i < n; ++i) {
    const Place& p = place[static_cast<size_t>(i)];
    if (p.row < 0) continue;
    const SftExample& ex = examples[static_cast<size_t>(i)];
    const size_t at = static_cast<size_t>(p.row * row_len + p.offset);
    std::copy_n(ex.ids.begin(), p.len, out.ids.begin() + static_cast<std::ptrdiff_t>(at));
    std::copy_n(ex.labels.begin(), p.len, out.labels.begin() + static_cast<std::ptrdiff_t>(at));
    std::fill_n(out.segments.begin() + static_cast<std::ptrdiff_t>(at), p.len, p.segment);
  }
  return out;
}

}  // namespace llmkit::data
