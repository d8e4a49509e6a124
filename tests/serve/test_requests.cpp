// The server's pieces that need no model: OpenAI request parsing (types, ranges, the field named
// in the error), the error body, Prometheus histograms, API-key comparison, static paths.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "common/temp_dir.h"
#include "llmkit/serve/metrics.h"
#include "llmkit/serve/openai.h"
#include "llmkit/serve/scheduler.h"
#include "llmkit/serve/server.h"

using namespace llmkit;
using namespace llmkit::serve;

namespace {

// The ApiError a parse raises (status, param, message), or status 0 when none.
template <class F>
ApiError error_of(F&& f) {
  try {
    f();
  } catch (const ApiError& e) {
    return e;
  }
  return ApiError(0, "", "no error");
}

}  // namespace

TEST(Requests, ChatFieldsAreRead) {
  const auto r = parse_chat_request(R"({"model": "m", "messages": [
      {"role": "system", "content": "be brief"},
      {"role": "user", "content": [{"type": "text", "text": "안녕"}, {"type": "text", "text": "!"}]},
      {"role": "assistant", "content": null}, {"role": "developer", "content": "x"}],
      "max_tokens": 12, "temperature": 0.5, "top_p": 0.9, "stop": ["\n\n", "END"], "seed": 7,
      "n": 2, "stream": true, "stream_options": {"include_usage": true}, "logprobs": true,
      "top_logprobs": 3, "rag": false, "unknown_field": {"ignored": 1}})");
  EXPECT_EQ(r.gen.model, "m");
  ASSERT_EQ(r.messages.size(), 4u);
  EXPECT_EQ(r.messages[1].content, "안녕!");
  EXPECT_EQ(r.messages[2].content, "");
  EXPECT_EQ(r.messages[3].role, "system");
  EXPECT_EQ(r.gen.max_tokens, 12);
  EXPECT_DOUBLE_EQ(r.gen.temperature, 0.5);
  EXPECT_EQ(r.gen.stop, (std::vector<std::string>{"\n\n", "END"}));
  EXPECT_EQ(r.gen.seed, 7u);
  EXPECT_EQ(r.gen.n, 2);
  EXPECT_TRUE(r.gen.stream);
  EXPECT_TRUE(r.gen.include_usage);
  EXPECT_EQ(r.gen.logprobs, 3);
  EXPECT_EQ(r.rag, false);
  // Defaults: OpenAI's temperature 1, no logprobs; max_completion_tokens is max_tokens' newer name.
  const auto d = parse_chat_request(
      R"({"messages": [{"role": "user", "content": "hi"}], "max_completion_tokens": 3})");
  EXPECT_DOUBLE_EQ(d.gen.temperature, 1.0);
  EXPECT_EQ(d.gen.logprobs, -1);
  EXPECT_EQ(d.gen.max_tokens, 3);
  EXPECT_FALSE(d.rag.has_value());
}

TEST(Requests, BadFieldsNameTheField) {
  const std::pair<const char*, const char*> cases[] = {
      {R"({"messages": [{"role": "user", "content": "x"}], "temperature": "hot"})", "temperature"},
      {R"({"messages": [{"role": "user", "content": "x"}], "temperature": 3})", "temperature"},
      {R"({"messages": [{"role": "user", "content": "x"}], "max_tokens": 0})", "max_tokens"},
      {R"({"messages": [{"role": "user", "content": "x"}], "max_tokens": 1.5})", "max_tokens"},
      {R"({"messages": [{"role": "user", "content": "x"}], "n": 0})", "n"},
      {R"({"messages": [{"role": "user", "content": "x"}], "stop": 5})", "stop"},
      {R"({"messages": [{"role": "user", "content": "x"}], "stream": "yes"})", "stream"},
      {R"({"messages": [{"role": "user", "content": "x"}], "top_logprobs": 2})", "top_logprobs"},
      {R"({"messages": [{"role": "user", "content": "x"}], "seed": "a"})", "seed"},
      {R"({"messages": []})", "messages"},
      {R"({"model": "m"})", "messages"},
      {R"({"messages": [{"role": "robot", "content": "x"}]})", "messages[0].role"},
      {R"({"messages": [{"role": "user"}]})", "messages[0].content"},
      {R"({"messages": [{"role": "user", "content": [{"type": "image_url"}]}]})",
       "messages[0].content"},
  };
  for (const auto& [body, param] : cases) {
    const ApiError e = error_of([&] { parse_chat_request(body); });
    EXPECT_EQ(e.status, 400) << body;
    EXPECT_EQ(e.param, param) << body << ": " << e.what();
    EXPECT_EQ(e.type, "invalid_request_error");
  }
  const ApiError bad = error_of([] { parse_chat_request("{\"messages\": [}"); });
  EXPECT_EQ(bad.status, 400);
  EXPECT_EQ(std::string(bad.what()).rfind("malformed JSON at byte", 0), 0u) << bad.what();
  EXPECT_EQ(error_of([] { parse_chat_request("[1, 2]"); }).status, 400);
}

TEST(Requests, CompletionAndEmbeddingBodies) {
  const auto c =
      parse_completion_request(R"({"prompt": ["Once"], "logprobs": 2, "max_tokens": 4})");
  EXPECT_EQ(c.prompt, "Once");
  EXPECT_EQ(c.gen.logprobs, 2);
  EXPECT_EQ(error_of([] { parse_completion_request(R"({"prompt": ["a", "b"]})"); }).param,
            "prompt");
  EXPECT_EQ(error_of([] { parse_completion_request(R"({"prompt": "a", "logprobs": 9})"); }).param,
            "logprobs");
  EXPECT_EQ(error_of([] { parse_completion_request(R"({"prompt": "a", "echo": true})"); }).param,
            "echo");
  const auto one = parse_embedding_request(R"({"input": "a cat"})");
  EXPECT_TRUE(one.input_was_string);
  EXPECT_EQ(one.input, std::vector<std::string>{"a cat"});
  const auto many = parse_embedding_request(R"({"input": ["a", "b"], "model": "e"})");
  EXPECT_EQ(many.input.size(), 2u);
  EXPECT_EQ(many.model, "e");
  for (const char* body : {R"({"input": [1, 2]})", R"({"input": []})", R"({"input": [""]})",
                           R"({})", R"({"input": "a", "encoding_format": "int8"})"})
    EXPECT_EQ(error_of([&] { parse_embedding_request(body); }).status, 400) << body;
}

TEST(Requests, ErrorBodyHasOpenAIsShape) {
  const auto j = error_body(
      ApiError(404, "invalid_request_error", "no such model", "model", "model_not_found"));
  EXPECT_EQ(j["error"]["message"], "no such model");
  EXPECT_EQ(j["error"]["type"], "invalid_request_error");
  EXPECT_EQ(j["error"]["param"], "model");
  EXPECT_EQ(j["error"]["code"], "model_not_found");
  const auto k = error_body("boom", "server_error");
  EXPECT_TRUE(k["error"]["param"].is_null());
  EXPECT_TRUE(k["error"]["code"].is_null());
}

TEST(Requests, Utf8Validation) {
  EXPECT_TRUE(valid_utf8("plain"));
  EXPECT_TRUE(valid_utf8("한국어 😀"));
  EXPECT_FALSE(valid_utf8("\xed\x95"));  // cut inside a character
  EXPECT_FALSE(valid_utf8("a\xff"));     // not a UTF-8 byte
  EXPECT_FALSE(valid_utf8("\xc3\x28"));  // bad continuation
  EXPECT_EQ(new_id("chatcmpl-").size(), 9u + 24u);
  EXPECT_NE(new_id("x"), new_id("x"));
}

TEST(Metrics, HistogramBucketsAreCumulative) {
  Histogram h({0.1, 1, 10});
  for (double v : {0.05, 0.5, 0.7, 5.0, 50.0}) h.observe(v);
  const std::string text = h.render("t_seconds", "help");
  EXPECT_NE(text.find("# TYPE t_seconds histogram"), std::string::npos);
  EXPECT_NE(text.find("t_seconds_bucket{le=\"0.1\"} 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("t_seconds_bucket{le=\"1\"} 3\n"), std::string::npos) << text;
  EXPECT_NE(text.find("t_seconds_bucket{le=\"10\"} 4\n"), std::string::npos) << text;
  EXPECT_NE(text.find("t_seconds_bucket{le=\"+Inf\"} 5\n"), std::string::npos) << text;
  EXPECT_NE(text.find("t_seconds_count 5\n"), std::string::npos) << text;
  Metrics m;
  m.request("chat", 200, 0.3);
  m.request("chat", 200, 0.4);
  m.request("chat", 400, 0.01);
  SchedulerStats g;
  g.busy = 2;
  g.generated = 17;
  const std::string all = m.render(g);
  EXPECT_NE(all.find("llmkit_requests_total{endpoint=\"chat\",status=\"200\"} 2\n"),
            std::string::npos)
      << all;
  EXPECT_NE(all.find("llmkit_slots_busy 2\n"), std::string::npos);
  EXPECT_NE(all.find("llmkit_generated_tokens_total 17\n"), std::string::npos);
}

TEST(Security, ConstantTimeEqual) {
  EXPECT_TRUE(constant_time_equal("secret-key", "secret-key"));
  EXPECT_FALSE(constant_time_equal("secret-key", "secret-kez"));
  EXPECT_FALSE(constant_time_equal("secret", "secret-key"));
  EXPECT_FALSE(constant_time_equal("", "k"));
  EXPECT_TRUE(constant_time_equal("", ""));
}

TEST(Security, StaticPathsStayUnderTheRoot) {
  namespace fs = std::filesystem;
  llmkit::testing::TempDir dir;
  const fs::path root = dir.path / "web", outside = dir.path / "secret.txt";
  fs::create_directories(root / "css");
  std::ofstream(root / "index.html") << "<p>hi";
  std::ofstream(root / "css" / "a.css") << "p{}";
  std::ofstream(outside) << "secret";
  fs::create_symlink(outside, root / "link.txt");
  const std::string r = root.string();
  const std::string index = fs::canonical(root / "index.html").string();
  EXPECT_EQ(resolve_static_path(r, "/"), index);
  EXPECT_EQ(resolve_static_path(r, "/index.html"), index);
  EXPECT_EQ(resolve_static_path(r, "/css/a.css"), fs::canonical(root / "css" / "a.css").string());
  for (const char* bad :
       {"/../secret.txt", "/css/../../secret.txt", "/./index.html", "/link.txt", "/missing.html",
        "/css", "//etc/passwd", "index.html", "/..\\secret.txt", "/css//a.css"})
    EXPECT_EQ(resolve_static_path(r, bad), "") << bad;
}
