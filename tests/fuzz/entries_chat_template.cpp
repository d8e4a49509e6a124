// The fuzz entry of the chat-template interpreter (entries.h): a Jinja template, then after the
// first \0 byte an optional JSON of messages, rendered as apply_chat_template would. Only
// llmkit::Error may escape; the sanitizers, libFuzzer's -timeout and -rss_limit_mb catch the
// rest (a crash, undefined behaviour, a hang, a runaway allocation). Its own file so that it
// builds alone: the interpreter needs nothing of llmkit but the tokenizer's Jinja sources.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "llmkit/core/error.h"
#include "llmkit/tokenizer/chat_template.h"
#include "tests/fuzz/entries.h"

namespace llmkit::fuzz {

namespace {

// The messages of a chat_template input: its JSON after the first \0 byte, an array of
// {"role", "content"} objects or an object {"messages": [...], other variables...} whose other
// keys become apply's extra variables (tools, date_string, ...). No JSON: a fixed conversation.
void chat_inputs(std::string_view json, std::vector<tokenizer::ChatMessage>& messages,
                 nlohmann::json& extra) {
  messages = {{"system", "Be brief."}, {"user", "hi"}, {"assistant", "hello"}, {"user", "안녕?"}};
  extra = nlohmann::json::object();
  // Moved, never copied: nlohmann's copy recurses (a deeply nested input would overflow the
  // stack in the harness, not in the library).
  nlohmann::json j = nlohmann::json::parse(json, nullptr, false);
  if (j.is_discarded()) return;
  nlohmann::json list;
  if (j.is_object()) {
    extra = std::move(j);
    if (extra.contains("messages")) list = std::move(extra["messages"]);
    extra.erase("messages");
  } else {
    list = std::move(j);
  }
  if (!list.is_array()) return;
  messages.clear();
  auto text = [](const nlohmann::json& m, const char* key) -> std::string {
    if (!m.is_object() || !m.contains(key)) return "";
    const nlohmann::json& v = m[key];
    return v.is_string() ? v.get<std::string>() : v.dump();
  };
  for (const nlohmann::json& m : list) messages.push_back({text(m, "role"), text(m, "content")});
}

}  // namespace

void chat_template(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  const size_t cut = in.find('\0');
  std::optional<tokenizer::ChatTemplate> tpl;
  try {
    tpl.emplace(std::string(in.substr(0, cut)), "<s>", "</s>");
  } catch (const Error&) {
    return;
  }
  std::vector<tokenizer::ChatMessage> messages;
  nlohmann::json extra;
  chat_inputs(cut == std::string_view::npos ? "" : in.substr(cut + 1), messages, extra);
  // With and without the generation prompt, with the input's extras and (if any) without them.
  const nlohmann::json none = nlohmann::json::object();
  for (const bool gen : {false, true}) {
    for (const bool with_extra : {true, false}) {
      if (!with_extra && extra.empty()) continue;
      try {
        (void)tpl->apply(messages, gen, with_extra ? extra : none);
      } catch (const Error&) {
      }
    }
  }
}

}  // namespace llmkit::fuzz
