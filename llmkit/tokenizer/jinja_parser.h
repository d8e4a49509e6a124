// The parser of the chat-template Jinja subset: tokens (jinja_lexer.h) -> syntax tree
// (jinja_ast.h), following jinja2/parser.py's grammar and operator precedence. Statements outside
// the subset ({% include %}, {% extends %}, {% block %}, {% import %}, {% with %}, ...) and unknown
// filters or tests are refused here, before anything renders, with an llmkit::Error naming the
// construct and its line ("chat template line 3: {% include %} is not supported").
#pragma once

#include <string_view>

#include "llmkit/tokenizer/jinja_ast.h"

namespace llmkit::tokenizer::jinja {

Template parse(std::string_view source);

}  // namespace llmkit::tokenizer::jinja
