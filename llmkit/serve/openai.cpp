// serve/openai.h: OpenAI request bodies read with their types checked.
#include "llmkit/serve/openai.h"

#include <cmath>
#include <random>

namespace llmkit::serve {

using nlohmann::json;

void bad_request(const std::string& message, const std::string& param, const std::string& code) {
  throw ApiError(400, "invalid_request_error", message, param, code);
}

json error_body(const std::string& message, const std::string& type, const std::string& param,
                const std::string& code) {
  return {{"error",
           {{"message", message},
            {"type", type},
            {"param", param.empty() ? json(nullptr) : json(param)},
            {"code", code.empty() ? json(nullptr) : json(code)}}}};
}

json error_body(const ApiError& e) {
  return error_body(e.what(), e.type, e.param, e.code);
}

namespace {

json parse_object(std::string_view body) {
  json j;
  try {
    j = json::parse(body.begin(), body.end());
  } catch (const json::parse_error& e) {
    // nlohmann's message: "[json.exception.parse_error.101] parse error at line 1, column 3: ..."
    std::string what = e.what();
    const auto at = what.find("parse error");
    bad_request("malformed JSON at byte " + std::to_string(e.byte) + ": " +
                (at == std::string::npos ? what : what.substr(at)));
  }
  if (!j.is_object()) bad_request("the request body must be a JSON object");
  return j;
}

const char* type_name(const json& v) {
  return v.type_name();
}

// The field, or nullptr when absent or null (OpenAI treats null as absent).
const json* field(const json& j, const char* name) {
  auto it = j.find(name);
  return it == j.end() || it->is_null() ? nullptr : &*it;
}

double number(const json& j, const char* name, double def, double lo, double hi) {
  const json* v = field(j, name);
  if (v == nullptr) return def;
  if (!v->is_number())
    bad_request(std::string("'") + name + "' must be a number, got " + type_name(*v), name);
  const double x = v->get<double>();
  if (!std::isfinite(x) || x < lo || x > hi)
    bad_request(detail::concat("'", name, "' must be in [", lo, ", ", hi, "], got ", x), name);
  return x;
}

std::optional<int64_t> integer(const json& j, const char* name, int64_t lo, int64_t hi) {
  const json* v = field(j, name);
  if (v == nullptr) return std::nullopt;
  const bool whole = v->is_number_integer() ||
                     (v->is_number_float() && std::floor(v->get<double>()) == v->get<double>() &&
                      std::abs(v->get<double>()) < 9e15);
  if (!whole)
    bad_request(std::string("'") + name + "' must be an integer, got " + type_name(*v), name);
  const int64_t x =
      v->is_number_unsigned() && v->get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)
          ? INT64_MAX
          : (v->is_number_float() ? static_cast<int64_t>(v->get<double>()) : v->get<int64_t>());
  if (x < lo || x > hi)
    bad_request(detail::concat("'", name, "' must be in [", lo, ", ", hi, "], got ", x), name);
  return x;
}

bool boolean(const json& j, const char* name, bool def) {
  const json* v = field(j, name);
  if (v == nullptr) return def;
  if (!v->is_boolean())
    bad_request(std::string("'") + name + "' must be a boolean, got " + type_name(*v), name);
  return v->get<bool>();
}

std::string string_field(const json& j, const char* name) {
  const json* v = field(j, name);
  if (v == nullptr) return "";
  if (!v->is_string())
    bad_request(std::string("'") + name + "' must be a string, got " + type_name(*v), name);
  return v->get<std::string>();
}

GenerationFields generation_fields(const json& j, bool chat) {
  GenerationFields g;
  g.model = string_field(j, "model");
  g.max_tokens = integer(j, "max_completion_tokens", 1, INT64_MAX);
  if (!g.max_tokens) g.max_tokens = integer(j, "max_tokens", 1, INT64_MAX);
  g.temperature = number(j, "temperature", 1.0, 0, 2);
  g.top_p = number(j, "top_p", 1.0, 0, 1);
  if (g.top_p == 0) g.top_p = 1e-9;  // "only the most likely": keeps one token
  g.top_k = static_cast<int>(integer(j, "top_k", 0, 1 << 20).value_or(0));
  g.repetition_penalty = number(j, "repetition_penalty", 1.0, 1e-3, 10);
  g.frequency_penalty = number(j, "frequency_penalty", 0, -2, 2);
  g.presence_penalty = number(j, "presence_penalty", 0, -2, 2);
  if (const json* s = field(j, "stop")) {
    if (s->is_string()) {
      g.stop.push_back(s->get<std::string>());
    } else if (s->is_array()) {
      if (s->size() > 16) bad_request("'stop' takes at most 16 strings", "stop");
      for (const json& x : *s) {
        if (!x.is_string()) bad_request("'stop' must be a string or an array of strings", "stop");
        g.stop.push_back(x.get<std::string>());
      }
    } else {
      bad_request(
          std::string("'stop' must be a string or an array of strings, got ") + type_name(*s),
          "stop");
    }
  }
  if (const json* s = field(j, "seed")) {
    if (!s->is_number_integer())
      bad_request(std::string("'seed' must be an integer, got ") + type_name(*s), "seed");
    g.seed =
        s->is_number_unsigned() ? s->get<uint64_t>() : static_cast<uint64_t>(s->get<int64_t>());
  }
  g.n = static_cast<int>(integer(j, "n", 1, 128).value_or(1));
  g.stream = boolean(j, "stream", false);
  if (const json* o = field(j, "stream_options")) {
    if (!o->is_object())
      bad_request(std::string("'stream_options' must be an object, got ") + type_name(*o),
                  "stream_options");
    g.include_usage = boolean(*o, "include_usage", false);
  }
  if (chat) {
    const bool lp = boolean(j, "logprobs", false);
    const auto top = integer(j, "top_logprobs", 0, 20);
    if (top && !lp) bad_request("'top_logprobs' needs 'logprobs': true", "top_logprobs");
    g.logprobs = lp ? static_cast<int>(top.value_or(0)) : -1;
  } else {
    const auto lp = integer(j, "logprobs", 0, 5);
    g.logprobs = lp ? static_cast<int>(*lp) : -1;
  }
  return g;
}

// A message's content: a string, or an array of {"type": "text", "text": ...} parts.
std::string content_text(const json& c, size_t i) {
  const std::string where = "messages[" + std::to_string(i) + "].content";
  if (c.is_string()) return c.get<std::string>();
  if (!c.is_array()) bad_request("'" + where + "' must be a string or an array of parts", where);
  std::string out;
  for (const json& part : c) {
    if (!part.is_object() || part.value("type", "") != "text" || !part.contains("text") ||
        !part["text"].is_string())
      bad_request("'" + where + "': only parts of type 'text' are supported", where);
    out += part["text"].get<std::string>();
  }
  return out;
}

}  // namespace

ChatRequest parse_chat_request(std::string_view body) {
  const json j = parse_object(body);
  ChatRequest r;
  r.gen = generation_fields(j, true);
  const json* m = field(j, "messages");
  if (m == nullptr) bad_request("'messages' is required", "messages");
  if (!m->is_array() || m->empty())
    bad_request("'messages' must be a non-empty array of {role, content}", "messages");
  for (size_t i = 0; i < m->size(); ++i) {
    const json& msg = (*m)[i];
    const std::string where = "messages[" + std::to_string(i) + "]";
    if (!msg.is_object()) bad_request("'" + where + "' must be an object", where);
    const json* role = field(msg, "role");
    if (role == nullptr || !role->is_string())
      bad_request("'" + where + ".role' must be a string", where + ".role");
    std::string rs = role->get<std::string>();
    if (rs == "developer") rs = "system";  // OpenAI's newer name for the system role
    if (rs != "system" && rs != "user" && rs != "assistant")
      bad_request("'" + where + ".role' must be system, user or assistant, got '" + rs + "'",
                  where + ".role");
    const json* c = field(msg, "content");
    std::string text;
    if (c != nullptr)
      text = content_text(*c, i);
    else if (rs != "assistant")
      bad_request("'" + where + ".content' is required", where + ".content");
    r.messages.push_back({rs, std::move(text)});
  }
  if (const json* rag = field(j, "rag")) {
    if (!rag->is_boolean())
      bad_request(std::string("'rag' must be a boolean, got ") + type_name(*rag), "rag");
    r.rag = rag->get<bool>();
  }
  return r;
}

CompletionRequest parse_completion_request(std::string_view body) {
  const json j = parse_object(body);
  CompletionRequest r;
  r.gen = generation_fields(j, false);
  const json* p = field(j, "prompt");
  if (p == nullptr) bad_request("'prompt' is required", "prompt");
  if (p->is_array() && p->size() == 1 && (*p)[0].is_string()) {
    r.prompt = (*p)[0].get<std::string>();
  } else if (p->is_string()) {
    r.prompt = p->get<std::string>();
  } else {
    bad_request("'prompt' must be a string (one prompt per request)", "prompt");
  }
  if (boolean(j, "echo", false)) bad_request("'echo' is not supported", "echo");
  return r;
}

EmbeddingRequest parse_embedding_request(std::string_view body) {
  const json j = parse_object(body);
  EmbeddingRequest r;
  r.model = string_field(j, "model");
  const json* in = field(j, "input");
  if (in == nullptr) bad_request("'input' is required", "input");
  if (in->is_string()) {
    r.input.push_back(in->get<std::string>());
    r.input_was_string = true;
  } else if (in->is_array() && !in->empty()) {
    if (in->size() > 2048) bad_request("'input' takes at most 2048 strings", "input");
    for (const json& x : *in) {
      if (!x.is_string())
        bad_request(
            "'input' must be a string or an array of strings (token arrays are not "
            "supported)",
            "input");
      r.input.push_back(x.get<std::string>());
    }
  } else {
    bad_request("'input' must be a string or a non-empty array of strings", "input");
  }
  for (const auto& s : r.input)
    if (s.empty()) bad_request("'input' must not contain empty strings", "input");
  const std::string format = string_field(j, "encoding_format");
  if (!format.empty() && format != "float" && format != "base64")
    bad_request("'encoding_format' must be 'float' or 'base64', got '" + format + "'",
                "encoding_format");
  r.base64 = format == "base64";
  return r;
}

bool valid_utf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    for (size_t k = 1; k < n; ++k)
      if ((static_cast<unsigned char>(s[i + k]) >> 6) != 2) return false;
    i += n;
  }
  return true;
}

std::string new_id(const std::string& prefix) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  static const char* hex = "0123456789abcdef";
  std::string id = prefix;
  for (int i = 0; i < 24; ++i) id += hex[rng() & 15];
  return id;
}

}  // namespace llmkit::serve
