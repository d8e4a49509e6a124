// The lexer of the chat-template Jinja subset: splits a template into text and the tokens inside
// {{ }} and {% %} exactly as jinja2's Lexer does with the settings transformers uses
// (trim_blocks, lstrip_blocks, keep_trailing_newline off, '-'/'+' whitespace control). Comments
// are dropped and {% raw %} blocks become text. Not here: line statements, custom delimiters.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace llmkit::tokenizer::jinja {

enum class TokenKind {
  kText,        // template text between tags (newlines normalised to \n)
  kVarBegin,    // {{
  kVarEnd,      // }}
  kBlockBegin,  // {%
  kBlockEnd,    // %}
  kName,
  kString,  // text holds the unescaped value
  kInteger,
  kFloat,
  kOperator,  // text holds the operator: + - * / // % ** ~ == != < <= > >= = . : | , ( ) [ ] { }
  kEnd,
};

struct Token {
  TokenKind kind = TokenKind::kEnd;
  std::string text;
  int line = 1;
  int64_t integer = 0;
  double number = 0;
};

// Errors (an unclosed tag or string, a stray character) are llmkit::Error
// "chat template line N: ...".
std::vector<Token> tokenize(std::string_view source);

}  // namespace llmkit::tokenizer::jinja
