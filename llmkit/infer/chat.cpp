// Chat transcripts, fitting them to the context, and streaming replies without stop strings
// (see chat.h).
#include "llmkit/infer/chat.h"

#include <algorithm>

#include "llmkit/core/error.h"
#include "llmkit/tokenizer/unicode.h"

namespace llmkit::infer {
namespace {

constexpr std::string_view kSpace = " \t\r\n\v\f";

// Removes \r from every line end, then whitespace from both ends: after this no line ends in
// \r and the text neither starts nor ends with whitespace, so rendering and parsing again gives
// the same text back. `keep_indent` (the preamble) removes only leading blank lines: trimming
// the indent of "  User: x" would turn the preamble's first line into a turn when read back.
std::string normalise(std::string_view text, bool keep_indent = false) {
  std::string out;
  out.reserve(text.size());
  size_t pos = 0;
  while (true) {
    const size_t nl = std::min(text.find('\n', pos), text.size());
    std::string_view line = text.substr(pos, nl - pos);
    while (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    out.append(line);
    if (nl == text.size()) break;
    out += '\n';
    pos = nl + 1;
  }
  size_t begin = out.find_first_not_of(kSpace);
  if (begin == std::string::npos) return {};
  if (keep_indent) {
    const size_t nl = out.rfind('\n', begin);
    begin = nl == std::string::npos ? 0 : nl + 1;
  }
  return out.substr(begin, out.find_last_not_of(kSpace) + 1 - begin);
}

// Whether `line` opens a turn ("User: ..." / "Assistant: ..."); `rest` is what follows the ':'.
bool label_line(std::string_view line, Role& role, std::string_view& rest) {
  for (const Role r : {Role::kUser, Role::kAssistant}) {
    const std::string label = std::string(role_label(r)) + ":";
    if (line.starts_with(label)) {
      role = r;
      rest = line.substr(label.size());
      return true;
    }
  }
  return false;
}

}  // namespace

const char* role_label(Role role) {
  return role == Role::kUser ? "User" : "Assistant";
}

void Conversation::add(Role role, std::string_view text) {
  turns.push_back({role, normalise(text)});
}

std::string Conversation::render(size_t first) const {
  std::string out;
  if (!preamble.empty()) out += preamble + "\n\n";
  for (size_t i = first; i < turns.size(); ++i) {
    out += role_label(turns[i].role);
    out += turns[i].text.empty() ? ":" : ": ";
    out += turns[i].text + "\n";
  }
  return out;
}

std::string Conversation::prompt(size_t first) const {
  return render(first) + role_label(Role::kAssistant) + ":";
}

Conversation parse_transcript(std::string_view text, const std::string& name) {
  const int64_t bad = tokenizer::utf8_find_invalid(text);
  if (bad >= 0) {
    const auto line = 1 + std::count(text.begin(), text.begin() + bad, '\n');
    fail(name, ": invalid UTF-8 at line ", line, " (byte offset ", bad, ")");
  }
  Conversation c;
  std::string block;  // the preamble or the open turn's text, lines joined with \n
  bool in_turn = false;
  Role role = Role::kUser;
  auto close = [&] {
    if (in_turn) {
      c.add(role, block);
    } else {
      c.preamble = normalise(block, /*keep_indent=*/true);
    }
  };
  size_t pos = 0;
  while (true) {
    const size_t nl = std::min(text.find('\n', pos), text.size());
    const std::string_view line = text.substr(pos, nl - pos);
    Role r;
    std::string_view rest;
    if (label_line(line, r, rest)) {
      close();
      in_turn = true;
      role = r;
      block.assign(rest);
    } else {
      block.append("\n").append(line);  // a leading \n is trimmed by normalise
    }
    if (nl == text.size()) break;
    pos = nl + 1;
  }
  close();
  return c;
}

namespace {

// Binary search for the smallest k in [lo, hi] with fits(k, prompt) true, where fits(hi) holds
// and `best` is its prompt: fits is monotone, the prompt shrinking as more turns are dropped.
template <class Prompt, class Fits>
Prompt fewest_dropped(size_t lo, size_t hi, Prompt best, const Fits& fits) {
  Prompt trial;
  while (lo < hi) {
    const size_t mid = lo + (hi - lo) / 2;
    if (fits(mid, trial)) {
      hi = mid;
      best = std::move(trial);
    } else {
      lo = mid + 1;
    }
  }
  return best;
}

}  // namespace

ChatPrompt fit_prompt(const Conversation& conversation, const tokenizer::Tokenizer& tok,
                      int64_t budget) {
  LLMKIT_CHECK(!conversation.turns.empty(), "chat: the conversation has no turn to answer");
  auto fits = [&](size_t first, ChatPrompt& out) {
    out = {tok.encode(conversation.prompt(first)), first};
    return static_cast<int64_t>(out.ids.size()) <= budget;
  };
  ChatPrompt best;
  if (fits(0, best)) return best;  // the usual case: everything fits
  const size_t last = conversation.turns.size() - 1;
  if (!fits(last, best)) {
    fail("chat: the new message needs ", best.ids.size(), " tokens",
         conversation.preamble.empty() ? "" : " with the preamble", " but only ", budget,
         " fit (the model's context less the room kept for the reply); shorten it");
  }
  // The fewest dropped turns that fit: prompt length shrinks as `first` grows (up to BPE merges
  // at a turn boundary, which can only make the answer one turn more conservative).
  return fewest_dropped(1, last, std::move(best), fits);
}

std::vector<std::string> chat_stop_strings() {
  return {std::string("\n") + role_label(Role::kUser) + ":",
          std::string("\n") + role_label(Role::kAssistant) + ":", "\n\n"};
}

namespace {

// Streams generated ids as text: stops at stop ids (GenerateOptions) and hides stop strings.
std::string stream_reply(Decoder& decoder, const tokenizer::Tokenizer& tok,
                         std::span<const int32_t> prompt, const GenerateOptions& opt,
                         std::vector<std::string> stops,
                         const std::function<void(std::string_view)>& on_text,
                         GenerateStats* stats) {
  std::string reply;
  StopMatcher matcher(std::move(stops));
  TokenTextStream stream(tok);
  auto show = [&](const std::string& s) {
    if (s.empty()) return;
    reply += s;
    if (on_text) on_text(s);
  };
  GenerateOptions gen = opt;
  gen.stop_strings.clear();  // the matcher handles them, holding back partial ones
  generate_ids(
      decoder, prompt, gen,
      [&](int32_t id) {
        show(matcher.push(stream.push(id)));
        return !matcher.stopped();
      },
      stats);
  show(matcher.push(stream.finish()));
  show(matcher.finish());
  return reply;
}

}  // namespace

std::string chat_reply(Decoder& decoder, const tokenizer::Tokenizer& tok,
                       Conversation& conversation, std::string_view question,
                       const GenerateOptions& opt,
                       const std::function<void(std::string_view)>& on_text, ChatReplyInfo* info,
                       int64_t unbounded_context) {
  const int64_t ctx = decoder.context() > 0 ? decoder.context() : unbounded_context;
  // Room for the reply, but never more than half the context: a small model with the default
  // --max-new-tokens would otherwise have no room for the question.
  const int64_t room = std::max<int64_t>(1, std::min(opt.max_new_tokens, ctx / 2));
  conversation.add(Role::kUser, question);
  std::string reply;
  ChatReplyInfo out;
  try {
    const ChatPrompt prompt = fit_prompt(conversation, tok, ctx - room);
    out.dropped_turns = prompt.first_turn;
    std::vector<std::string> stops = chat_stop_strings();
    stops.insert(stops.end(), opt.stop_strings.begin(), opt.stop_strings.end());
    reply = stream_reply(decoder, tok, prompt.ids, opt, std::move(stops), on_text, &out.stats);
  } catch (...) {
    conversation.turns.pop_back();  // leave the conversation as it was
    throw;
  }
  conversation.add(Role::kAssistant, reply);
  if (info) *info = out;
  return reply;
}

namespace {

// The history with the messages in [system_end, first) left out.
std::vector<tokenizer::ChatMessage> without(std::span<const tokenizer::ChatMessage> history,
                                            size_t system_end, size_t first) {
  std::vector<tokenizer::ChatMessage> out(history.begin(), history.begin() + system_end);
  out.insert(out.end(), history.begin() + first, history.end());
  return out;
}

}  // namespace

TemplatePrompt fit_template_prompt(const tokenizer::ChatTemplate& tpl,
                                   std::span<const tokenizer::ChatMessage> history,
                                   const tokenizer::Tokenizer& tok, int64_t budget) {
  LLMKIT_CHECK(!history.empty(), "chat: the conversation has no message to answer");
  tokenizer::EncodeOptions special;
  special.allow_special = true;
  size_t system_end = 0;
  while (system_end < history.size() && history[system_end].role == "system") ++system_end;
  // Where a whole turn can start: a user message (the last one is the new question).
  std::vector<size_t> starts;
  for (size_t i = system_end; i < history.size(); ++i)
    if (history[i].role == "user" || i == system_end) starts.push_back(i);
  auto fits = [&](size_t k, TemplatePrompt& out) {
    const auto kept = without(history, system_end, starts[k]);
    out = {tok.encode(tpl.apply(kept, true), special), starts[k]};
    return static_cast<int64_t>(out.ids.size()) <= budget;
  };
  TemplatePrompt best;
  if (starts.empty() || fits(0, best)) {
    if (starts.empty()) best = {tok.encode(tpl.apply(history, true), special), history.size()};
    return best;
  }
  const size_t last = starts.size() - 1;
  if (!fits(last, best)) {
    fail("chat: the new message needs ", best.ids.size(), " tokens",
         system_end ? " with the system message" : "", " but only ", budget,
         " fit (the model's context less the room kept for the reply); shorten it");
  }
  return fewest_dropped(1, last, std::move(best), fits);
}

std::vector<int32_t> end_of_turn_ids(const tokenizer::ChatTemplate& tpl,
                                     const tokenizer::Tokenizer& tok) {
  std::vector<int32_t> ids;
  if (!tpl.eos_token().empty())
    if (auto id = tok.find_token(tpl.eos_token())) ids.push_back(*id);
  // What the template writes right after an assistant message, up to the next special token.
  const std::string marker = "llmkit-probe-reply";
  std::string text;
  try {
    const std::vector<tokenizer::ChatMessage> probe = {{"user", "hi"}, {"assistant", marker}};
    text = tpl.apply(probe, false);
  } catch (const Error&) {
    return ids;  // a template that refuses the probe: the eos token only
  }
  const size_t at = text.rfind(marker);
  if (at == std::string::npos) return ids;
  std::string_view after = std::string_view(text).substr(at + marker.size());
  while (!after.empty() &&
         std::string_view(" \t\r\n").find(after.front()) != std::string_view::npos)
    after.remove_prefix(1);
  std::string best;
  for (const std::string& s : tok.special_tokens())
    if (!s.empty() && after.starts_with(s) && s.size() > best.size()) best = s;
  if (!best.empty()) {
    const int32_t id = tok.token_to_id(best);
    if (std::find(ids.begin(), ids.end(), id) == ids.end()) ids.push_back(id);
  }
  return ids;
}

std::string template_chat_reply(Decoder& decoder, const tokenizer::Tokenizer& tok,
                                const tokenizer::ChatTemplate& tpl,
                                std::vector<tokenizer::ChatMessage>& history,
                                std::string_view question, const GenerateOptions& opt,
                                const std::function<void(std::string_view)>& on_text,
                                ChatReplyInfo* info, int64_t unbounded_context) {
  const int64_t ctx = decoder.context() > 0 ? decoder.context() : unbounded_context;
  const int64_t room = std::max<int64_t>(1, std::min(opt.max_new_tokens, ctx / 2));
  history.push_back({"user", std::string(question)});
  std::string reply;
  ChatReplyInfo out;
  try {
    const TemplatePrompt prompt = fit_template_prompt(tpl, history, tok, ctx - room);
    size_t system_end = 0;
    while (system_end < history.size() && history[system_end].role == "system") ++system_end;
    out.dropped_turns = static_cast<size_t>(
        std::count_if(history.begin() + system_end, history.begin() + prompt.first_message,
                      [](const tokenizer::ChatMessage& m) { return m.role == "user"; }));
    GenerateOptions gen = opt;
    for (int32_t id : end_of_turn_ids(tpl, tok))
      if (std::find(gen.stop_ids.begin(), gen.stop_ids.end(), id) == gen.stop_ids.end())
        gen.stop_ids.push_back(id);
    reply = stream_reply(decoder, tok, prompt.ids, gen, opt.stop_strings, on_text, &out.stats);
  } catch (...) {
    history.pop_back();  // leave the history as it was
    throw;
  }
  history.push_back({"assistant", reply});
  if (info) *info = out;
  return reply;
}

}  // namespace llmkit::infer
