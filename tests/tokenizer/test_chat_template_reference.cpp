// ChatTemplate against transformers: every real template in tests/fixtures/chat_templates/
// (README.md there names the models) renders a set of conversations (with and without a system
// message, multi-turn, Korean and emoji, quotes, newlines and backslashes, a tool turn, an empty
// list, broken role alternation) with and without the generation prompt and with and without
// extra variables (tools, date_string). transformers' own Jinja environment renders the same
// cases in one Python run (chat_template_reference.py); each must be byte-identical, or an error
// on both sides (raise_exception with the same message). Skips visibly without transformers.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "common/reference.h"
#include "common/temp_dir.h"
#include "llmkit/core/error.h"
#include "llmkit/tokenizer/chat_template.h"

namespace {

using llmkit::tokenizer::ChatMessage;
using llmkit::tokenizer::ChatTemplate;
using nlohmann::json;

struct Fixture {
  std::string file, bos, eos;
};

const std::vector<Fixture>& fixtures() {
  static const std::vector<Fixture> kFixtures = {
      {"smollm2.jinja", "<|im_start|>", "<|im_end|>"},
      {"chatml.jinja", "<s>", "<|im_end|>"},
      {"qwen2.5-instruct.jinja", "", "<|im_end|>"},
      {"llama2-chat.jinja", "<s>", "</s>"},
      {"llama3-instruct.jinja", "<|begin_of_text|>", "<|eot_id|>"},
      {"llama3.1-instruct.jinja", "<|begin_of_text|>", "<|eot_id|>"},
      {"mistral-instruct-v0.1.jinja", "<s>", "</s>"},
      {"mistral-instruct-v0.3.jinja", "<s>", "</s>"},
      {"gemma2-it.jinja", "<bos>", "<eos>"},
      {"phi3-mini.jinja", "<s>", "<|endoftext|>"},
      {"zephyr.jinja", "<s>", "</s>"},
      {"tinyllama-chat.jinja", "<s>", "</s>"},
      {"deepseek-llm-chat.jinja", "<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>"},
  };
  return kFixtures;
}

using Conversation = std::vector<ChatMessage>;

const std::vector<std::pair<std::string, Conversation>>& conversations() {
  static const std::vector<std::pair<std::string, Conversation>> kConversations = {
      {"one user turn", {{"user", "Hello!"}}},
      {"system + multi-turn",
       {{"system", "You are a helpful assistant."},
        {"user", "What is 2+2?"},
        {"assistant", "4."},
        {"user", "And 3+3?"}}},
      {"korean and emoji",
       {{"user", "안녕하세요! 😀 오늘 날씨 어때요?"},
        {"assistant", "맑아요 ☀️"},
        {"user", "고마워요 🙏🏽"}}},
      {"quotes newlines backslashes",
       {{"user", "He said \"hi\" and 'bye'\\n\nnew line\ttab \\\\ {{ not jinja }} {% raw %}"},
        {"assistant", "  padded reply  \n"},
        {"user", " trailing space "}}},
      {"system + one turn", {{"system", "  Answer in Korean.\n"}, {"user", "What is a cat?"}}},
      {"tool turn",
       {{"user", "Weather in Seoul?"},
        {"assistant", "Let me check."},
        {"tool", "{\"temperature\": 21, \"unit\": \"C\"}"},
        {"user", "Thanks"}}},
      {"roles not alternating", {{"user", "a"}, {"user", "b"}}},
      {"assistant first", {{"assistant", "I speak first"}, {"user", "ok"}}},
      {"empty", {}},
  };
  return kConversations;
}

json extras() {
  const json tool = {
      {"type", "function"},
      {"function",
       {{"name", "get_weather"},
        {"description", "Get the current weather 날씨 in a city"},
        {"parameters",
         {{"type", "object"},
          {"properties",
           {{"city", {{"type", "string"}, {"description", "The city, e.g. \"Seoul\""}}}}},
          {"required", {"city"}}}}}}};
  return json::array({json::object(), {{"date_string", "02 Dec 2026"}, {"tools", {tool}}}});
}

std::string read(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Renders the request's cases with chat_template_reference.py: one result per case, or
// `missing` (the reason) when transformers does not import there.
struct Reference {
  json results = json::array();
  std::string missing;
};
Reference run_reference(const json& request) {
  Reference ref;
  llmkit::testing::TempDir tmp;
  std::ofstream(tmp.file("cases.json"), std::ios::binary) << request.dump();
  const std::string cmd = llmkit::testing::ref_python() + " " + llmkit::testing::source_dir() +
                          "/tests/tokenizer/chat_template_reference.py " + tmp.file("cases.json") +
                          " > " + tmp.file("out.json") + " 2> " + tmp.file("err.txt");
  const int status = std::system(cmd.c_str());
  if (status != 0) {
    // 77: transformers is missing; 127: the interpreter itself is (sh's "command not found").
    const int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    if (code == 77 || code == 127) {
      ref.missing = read(tmp.file("err.txt")) + " (python: " + llmkit::testing::ref_python() +
                    "; set LLMKIT_REF_PYTHON or run scripts/install-deps.sh --test)";
    } else {
      ADD_FAILURE() << "the reference failed: " << read(tmp.file("err.txt"));
    }
    return ref;
  }
  ref.results = json::parse(read(tmp.file("out.json")));
  EXPECT_EQ(ref.results.size(), request["cases"].size());
  return ref;
}

// Compares our rendering (or error) with the reference's result; true when it rendered.
// `same_message`: an error must also say what jinja2's says (after our "line N: " prefix).
bool check(const std::string& ours, const std::string& our_error, const json& ref,
           bool same_message = false) {
  if (ref["ok"].get<bool>()) {
    EXPECT_EQ(our_error, "");
    EXPECT_EQ(ours, ref["text"].get<std::string>());
    return true;
  }
  const std::string ref_error = ref["error"].get<std::string>();
  EXPECT_NE(our_error, "") << "transformers failed (" << ref_error << ") but we rendered:\n"
                           << ours;
  // raise_exception('msg') is TemplateError: msg there and "chat template: msg" here.
  if (ref_error.starts_with("TemplateError: ")) {
    EXPECT_EQ(our_error, "chat template: " + ref_error.substr(15));
  } else if (same_message) {
    const std::string what = ref_error.substr(ref_error.find(": ") + 2);
    EXPECT_TRUE(our_error.ends_with(": " + what)) << our_error << "\nvs " << ref_error;
  }
  return false;
}

struct Case {
  std::string label;
  const Fixture* fixture;
  const Conversation* messages;
  bool add_generation_prompt;
  json extra;
};

TEST(ChatTemplateReference, MatchesTransformers) {
  const std::string dir = llmkit::testing::source_dir() + "/tests/fixtures/chat_templates/";
  std::map<std::string, std::string> sources;
  std::vector<Case> cases;
  json request = {{"cases", json::array()}};
  for (const Fixture& f : fixtures()) {
    sources[f.file] = read(dir + f.file);
    ASSERT_FALSE(sources[f.file].empty()) << dir + f.file;
    for (const auto& [name, conv] : conversations())
      for (bool agp : {false, true})
        for (const json& extra : extras()) {
          cases.push_back({f.file + " / " + name + (agp ? " / +generation prompt" : "") +
                               (extra.empty() ? "" : " / +tools, date_string"),
                           &f, &conv, agp, extra});
          json messages = json::array();
          for (const ChatMessage& m : conv)
            messages.push_back({{"role", m.role}, {"content", m.content}});
          request["cases"].push_back({{"template", sources[f.file]},
                                      {"messages", messages},
                                      {"add_generation_prompt", agp},
                                      {"bos_token", f.bos},
                                      {"eos_token", f.eos},
                                      {"extra", extra}});
        }
  }
  const Reference ref = run_reference(request);
  if (!ref.missing.empty()) GTEST_SKIP() << ref.missing;
  const json& results = ref.results;
  ASSERT_EQ(results.size(), cases.size());

  int rendered = 0, errors = 0;
  std::map<std::string, int> rendered_per_file;
  for (size_t i = 0; i < cases.size(); ++i) {
    const Case& c = cases[i];
    SCOPED_TRACE(c.label);
    std::string ours, our_error;
    try {
      ours = ChatTemplate(sources[c.fixture->file], c.fixture->bos, c.fixture->eos)
                 .apply(*c.messages, c.add_generation_prompt, c.extra);
    } catch (const llmkit::Error& e) {
      our_error = e.what();
    }
    if (check(ours, our_error, results[i])) {
      ++rendered;
      ++rendered_per_file[c.fixture->file];
    } else {
      ++errors;
    }
  }
  std::printf("%zu cases: %d rendered identically, %d errors on both sides\n", cases.size(),
              rendered, errors);
  for (const Fixture& f : fixtures())  // a template that fails everywhere tests nothing
    EXPECT_GE(rendered_per_file[f.file], 8) << f.file;
}

// Small templates for each feature of the subset (tests/fixtures/chat_templates/snippets.txt,
// separated by "%%" lines): literals and Python printing, arithmetic, slices, every filter and
// test, loops, scopes, macros, whitespace control, and errors (undefined, sandbox, types).
TEST(ChatTemplateReference, SnippetsMatchJinja2) {
  std::string all =
      read(llmkit::testing::source_dir() + "/tests/fixtures/chat_templates/snippets.txt");
  ASSERT_TRUE(all.ends_with("\n"));
  all.pop_back();
  std::vector<std::string> snippets;
  for (size_t pos = 0;;) {
    const size_t sep = all.find("\n%%\n", pos);
    snippets.push_back(all.substr(pos, sep == std::string::npos ? std::string::npos : sep - pos));
    if (sep == std::string::npos) break;
    pos = sep + 4;
  }
  ASSERT_GT(snippets.size(), 90u);
  const std::vector<ChatMessage> messages = {{"user", "hi"}};
  json request = {{"cases", json::array()}};
  for (const std::string& s : snippets)
    request["cases"].push_back({{"template", s},
                                {"messages", {{{"role", "user"}, {"content", "hi"}}}},
                                {"add_generation_prompt", true},
                                {"bos_token", "<s>"},
                                {"eos_token", "</s>"},
                                {"extra", json::object()}});
  const Reference ref = run_reference(request);
  if (!ref.missing.empty()) GTEST_SKIP() << ref.missing;
  const json& results = ref.results;
  ASSERT_EQ(results.size(), snippets.size());
  int rendered = 0;
  for (size_t i = 0; i < snippets.size(); ++i) {
    SCOPED_TRACE("snippet " + std::to_string(i) + ":\n" + snippets[i]);
    std::string ours, our_error;
    try {
      ours = ChatTemplate(snippets[i], "<s>", "</s>").apply(messages, true);
    } catch (const llmkit::Error& e) {
      our_error = e.what();
    }
    rendered += check(ours, our_error, results[i], /*same_message=*/true);
  }
  std::printf("%zu snippets: %d rendered identically, %zu errors on both sides\n", snippets.size(),
              rendered, snippets.size() - rendered);
}

// The fixture is the template inside the SmolLM2 GGUF file (tokenizer.chat_template).
TEST(ChatTemplateReference, SmolLM2FixtureIsTheGgufTemplate) {
  const std::string model = llmkit::testing::model_path("smollm2");
  if (model.empty()) GTEST_SKIP() << "SmolLM2 GGUF not in " << llmkit::testing::models_dir();
  if (!llmkit::testing::ref_python_has("gguf")) GTEST_SKIP() << "the gguf package does not import";
  llmkit::testing::TempDir tmp;
  const std::string cmd =
      llmkit::testing::ref_python() +
      " -c \"import sys; from gguf import GGUFReader; f = GGUFReader(sys.argv[1])"
      ".fields['tokenizer.chat_template']; sys.stdout.write(bytes(f.parts[f.data[0]])"
      ".decode())\" " +
      model + " > " + tmp.file("t.jinja");
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  EXPECT_EQ(read(tmp.file("t.jinja")),
            read(llmkit::testing::source_dir() + "/tests/fixtures/chat_templates/smollm2.jinja"));
}

}  // namespace
