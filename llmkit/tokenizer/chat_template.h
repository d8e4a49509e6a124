// Chat templates: the Jinja template a Hugging Face model ships (tokenizer_config.json's
// "chat_template", GGUF's tokenizer.chat_template) turned into the prompt text for a list of
// messages, byte for byte as transformers' apply_chat_template renders it (jinja2 sandbox with
// trim_blocks, lstrip_blocks, loop controls, its tojson, raise_exception and strftime_now). The
// Jinja subset it implements is documented in docs/chat-templates.md; a template outside it is
// refused when constructed, with the construct and its line. Not here: tokenizing the result.
#pragma once

#include <memory>
#include <span>
#include <string>

#include <nlohmann/json.hpp>

namespace llmkit::tokenizer {

namespace jinja {
struct Template;
}

struct ChatMessage {
  std::string role, content;
};

class ChatTemplate {
 public:
  // Parses the template; an unsupported construct is an llmkit::Error naming it and its line
  // ("chat template line 3: {% include %} is not supported"). bos/eos fill bos_token/eos_token.
  explicit ChatTemplate(std::string source, std::string bos_token = "", std::string eos_token = "");

  // Renders messages (+ add_generation_prompt, + extra variables such as tools or date_string;
  // an extra key overrides the one of the same name). As in apply_chat_template, `tools` and
  // `documents` are None unless extra gives them. raise_exception('msg') in the template ->
  // llmkit::Error("chat template: msg"); other render errors -> "chat template line N: ...".
  // Thread-safe: the parsed template is only read.
  std::string apply(std::span<const ChatMessage> messages, bool add_generation_prompt,
                    const nlohmann::json& extra = nlohmann::json::object()) const;

  // The plain ChatML template (<|im_start|>role\ncontent<|im_end|>\n, then
  // <|im_start|>assistant\n for the generation prompt).
  static ChatTemplate chatml();

  const std::string& source() const { return source_; }
  const std::string& bos_token() const { return bos_token_; }
  const std::string& eos_token() const { return eos_token_; }

 private:
  std::string source_, bos_token_, eos_token_;
  std::shared_ptr<const jinja::Template> tpl_;
};

// The chat template of a Hugging Face tokenizer_config.json: "chat_template" (a string, or a
// list of {"name", "template"} objects from which "default" is taken), with "bos_token" and
// "eos_token" (strings, {"content": ...} objects, or absent/null). A missing template or a wrong
// type is an llmkit::Error naming `name` (the file) and the field.
ChatTemplate chat_template_from_config(const nlohmann::json& config,
                                       const std::string& name = "tokenizer_config.json");

}  // namespace llmkit::tokenizer
