// `llmkit chat` through a chat template, as a process fed a scripted session on stdin: with the
// real SmolLM2-135M-Instruct (its own ChatML template; skipped, saying so, when the model is not
// in the cache) and with a one-layer GPT trained in the suite's temp directory plus a template
// file (--chat-template), so the template path is tested without the real model. The transcript
// chat of models without a template is tested in test_cli_generate.cpp.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli/cli_world.h"
#include "common/reference.h"

namespace llmkit::testing {
namespace {

// The replies of a session: stdout's "model> ..." lines, without the prefix.
std::vector<std::string> replies_of(const std::string& out) {
  std::vector<std::string> r;
  for (const auto& l : lines_of(out))
    if (l.rfind("model>", 0) == 0) r.push_back(l.size() > 7 ? l.substr(7) : "");
  return r;
}

// The prompt token counts of the "[stats] prompt N tokens, ..." lines on stderr.
std::vector<long> prompt_tokens_of(const std::string& err) {
  std::vector<long> r;
  for (const auto& l : lines_of(err))
    if (l.rfind("[stats] prompt ", 0) == 0) r.push_back(std::strtol(l.c_str() + 15, nullptr, 10));
  return r;
}

// ---- the real SmolLM2-135M-Instruct ----

class CliChatSmolLM2 : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { setenv("LLMKIT_THREADS", "1", 1); }
  void SetUp() override {
    model_ = model_path("smollm2");
    if (model_.empty())
      GTEST_SKIP() << "SmolLM2 is not in " << models_dir()
                   << " (scripts/get-models.sh smollm2 fetches it)";
  }
  ProcessResult chat(std::vector<std::string> extra, const std::string& input) {
    std::vector<std::string> args = {"chat", "--model", model_, "--temperature", "0"};
    args.insert(args.end(), extra.begin(), extra.end());
    return run_llmkit(args, input, 120);
  }
  std::string model_;
};

TEST_F(CliChatSmolLM2, ScriptedTwoQuestionSession) {
  auto r = chat({"--max-new-tokens", "24", "--stats"},
                "What is the capital of France? Answer in one sentence.\nWhat is 2 plus 3?\n");
  ASSERT_TRUE(succeeded(r));
  const auto replies = replies_of(r.out);
  ASSERT_EQ(replies.size(), 2u) << r.out;
  for (const auto& reply : replies) EXPECT_FALSE(reply.empty()) << r.out;
  EXPECT_NE(replies[0].find("Paris"), std::string::npos) << replies[0];
  for (const char* special : {"<|im_end|>", "<|im_start|>", "<|endoftext|>"})
    EXPECT_EQ(r.out.find(special), std::string::npos) << special << " shown: " << r.out;
  // --stats: the load line once, then one line per reply; the second prompt holds the first
  // question and reply (the history), so it is longer than the first by more than the question.
  EXPECT_NE(r.err.find("loaded SmolLM2-135M-Instruct.Q4_1.gguf (llama, "), std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find(" params, gguf) in "), std::string::npos) << r.err;
  const auto prompts = prompt_tokens_of(r.err);
  ASSERT_EQ(prompts.size(), 2u) << r.err;
  EXPECT_GT(prompts[1], prompts[0] + 10) << r.err;
}

TEST_F(CliChatSmolLM2, SystemMessageReplacesTheTemplateDefault) {
  // Without --system SmolLM2's template puts its own system message first ("You are a helpful
  // AI assistant named SmolLM, trained by Hugging Face"); a short one makes the prompt shorter.
  const std::string q = "Hello!\n";
  auto plain = chat({"--max-new-tokens", "4", "--stats"}, q);
  auto pirate = chat({"--max-new-tokens", "4", "--stats", "--system", "Be brief."}, q);
  ASSERT_TRUE(succeeded(plain));
  ASSERT_TRUE(succeeded(pirate));
  const auto a = prompt_tokens_of(plain.err), b = prompt_tokens_of(pirate.err);
  ASSERT_EQ(a.size(), 1u) << plain.err;
  ASSERT_EQ(b.size(), 1u) << pirate.err;
  EXPECT_LT(b[0], a[0]) << "--system did not replace the default system message";
}

TEST_F(CliChatSmolLM2, TranscriptIsRefusedWithATemplate) {
  TempDir d;
  const std::string t = write_file(d, "t.txt", "User: hi\nAssistant: hello\n");
  expect_clean_error(chat({"--transcript", t}, "hi\n"), {"--transcript", "chat template"},
                     "--transcript with a template model");
}

// ---- a tiny trained GPT with --chat-template ----

constexpr const char* kTemplate =
    "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}assistant:{% endif %}";

class CliChatTemplateFile : public CliSuite {
 protected:
  static void SetUpTestSuite() {
    make_world();
    ok_ = world().train_tokenizer() && train_gpt64();
    if (ok_) tpl_ = write_file(world().dir, "chat.jinja", kTemplate);
  }
  void SetUp() override { ASSERT_TRUE(ok_) << "the suite's fixture could not be made"; }
  // The one-layer GPT of TinyWorld with a 64-token context: room for a templated question.
  static bool train_gpt64() {
    const std::string cfg = write_file(
        world().dir, "gpt64.json",
        TinyWorld::config_with(R"({"arch": "gpt", "n_layer": 1, "n_head": 2, "n_embd": 16,
                                   "block_size": 64, "vocab_size": 300})"));
    run_ = world().dir.file("run_gpt64");
    auto r = run_llmkit({"train", "--config", cfg, "--data", world().corpus, "--tokenizer",
                         world().tokenizer, "--out", run_, "--threads", "1"});
    EXPECT_TRUE(succeeded(r)) << "train gpt64";
    return succeeded(r);
  }
  static ProcessResult chat(std::vector<std::string> extra, const std::string& input) {
    std::vector<std::string> args = {"chat", "--model",          run_, "--temperature",
                                     "0",    "--max-new-tokens", "4"};
    args.insert(args.end(), extra.begin(), extra.end());
    return run_llmkit(args, input, 60);
  }
  static inline bool ok_ = false;
  static inline std::string run_, tpl_;
};

TEST_F(CliChatTemplateFile, TemplateSessionKeepsHistoryAndIsDeterministic) {
  auto r = chat({"--chat-template", tpl_, "--stats"}, "the fox\nthe dog\n");
  ASSERT_TRUE(succeeded(r));
  EXPECT_NE(r.err.find("(chat template, context 64 tokens)"), std::string::npos) << r.err;
  ASSERT_EQ(replies_of(r.out).size(), 2u) << r.out;
  // "user: the fox\nassistant:" then the same with the first round in front of it.
  const auto prompts = prompt_tokens_of(r.err);
  ASSERT_EQ(prompts.size(), 2u) << r.err;
  EXPECT_GT(prompts[1], prompts[0]) << r.err;
  auto again = chat({"--chat-template", tpl_, "--stats"}, "the fox\nthe dog\n");
  ASSERT_TRUE(succeeded(again));
  EXPECT_EQ(again.out, r.out);
  // The same model without a template: the transcript chat.
  auto plain = chat({}, "the fox\n");
  ASSERT_TRUE(succeeded(plain));
  EXPECT_NE(plain.err.find("(transcript, no chat template"), std::string::npos) << plain.err;
}

TEST_F(CliChatTemplateFile, SystemMessageIsRenderedFirst) {
  auto a = chat({"--chat-template", tpl_, "--stats"}, "the fox\n");
  auto b = chat({"--chat-template", tpl_, "--stats", "--system", "the lazy dog"}, "the fox\n");
  ASSERT_TRUE(succeeded(a));
  ASSERT_TRUE(succeeded(b));
  const auto pa = prompt_tokens_of(a.err), pb = prompt_tokens_of(b.err);
  ASSERT_EQ(pa.size(), 1u) << a.err;
  ASSERT_EQ(pb.size(), 1u) << b.err;
  EXPECT_GT(pb[0], pa[0]) << "the system message is not in the prompt";
}

TEST_F(CliChatTemplateFile, SaveWritesTheHistoryAsJsonLines) {
  const std::string save = world().dir.file("history.jsonl");
  auto r =
      chat({"--chat-template", tpl_, "--system", "be kind", "--save", save}, "the fox\nthe dog\n");
  ASSERT_TRUE(succeeded(r));
  std::ifstream in(save);
  std::vector<nlohmann::json> msgs;
  for (std::string l; std::getline(in, l);) msgs.push_back(nlohmann::json::parse(l));
  ASSERT_EQ(msgs.size(), 5u);
  const char* roles[] = {"system", "user", "assistant", "user", "assistant"};
  for (size_t i = 0; i < msgs.size(); ++i) EXPECT_EQ(msgs[i].at("role"), roles[i]) << i;
  EXPECT_EQ(msgs[0].at("content"), "be kind");
  EXPECT_EQ(msgs[1].at("content"), "the fox");
  EXPECT_EQ(msgs[3].at("content"), "the dog");
  EXPECT_EQ(msgs[2].at("content"), replies_of(r.out).at(0));
}

TEST_F(CliChatTemplateFile, BadTemplateFileIsOneErrorNamingIt) {
  const std::string unsupported =
      write_file(world().dir, "include.jinja", "{% include 'other.jinja' %}");
  expect_clean_error(chat({"--chat-template", unsupported}, "the fox\n"), {unsupported, "include"},
                     "unsupported construct");
  const std::string raises =
      write_file(world().dir, "raises.jinja", "{{ raise_exception('no chatting today') }}");
  expect_clean_error(chat({"--chat-template", raises}, "the fox\n"), {raises, "no chatting today"},
                     "raise_exception while rendering");
  const std::string missing = world().dir.file("missing.jinja");
  expect_clean_error(chat({"--chat-template", missing}, "the fox\n"), {missing}, "missing file");
}

}  // namespace
}  // namespace llmkit::testing
