// Preference pairs (data/preferences.h): TRL's three layouts (implicit prompts included) and the
// errors naming file and line; tokenisation through the chat template (the prompt as
// prompt_ids gives it, each answer exactly SFT's labelled tokens, ending with the eos) and as
// plain text; the left cut of a long prompt (bos kept) and the answers' cut.
#include <gtest/gtest.h>

#include "chat_fixtures.h"
#include "common/error_of.h"
#include "llmkit/data/preferences.h"

using namespace llmkit;
using namespace llmkit::data::testing;
using data::PreferencePair, data::PreferenceExample;
using llmkit::testing::error_of;
using tokenizer::ChatMessage;

namespace {

bool has(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

std::string decode(const std::vector<int32_t>& ids) {
  return chat_tokenizer().decode(ids);
}

std::string msg(const std::string& role, const std::string& content) {
  return "{\"role\": \"" + role + "\", \"content\": \"" + content + "\"}";
}

}  // namespace

TEST(Preferences, ReadsTheThreeLayouts) {
  const llmkit::testing::TempDir d;
  const std::string path =
      write(d, "p.jsonl",
            "{\"prompt\": \"2+2?\", \"chosen\": \"4\", \"rejected\": \"5\"}\n"
            "{\"prompt\": [" +
                msg("system", "Be brief.") + ", " + msg("user", "Hi") + "], \"chosen\": [" +
                msg("assistant", "Hello!") + "], \"rejected\": [" + msg("assistant", "Go away.") +
                "]}\n" +
                "\n"
                "{\"chosen\": [" +
                msg("user", "Hi") + ", " + msg("assistant", "Hi!") + ", " + msg("user", "Bye") +
                ", " + msg("assistant", "Bye!") + "], \"rejected\": [" + msg("user", "Hi") + ", " +
                msg("assistant", "Hi!") + ", " + msg("user", "Bye") + ", " +
                msg("assistant", "No.") + "]}\n" + "{\"chosen\": [" + msg("user", "Q") + ", " +
                msg("assistant", "A") + "], \"rejected\": [" + msg("user", "Q") + ", " +
                msg("assistant", "A") + "]}\n" + "{\"prompt\": \"p\", \"chosen\": [" +
                msg("assistant", "x") + "], \"rejected\": \"y\"}\n");
  const std::vector<PreferencePair> p = data::read_preferences(path);
  ASSERT_EQ(p.size(), 5u);
  ASSERT_EQ(p[0].prompt.size(), 1u);
  EXPECT_EQ(p[0].prompt[0].role, "user");
  EXPECT_EQ(p[0].prompt[0].content, "2+2?");
  EXPECT_EQ(p[0].chosen, "4");
  EXPECT_EQ(p[0].rejected, "5");
  ASSERT_EQ(p[1].prompt.size(), 2u);
  EXPECT_EQ(p[1].prompt[0].role, "system");
  EXPECT_EQ(p[1].chosen, "Hello!");
  EXPECT_EQ(p[1].rejected, "Go away.");
  // Implicit prompt: the three shared messages.
  ASSERT_EQ(p[2].prompt.size(), 3u);
  EXPECT_EQ(p[2].prompt[2].content, "Bye");
  EXPECT_EQ(p[2].chosen, "Bye!");
  EXPECT_EQ(p[2].rejected, "No.");
  // chosen == rejected: allowed, the last message is still each one's answer.
  ASSERT_EQ(p[3].prompt.size(), 1u);
  EXPECT_EQ(p[3].chosen, "A");
  EXPECT_EQ(p[3].rejected, "A");
  EXPECT_EQ(p[4].chosen, "x");
  EXPECT_EQ(p[4].rejected, "y");
  EXPECT_EQ(data::read_preferences(path, 2).size(), 2u);
}

TEST(Preferences, ReadErrorsNameFileAndLine) {
  const llmkit::testing::TempDir d;
  const std::string ok = "{\"prompt\": \"p\", \"chosen\": \"a\", \"rejected\": \"b\"}\n";
  auto err = [&](const std::string& name, const std::string& text) {
    const std::string p = write(d, name, text);
    return error_of([&] { data::read_preferences(p); });
  };
  EXPECT_TRUE(has(err("a.jsonl", ok + "{oops\n"), "a.jsonl:2: not valid JSON"));
  EXPECT_TRUE(has(err("b.jsonl", "{\"prompt\": \"p\", \"rejected\": \"b\"}\n"),
                  "b.jsonl:1: no field \"chosen\""));
  EXPECT_TRUE(has(err("c.jsonl", "{\"prompt\": \"p\", \"chosen\": \"b\"}\n"),
                  "c.jsonl:1: no field \"rejected\""));
  EXPECT_TRUE(
      has(err("d.jsonl", ok + "{\"prompt\": \"p\", \"chosen\": \"a\", \"rejected\": \"\"}\n"),
          "d.jsonl:2: empty \"rejected\" answer"));
  EXPECT_TRUE(has(err("e.jsonl", "{\"prompt\": \"p\", \"chosen\": [" + msg("assistant", "a") +
                                     ", " + msg("assistant", "b") + "], \"rejected\": \"b\"}\n"),
                  "e.jsonl:1: \"chosen\" must hold one assistant message, got 2"));
  EXPECT_TRUE(has(err("f.jsonl", "{\"chosen\": [" + msg("user", "q") + ", " +
                                     msg("assistant", "a") + "], \"rejected\": [" +
                                     msg("user", "other") + ", " + msg("assistant", "b") + "]}\n"),
                  "f.jsonl:1: \"chosen\" must be the shared prompt messages and then one"));
  EXPECT_TRUE(has(err("g.jsonl", "{\"chosen\": \"a\", \"rejected\": \"b\"}\n"),
                  "g.jsonl:1: no field \"prompt\""));
  EXPECT_TRUE(has(err("h.jsonl", "{\"prompt\": 3, \"chosen\": \"a\", \"rejected\": \"b\"}\n"),
                  "h.jsonl:1: \"prompt\" is neither"));
  EXPECT_TRUE(
      has(err("i.jsonl", "{\"prompt\": \"\xc3\", \"chosen\": \"a\", \"rejected\": \"b\"}\n"),
          "i.jsonl:1: not valid UTF-8"));
  EXPECT_TRUE(has(err("j.jsonl", "{\"prompt\": [" + msg("bot", "q") +
                                     "], \"chosen\": \"a\", \"rejected\": \"b\"}\n"),
                  "j.jsonl:1: \"prompt\"[0]: role 'bot' is not"));
  EXPECT_TRUE(has(err("k.jsonl", "\n"), "holds no preference pairs"));
}

TEST(Preferences, ChatTokenisationMatchesSft) {
  const data::ChatFormat f = chatml_format();
  const PreferencePair p{{{"system", "Be brief."}, {"user", "What is the capital of France?"}},
                         "Paris.",
                         "The capital of France is <|im_end|> Paris?"};
  const PreferenceExample ex = data::tokenize_preference(p, f, true, 0, 0);
  EXPECT_EQ(ex.prompt, data::prompt_ids(p.prompt, f));
  EXPECT_EQ(decode(ex.chosen), "Paris.<|im_end|>");
  EXPECT_EQ(decode(ex.rejected), "The capital of France is <|im_end|> Paris?<|im_end|>");
  EXPECT_EQ(ex.chosen.back(), kImEnd);
  EXPECT_EQ(std::count(ex.rejected.begin(), ex.rejected.end(), kImEnd), 1);  // typed one is text
  // The answer's ids are exactly SFT's labelled tokens for the same conversation.
  data::Conversation c{p.prompt};
  c.messages.push_back({"assistant", p.chosen});
  EXPECT_EQ(ex.chosen, labelled(data::tokenize_conversation(c, f, 0)));
  // The plain template: the answer carries its leading space.
  const PreferenceExample pl = data::tokenize_preference(p, plain_format(), true, 0, 0);
  EXPECT_EQ(decode(pl.prompt),
            "System: Be brief.\nUser: What is the capital of France?\nAssistant:");
  EXPECT_EQ(decode(pl.chosen), " Paris.<|endoftext|>");
  EXPECT_EQ(pl.chosen.back(), kEndOfText);
}

TEST(Preferences, PlainTextTokenisation) {
  data::ChatFormat f = plain_format();
  f.add_bos = true;
  f.bos_id = kEndOfText;
  const PreferencePair p{{{"user", "The capital of France is"}}, " Paris.", " maybe"};
  const PreferenceExample ex = data::tokenize_preference(p, f, false, 0, 0);
  std::vector<int32_t> prompt = {kEndOfText};
  for (int32_t id : chat_tokenizer().encode("The capital of France is")) prompt.push_back(id);
  EXPECT_EQ(ex.prompt, prompt);
  EXPECT_EQ(decode(ex.chosen), " Paris.<|endoftext|>");
  EXPECT_EQ(decode(ex.rejected), " maybe<|endoftext|>");
  const PreferencePair conv{{{"user", "q"}, {"assistant", "a"}, {"user", "r"}}, "x", "y"};
  EXPECT_TRUE(has(error_of([&] { data::tokenize_preference(conv, f, false, 0, 0); }),
                  "a conversational prompt (3 messages) needs chat tokenisation"));
}

TEST(Preferences, CutsPromptFromTheLeftAndAnswersFromTheRight) {
  data::ChatFormat f = chatml_format();
  f.add_bos = true;
  f.bos_id = kEndOfText;
  const PreferencePair p{{{"user",
                           "Say hello to the user and answer the question. What is the "
                           "capital of France? Is the answer yes or no?"}},
                         "yes",
                         "The capital of France is Paris. The answer is maybe."};
  const PreferenceExample full = data::tokenize_preference(p, f, true, 0, 0);
  ASSERT_GT(full.prompt.size(), 12u);
  ASSERT_GT(full.rejected.size(), 6u);
  ASSERT_LE(full.chosen.size(), 6u);
  const PreferenceExample cut = data::tokenize_preference(p, f, true, 16, 10);
  // bos, then the prompt's last 9 tokens (its generation prompt is kept).
  ASSERT_EQ(cut.prompt.size(), 10u);
  EXPECT_EQ(cut.prompt[0], kEndOfText);
  EXPECT_TRUE(std::equal(cut.prompt.begin() + 1, cut.prompt.end(), full.prompt.end() - 9));
  EXPECT_EQ(cut.chosen, full.chosen);  // fits: its eos kept
  EXPECT_EQ(cut.rejected, std::vector<int32_t>(full.rejected.begin(), full.rejected.begin() + 6));
  EXPECT_NE(cut.rejected.back(), kImEnd);  // cut: no longer an ended answer
  EXPECT_TRUE(has(error_of([&] { data::tokenize_preference(p, f, true, 16, 16); }),
                  "0 < max_prompt < max_len"));
  // Without a max_len only the prompt is cut.
  const PreferenceExample left = data::tokenize_preference(p, f, true, 0, 5);
  EXPECT_EQ(left.prompt.size(), 5u);
  EXPECT_EQ(left.rejected, full.rejected);
}
