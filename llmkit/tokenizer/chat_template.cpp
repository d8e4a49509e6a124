// Chat templates (see chat_template.h): parse once with the Jinja subset, render per call with
// the variables apply_chat_template passes (messages, add_generation_prompt, bos_token,
// eos_token, tools and documents as None, then the caller's extras).
#include "llmkit/tokenizer/chat_template.h"

#include "llmkit/core/error.h"
#include "llmkit/tokenizer/jinja_eval.h"
#include "llmkit/tokenizer/jinja_parser.h"

namespace llmkit::tokenizer {

ChatTemplate::ChatTemplate(std::string source, std::string bos_token, std::string eos_token)
    : source_(std::move(source)),
      bos_token_(std::move(bos_token)),
      eos_token_(std::move(eos_token)),
      tpl_(std::make_shared<const jinja::Template>(jinja::parse(source_))) {}

std::string ChatTemplate::apply(std::span<const ChatMessage> messages, bool add_generation_prompt,
                                const nlohmann::json& extra) const {
  using jinja::Value;
  LLMKIT_CHECK(extra.is_object(), "chat template: extra variables must be a JSON object, not ",
               extra.type_name());
  jinja::List list;
  for (const ChatMessage& m : messages) {
    jinja::Dict d;
    d.set("role", Value::string(m.role));
    d.set("content", Value::string(m.content));
    list.push_back(Value::dict(std::move(d)));
  }
  jinja::Dict vars;
  vars.set("messages", Value::list(std::move(list)));
  vars.set("add_generation_prompt", Value::boolean(add_generation_prompt));
  vars.set("bos_token", Value::string(bos_token_));
  vars.set("eos_token", Value::string(eos_token_));
  // apply_chat_template always passes these two (None when absent): `tools is defined` is true.
  vars.set("tools", Value::none());
  vars.set("documents", Value::none());
  for (const auto& [k, v] : extra.items()) vars.set(k, jinja::from_json(v));
  return jinja::render(*tpl_, vars);
}

ChatTemplate ChatTemplate::chatml() {
  return ChatTemplate(
      "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + "
      "message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}"
      "{{ '<|im_start|>assistant\\n' }}{% endif %}");
}

namespace {

std::string special_token(const nlohmann::json& config, const char* field,
                          const std::string& name) {
  if (!config.contains(field) || config[field].is_null()) return "";
  const nlohmann::json& t = config[field];
  if (t.is_string()) return t.get<std::string>();
  if (t.is_object() && t.contains("content") && t["content"].is_string())
    return t["content"].get<std::string>();
  fail(name, ": \"", field, "\" must be a string or an object with a \"content\" string");
}

}  // namespace

ChatTemplate chat_template_from_config(const nlohmann::json& config, const std::string& name) {
  LLMKIT_CHECK(config.is_object(), name, ": expected a JSON object");
  if (!config.contains("chat_template") || config["chat_template"].is_null())
    fail(name, ": no \"chat_template\" (the model has no chat template; pass one)");
  const nlohmann::json& t = config["chat_template"];
  std::string source;
  if (t.is_string()) {
    source = t.get<std::string>();
  } else if (t.is_array()) {
    for (const auto& entry : t)
      if (entry.is_object() && entry.value("name", "") == "default" && entry.contains("template") &&
          entry["template"].is_string())
        source = entry["template"].get<std::string>();
    if (source.empty())
      fail(name,
           ": \"chat_template\" is a list without a {\"name\": \"default\", \"template\": ...} "
           "entry");
  } else {
    fail(name, ": \"chat_template\" must be a string or a list of named templates");
  }
  return ChatTemplate(std::move(source), special_token(config, "bos_token", name),
                      special_token(config, "eos_token", name));
}

}  // namespace llmkit::tokenizer
