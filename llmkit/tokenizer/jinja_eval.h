// The evaluator of the chat-template Jinja subset: walks a parsed Template (jinja_ast.h) and
// writes its output. Scopes follow jinja2: `for` bodies and macros get their own scope (a `set`
// inside a loop does not leak out; namespace() objects carry state across iterations), `if` does
// not. Globals: range, dict, namespace, raise_exception, strftime_now (the two transformers adds).
// Errors are llmkit::Error "chat template line N: ..." (jinja2's wording after the colon);
// raise_exception('msg') is llmkit::Error "chat template: msg". Not here: parsing, autoescape.
#pragma once

#include <string>

#include "llmkit/tokenizer/jinja_ast.h"

namespace llmkit::tokenizer::jinja {

// Renders `tpl` with `variables` (e.g. messages, add_generation_prompt, bos_token) in scope.
// Thread-safe for distinct calls: the template is only read.
std::string render(const Template& tpl, const Dict& variables);

}  // namespace llmkit::tokenizer::jinja
