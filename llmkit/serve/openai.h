// The OpenAI API's request bodies and error shape, as llmkit serve reads and writes them: the
// fields of /v1/chat/completions, /v1/completions and /v1/embeddings are checked for type and
// range here, each problem an ApiError that names the field (OpenAI's `param`) and carries the
// HTTP status, so a client gets {"error": {"message", "type", "param", "code"}} with 400 rather
// than a generic failure. Unknown fields are ignored, as OpenAI-compatible servers do.
// Not here: generation (scheduler.h), HTTP (server.h).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "llmkit/core/error.h"
#include "llmkit/tokenizer/chat_template.h"

namespace llmkit::serve {

// An error with an HTTP status and OpenAI's error fields.
struct ApiError : Error {
  int status;
  std::string type, param, code;  // param and code may be empty (JSON null)
  ApiError(int status, std::string type, const std::string& message, std::string param = "",
           std::string code = "")
      : Error(message),
        status(status),
        type(std::move(type)),
        param(std::move(param)),
        code(std::move(code)) {}
};

// 400 invalid_request_error naming `param`.
[[noreturn]] void bad_request(const std::string& message, const std::string& param = "",
                              const std::string& code = "");

// {"error": {"message", "type", "param", "code"}} (null for an empty param or code).
nlohmann::json error_body(const std::string& message, const std::string& type,
                          const std::string& param = "", const std::string& code = "");
nlohmann::json error_body(const ApiError& e);

// Generation fields common to chat and text completions.
struct GenerationFields {
  std::string model;                  // empty: the served model
  std::optional<int64_t> max_tokens;  // max_tokens or max_completion_tokens
  double temperature = 1.0;           // OpenAI's default
  double top_p = 1.0;
  int top_k = 0;                    // extension (llama.cpp's server has it too)
  double repetition_penalty = 1.0;  // extension
  double frequency_penalty = 0;     // over the reply's tokens so far, as OpenAI
  double presence_penalty = 0;
  std::vector<std::string> stop;
  std::optional<uint64_t> seed;
  int n = 1;
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
  int logprobs = -1;           // -1: none; else the number of top alternatives per token
};

struct ChatRequest {
  GenerationFields gen;
  std::vector<tokenizer::ChatMessage> messages;
  std::optional<bool> rag;  // extension: answer from the --db knowledge base (default: yes)
};

struct CompletionRequest {
  GenerationFields gen;
  std::string prompt;
};

struct EmbeddingRequest {
  std::string model;
  std::vector<std::string> input;
  bool input_was_string = false;
  bool base64 = false;  // encoding_format "base64": float32 little-endian bytes
};

// Parse a request body (a JSON object). Errors: ApiError 400 for malformed JSON ("malformed JSON
// at byte N: ..."), a body that is not an object, a field of the wrong type or out of range.
ChatRequest parse_chat_request(std::string_view body);
CompletionRequest parse_completion_request(std::string_view body);
EmbeddingRequest parse_embedding_request(std::string_view body);

// Whether every byte sequence of `s` is valid UTF-8 (JSON strings arrive as UTF-8; a token's
// bytes may not be).
bool valid_utf8(std::string_view s);

// "chatcmpl-" + 24 random hex digits.
std::string new_id(const std::string& prefix);

}  // namespace llmkit::serve
