// Chat: the transcript format reads back what it writes; trimming to the context drops the oldest
// turns and never the new question; streamed replies never show any part of a stop string, also
// when it is split across tokens or inside UTF-8 characters, or ends the text. The model is a
// scripted decoder (it "generates" a fixed text), so the expected output is known exactly.
#include <gtest/gtest.h>

#include <algorithm>

#include "llmkit/infer/chat.h"
#include "llmkit/tokenizer/unicode.h"

using namespace llmkit;
using infer::Conversation;
using infer::Role;
using infer::StopMatcher;

namespace {

// A byte-level BPE with no merges: every byte is its own token, so multi-byte characters and
// stop strings are always split across tokens.
const tokenizer::Tokenizer& byte_tokenizer() {
  static const tokenizer::Tokenizer tok = [] {
    tokenizer::TrainOptions o;
    o.vocab_size = 257;  // <|endoftext|> + 256 bytes
    return tokenizer::Tokenizer::train_from_text("abc", o);
  }();
  return tok;
}

// "Generates" the tokens of `script` one by one, then <|endoftext|>; records each prompt.
class ScriptedDecoder : public infer::Decoder {
 public:
  ScriptedDecoder(std::string_view script, int64_t context)
      : script_(byte_tokenizer().encode(script)), context_(context) {}
  int64_t context() const override { return context_; }
  void reset(bool) override { prompt_len_ = 0; }
  std::span<const float> next_logits(std::span<const int32_t> seq, size_t fresh) override {
    if (prompt_len_ == 0) {
      prompt_len_ = seq.size();
      prompts.emplace_back(seq.begin(), seq.end());
      EXPECT_EQ(fresh, seq.size());
    }
    const size_t step = seq.size() - prompt_len_;
    const int32_t eot = byte_tokenizer().token_to_id("<|endoftext|>");
    logits_.assign(byte_tokenizer().vocab_size(), 0.0f);
    logits_[step < script_.size() ? script_[step] : eot] = 100.0f;
    return logits_;
  }
  std::vector<std::vector<int32_t>> prompts;

 private:
  std::vector<int32_t> script_;
  int64_t context_;
  size_t prompt_len_ = 0;
  std::vector<float> logits_;
};

infer::GenerateOptions greedy(int64_t max_new_tokens) {
  infer::GenerateOptions o;
  o.sampler.temperature = 0;
  o.max_new_tokens = max_new_tokens;
  o.stop_ids = {byte_tokenizer().token_to_id("<|endoftext|>")};
  return o;
}

// The text cut at the first occurrence of any stop string: what a matcher must show in total.
std::string reference_cut(const std::string& text, const std::vector<std::string>& stops) {
  size_t at = text.size();
  for (const auto& s : stops) {
    if (!s.empty()) at = std::min(at, text.find(s));
  }
  return text.substr(0, at);
}

// Feeds `pieces` through a matcher, checking after every push that all shown text is a prefix of
// the final answer (so nothing shown is ever taken back, e.g. the start of a stop string).
std::string stream(const std::vector<std::string>& pieces, const std::vector<std::string>& stops) {
  std::string whole;
  for (const auto& p : pieces) whole += p;
  const std::string expected = reference_cut(whole, stops);
  StopMatcher m(stops);
  std::string shown;
  for (const auto& p : pieces) {
    shown += m.push(p);
    EXPECT_TRUE(expected.starts_with(shown)) << "shown '" << shown << "' of '" << whole << "'";
  }
  shown += m.finish();
  EXPECT_EQ(shown, expected) << "text '" << whole << "'";
  return shown;
}

std::vector<std::string> bytes_of(std::string_view s) {
  std::vector<std::string> out;
  for (char c : s) out.emplace_back(1, c);
  return out;
}

}  // namespace

TEST(ChatTranscript, ParsesAndRendersTheSameConversation) {
  const std::string text =
      "You are a helpful model.\r\n"
      "Be brief.\n"
      "\n"
      "User: hello there  \r\n"
      "Assistant:hi\n"
      "second line\n"
      "\n"
      "  indented line\n"
      "User:\n"
      "Assistant: last\n";
  const Conversation c = infer::parse_transcript(text);
  EXPECT_EQ(c.preamble, "You are a helpful model.\nBe brief.");
  ASSERT_EQ(c.turns.size(), 4u);
  EXPECT_EQ(c.turns[0], (infer::Turn{Role::kUser, "hello there"}));
  EXPECT_EQ(c.turns[1], (infer::Turn{Role::kAssistant, "hi\nsecond line\n\n  indented line"}));
  EXPECT_EQ(c.turns[2], (infer::Turn{Role::kUser, ""}));
  EXPECT_EQ(c.turns[3], (infer::Turn{Role::kAssistant, "last"}));
  EXPECT_EQ(infer::parse_transcript(c.render()), c);
  EXPECT_EQ(c.render(3), "You are a helpful model.\nBe brief.\n\nAssistant: last\n");
  EXPECT_EQ(c.prompt(3), c.render(3) + "Assistant:");
  // A line that only looks like a label further in is not one.
  const Conversation d = infer::parse_transcript("User: a\n User: b\nUsers: c");
  ASSERT_EQ(d.turns.size(), 1u);
  EXPECT_EQ(d.turns[0].text, "a\n User: b\nUsers: c");
}

TEST(ChatTranscript, EmptyAndPreambleOnly) {
  EXPECT_EQ(infer::parse_transcript(""), Conversation{});
  const Conversation c = infer::parse_transcript("\n\nJust a preamble\n\n");
  EXPECT_EQ(c.preamble, "Just a preamble");
  EXPECT_TRUE(c.turns.empty());
  EXPECT_EQ(infer::parse_transcript(c.render()), c);
}

// Found by the fuzzer: trimming the preamble's indent made "\rUser: x" read back as a turn.
TEST(ChatTranscript, AnIndentedLabelInThePreambleStaysInThePreamble) {
  const Conversation c =
      infer::parse_transcript("\n \r\n\rUser: not a turn\n  Assistant: nor this\n");
  EXPECT_EQ(c.preamble, "\rUser: not a turn\n  Assistant: nor this");
  EXPECT_TRUE(c.turns.empty());
  EXPECT_EQ(infer::parse_transcript(c.render()), c);
}

TEST(ChatTranscript, InvalidUtf8NamesFileAndLine) {
  try {
    infer::parse_transcript("User: ok\nAssistant: fine\nUser: bad \xC3(\n", "talk.txt");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("talk.txt: invalid UTF-8 at line 3"), std::string::npos)
        << e.what();
  }
}

TEST(StopMatcher, HoldsBackAStopStringSplitAcrossPieces) {
  const std::vector<std::string> stops = infer::chat_stop_strings();
  StopMatcher m(stops);
  EXPECT_EQ(m.push("Hello"), "Hello");
  EXPECT_EQ(m.push("\nUs"), "");  // could be "\nUser:"
  EXPECT_EQ(m.push("er"), "");
  EXPECT_EQ(m.push(": more"), "");
  EXPECT_TRUE(m.stopped());
  EXPECT_EQ(m.push("anything"), "");
  EXPECT_EQ(m.finish(), "");
}

TEST(StopMatcher, ReleasesAFalseStartOnceItCannotMatch) {
  StopMatcher m(infer::chat_stop_strings());
  EXPECT_EQ(m.push("a\nUse"), "a");
  EXPECT_EQ(m.push("d it"), "\nUsed it");
  EXPECT_FALSE(m.stopped());
  EXPECT_EQ(m.push("\n"), "");
  EXPECT_EQ(m.finish(), "\n");  // the stream ended: the held "\n" was not a stop string
}

TEST(StopMatcher, StopStringAtTheVeryEnd) {
  StopMatcher m({"\n\n"});
  EXPECT_EQ(m.push("answer\n"), "answer");
  EXPECT_EQ(m.push("\n"), "");
  EXPECT_TRUE(m.stopped());
  EXPECT_EQ(m.finish(), "");
}

TEST(StopMatcher, EarliestOfSeveralStopStringsWins) {
  EXPECT_EQ(stream({"xx", "yAB", "C"}, {"ABC", "yA"}), "xx");
  EXPECT_EQ(stream({"one END two STOP"}, {"STOP", "END"}), "one ");
  EXPECT_EQ(stream({"no stops"}, {""}), "no stops");  // empty stop strings are ignored
}

TEST(StopMatcher, NeverSplitsUtf8Characters) {
  // Without stop strings, a character fed byte by byte comes out whole.
  StopMatcher m({});
  EXPECT_EQ(m.push("\xE4"), "");
  EXPECT_EQ(m.push("\xB8"), "");
  EXPECT_EQ(m.push("\xAD"), "\xE4\xB8\xAD");  // 中
  // 각 (EA B0 81) starts like the stop string 가 (EA B0 80): held, then released whole.
  StopMatcher k({"가"});
  EXPECT_EQ(k.push("\xEA\xB0"), "");
  EXPECT_EQ(k.push("\x81"), "각");
  EXPECT_EQ(k.push("\xEA"), "");
  EXPECT_EQ(k.push("\xB0\x80"), "");
  EXPECT_TRUE(k.stopped());
}

// Every way of cutting these texts into pieces (byte by byte, and every split into two or three
// pieces) shows exactly the text before the first stop string and never a piece of one.
TEST(StopMatcher, EverySplitGivesTheCutText) {
  const std::vector<std::string> stops = {"\nUser:", "\nAssistant:", "\n\n", "끝."};
  const std::vector<std::string> texts = {
      "Sure.\nUser: next",
      "a\nAssist\nAssistant: b",
      "tail\n",
      "x\n\n",
      "한국어 끝.끝",
      "끝 끝 끝.",
      "\n",
      "",
      "\nUser:",
      "no stop at all 中文",
  };
  for (const auto& t : texts) {
    stream(bytes_of(t), stops);
    for (size_t i = 0; i <= t.size(); ++i) {
      for (size_t j = i; j <= t.size(); ++j) {
        stream({t.substr(0, i), t.substr(i, j - i), t.substr(j)}, stops);
      }
    }
  }
}

TEST(TokenTextStream, HoldsPartialCharactersUntilComplete) {
  const auto& tok = byte_tokenizer();
  const std::string text = "가나 ok 中";
  infer::TokenTextStream s(tok);
  std::string all;
  for (int32_t id : tok.encode(text)) {
    const std::string piece = s.push(id);
    EXPECT_EQ(tokenizer::utf8_find_invalid(piece), -1) << "a piece splits a character";
    all += piece;
  }
  all += s.finish();
  EXPECT_EQ(all, text);
  // A truly invalid byte comes out as U+FFFD at the end.
  infer::TokenTextStream bad(tok);
  EXPECT_EQ(bad.push(tok.encode("\xFF")[0]), "");
  EXPECT_EQ(bad.finish(), "\xEF\xBF\xBD");
}

Conversation long_conversation(int n_pairs) {
  Conversation c;
  c.preamble = "Preamble.";
  for (int i = 0; i < n_pairs; ++i) {
    c.add(Role::kUser, "question number " + std::to_string(i));
    c.add(Role::kAssistant, "answer number " + std::to_string(i));
  }
  c.add(Role::kUser, "the new question");
  return c;
}

TEST(ChatFit, DropsTheFewestOldestTurnsAndKeepsTheQuestion) {
  const auto& tok = byte_tokenizer();
  const Conversation c = long_conversation(10);
  const int64_t whole = static_cast<int64_t>(tok.encode(c.prompt()).size());
  EXPECT_EQ(infer::fit_prompt(c, tok, whole).first_turn, 0u);
  for (int64_t budget : {whole - 1, whole / 2, int64_t{60}}) {
    const infer::ChatPrompt p = infer::fit_prompt(c, tok, budget);
    ASSERT_GT(p.first_turn, 0u);
    EXPECT_LE(static_cast<int64_t>(p.ids.size()), budget);
    EXPECT_EQ(p.ids, tok.encode(c.prompt(p.first_turn)));
    // One turn more would not fit: the fewest were dropped.
    EXPECT_GT(static_cast<int64_t>(tok.encode(c.prompt(p.first_turn - 1)).size()), budget);
    const std::string text = tok.decode(p.ids);
    EXPECT_TRUE(text.starts_with("Preamble.\n\n")) << text;
    EXPECT_TRUE(text.ends_with("User: the new question\nAssistant:")) << text;
  }
}

TEST(ChatFit, AQuestionTooLongIsAClearError) {
  const auto& tok = byte_tokenizer();
  Conversation c = long_conversation(2);
  c.add(Role::kUser, std::string(200, 'x'));
  try {
    infer::fit_prompt(c, tok, 100);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("the new message needs"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("only 100 fit"), std::string::npos) << e.what();
  }
  EXPECT_THROW(infer::fit_prompt(Conversation{}, tok, 100), Error);
}

TEST(ChatReply, StreamsTheReplyWithoutTheStopStringAndRecordsIt) {
  const auto& tok = byte_tokenizer();
  ScriptedDecoder d(" Hi there\nand 안녕\nUser: made up question", 1000);
  Conversation c;
  std::vector<std::string> pieces;
  const std::string reply = infer::chat_reply(d, tok, c, "hello", greedy(100),
                                              [&](std::string_view s) { pieces.emplace_back(s); });
  EXPECT_EQ(reply, " Hi there\nand 안녕");
  std::string joined;
  for (const auto& p : pieces) {
    EXPECT_EQ(tokenizer::utf8_find_invalid(p), -1) << "a piece splits a character";
    joined += p;
  }
  EXPECT_EQ(joined, reply);
  ASSERT_EQ(c.turns.size(), 2u);
  EXPECT_EQ(c.turns[0], (infer::Turn{Role::kUser, "hello"}));
  EXPECT_EQ(c.turns[1], (infer::Turn{Role::kAssistant, "Hi there\nand 안녕"}));
  ASSERT_EQ(d.prompts.size(), 1u);
  EXPECT_EQ(tok.decode(d.prompts[0]), "User: hello\nAssistant:");
}

TEST(ChatReply, AStopStringAtTheEndOfTheBudgetIsNeverShown) {
  const auto& tok = byte_tokenizer();
  // The reply ends with the start of a stop string ("\nUs") when max_new_tokens runs out: the
  // held-back text is released only then, since it never became a stop string.
  ScriptedDecoder d("ok\nUs", 1000);
  Conversation c;
  std::string shown;
  infer::chat_reply(d, tok, c, "q", greedy(5), [&](std::string_view s) { shown += s; });
  EXPECT_EQ(shown, "ok\nUs");
  // With one more token the stop string completes and nothing of it is shown.
  ScriptedDecoder e("ok\nUser:", 1000);
  shown.clear();
  infer::chat_reply(e, tok, c, "q", greedy(100), [&](std::string_view s) { shown += s; });
  EXPECT_EQ(shown, "ok");
}

TEST(ChatReply, KeepsTheConversationWithinTheContext) {
  const auto& tok = byte_tokenizer();
  const int64_t ctx = 120;
  ScriptedDecoder d(" fine", ctx);
  Conversation c = long_conversation(5);
  c.turns.pop_back();
  infer::ChatReplyInfo info;
  infer::chat_reply(d, tok, c, "what now?", greedy(20), {}, &info);
  EXPECT_GT(info.dropped_turns, 0u);
  ASSERT_EQ(d.prompts.size(), 1u);
  EXPECT_LE(static_cast<int64_t>(d.prompts[0].size()), ctx - 20);
  const std::string seen = tok.decode(d.prompts[0]);
  EXPECT_TRUE(seen.ends_with("User: what now?\nAssistant:")) << seen;
  EXPECT_EQ(seen.find("question number 0"), std::string::npos) << seen;
  EXPECT_EQ(c.turns.back(), (infer::Turn{Role::kAssistant, "fine"}));
  // A question longer than the context is an Error and leaves the conversation as it was.
  const Conversation before = c;
  EXPECT_THROW(infer::chat_reply(d, tok, c, std::string(300, 'x'), greedy(20)), Error);
  EXPECT_EQ(c, before);
  // max_new_tokens larger than the context keeps half of it for the question.
  ScriptedDecoder small(" yes", 60);
  Conversation s;
  EXPECT_EQ(infer::chat_reply(small, tok, s, "short?", greedy(1000)), " yes");
}

// generate_text streams through the same TokenTextStream + StopMatcher as chat: every piece it
// sends is whole characters, and no piece holds the start of a stop string that completes later
// (the stop string here is split over single-byte tokens and begins with a Korean character).
TEST(GenerateText, StreamsNoPartOfAStopStringAndNoSplitCharacter) {
  const std::string script = "안녕 하세요 END 뒤";
  const std::vector<std::string> stops = {"세요 END"};
  ScriptedDecoder decoder(script, 0);
  infer::GenerateOptions opt = greedy(64);
  opt.stop_strings = stops;
  std::string streamed;
  const std::string out =
      infer::generate_text(decoder, byte_tokenizer(), "x", opt, [&](std::string_view piece) {
        EXPECT_EQ(tokenizer::utf8_find_invalid(piece), -1) << "a piece splits a character";
        streamed.append(piece);
        EXPECT_EQ(reference_cut(script, stops).rfind(streamed, 0), 0u)
            << "streamed text that is not a prefix of the cut text: " << streamed;
      });
  EXPECT_EQ(out, reference_cut(script, stops));
  EXPECT_EQ(streamed, out);
}

// ---- Chat through a chat template (ChatML) ----

namespace {

// A byte-level BPE with the ChatML special tokens and a few merges.
const tokenizer::Tokenizer& chatml_tokenizer() {
  static const tokenizer::Tokenizer tok = [] {
    tokenizer::TrainOptions o;
    o.vocab_size = 300;
    o.special_tokens = {"<|endoftext|>", "<|im_start|>", "<|im_end|>"};
    return tokenizer::Tokenizer::train_from_text(
        "user assistant system hello there the question answer 안녕하세요 user assistant", o);
  }();
  return tok;
}

// "Generates" the given ids one by one, then `last` forever; records each prompt.
class IdsDecoder : public infer::Decoder {
 public:
  IdsDecoder(std::vector<int32_t> script, int32_t last, int64_t context)
      : script_(std::move(script)), last_(last), context_(context) {}
  int64_t context() const override { return context_; }
  void reset(bool) override { prompt_len_ = 0; }
  std::span<const float> next_logits(std::span<const int32_t> seq, size_t) override {
    if (prompt_len_ == 0) {
      prompt_len_ = seq.size();
      prompts.emplace_back(seq.begin(), seq.end());
    }
    const size_t step = seq.size() - prompt_len_;
    logits_.assign(chatml_tokenizer().vocab_size(), 0.0f);
    logits_[step < script_.size() ? script_[step] : last_] = 100.0f;
    return logits_;
  }
  std::vector<std::vector<int32_t>> prompts;

 private:
  std::vector<int32_t> script_;
  int32_t last_;
  int64_t context_;
  size_t prompt_len_ = 0;
  std::vector<float> logits_;
};

tokenizer::ChatTemplate chatml_with_eos() {
  return tokenizer::ChatTemplate(tokenizer::ChatTemplate::chatml().source(), "", "<|endoftext|>");
}

std::vector<tokenizer::ChatMessage> long_history(int turns) {
  std::vector<tokenizer::ChatMessage> h = {{"system", "Be kind."}};
  for (int i = 0; i < turns; ++i) {
    h.push_back({"user", "question number " + std::to_string(i)});
    h.push_back({"assistant", "answer number " + std::to_string(i)});
  }
  return h;
}

}  // namespace

TEST(TemplateChat, EndOfTurnIdsAreEosAndTheTokenAfterAnAssistantMessage) {
  const auto& tok = chatml_tokenizer();
  const auto ids = infer::end_of_turn_ids(chatml_with_eos(), tok);
  EXPECT_EQ(
      ids, (std::vector<int32_t>{tok.token_to_id("<|endoftext|>"), tok.token_to_id("<|im_end|>")}));
  // A template whose end-of-turn text is not a special token of this tokenizer: eos only.
  const tokenizer::ChatTemplate llama3(
      "{% for m in messages %}<|start_header_id|>{{ m.role }}<|end_header_id|>\n\n{{ m.content }}"
      "<|eot_id|>{% endfor %}",
      "", "<|endoftext|>");
  EXPECT_EQ(infer::end_of_turn_ids(llama3, tok),
            (std::vector<int32_t>{tok.token_to_id("<|endoftext|>")}));
}

TEST(TemplateChat, StreamsTheReplyUntilImEndAndRecordsIt) {
  const auto& tok = chatml_tokenizer();
  const int32_t im_end = tok.token_to_id("<|im_end|>");
  std::vector<int32_t> script = tok.encode("Hello 안녕하세요 😀");
  script.push_back(im_end);
  const std::vector<int32_t> garbage = tok.encode("never shown");
  script.insert(script.end(), garbage.begin(), garbage.end());
  IdsDecoder d(script, im_end, 1000);
  std::vector<tokenizer::ChatMessage> history = {{"system", "Be kind."}};
  std::vector<std::string> pieces;
  const std::string reply =
      infer::template_chat_reply(d, tok, chatml_with_eos(), history, "hi", greedy(100),
                                 [&](std::string_view s) { pieces.emplace_back(s); });
  EXPECT_EQ(reply, "Hello 안녕하세요 😀");
  std::string joined;
  for (const auto& p : pieces) {
    EXPECT_EQ(tokenizer::utf8_find_invalid(p), -1) << "a piece splits a character";
    joined += p;
  }
  EXPECT_EQ(joined, reply);
  ASSERT_EQ(history.size(), 3u);
  EXPECT_EQ(history[1].role, "user");
  EXPECT_EQ(history[2].role, "assistant");
  EXPECT_EQ(history[2].content, reply);
  ASSERT_EQ(d.prompts.size(), 1u);
  // The prompt is the template's text, its special tokens encoded as single ids.
  EXPECT_EQ(tok.decode(d.prompts[0]),
            "<|im_start|>system\nBe "
            "kind.<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_EQ(std::count(d.prompts[0].begin(), d.prompts[0].end(), im_end), 2);
}

TEST(TemplateChat, FitsTheContextByDroppingOldTurnsKeepingTheSystemMessage) {
  const auto& tok = chatml_tokenizer();
  const auto tpl = chatml_with_eos();
  tokenizer::EncodeOptions special;
  special.allow_special = true;
  auto history = long_history(8);
  history.push_back({"user", "the new question"});
  const int64_t whole = static_cast<int64_t>(tok.encode(tpl.apply(history, true), special).size());
  EXPECT_EQ(infer::fit_template_prompt(tpl, history, tok, whole).first_message, 1u);
  for (int64_t budget : {whole - 1, whole / 2}) {
    const infer::TemplatePrompt p = infer::fit_template_prompt(tpl, history, tok, budget);
    ASSERT_GT(p.first_message, 1u);
    EXPECT_EQ(history[p.first_message].role, "user");  // whole turns only
    EXPECT_LE(static_cast<int64_t>(p.ids.size()), budget);
    const std::string text = tok.decode(p.ids);
    EXPECT_TRUE(text.starts_with("<|im_start|>system\nBe kind.<|im_end|>\n<|im_start|>user\n"))
        << text;
    EXPECT_TRUE(text.ends_with("the new question<|im_end|>\n<|im_start|>assistant\n")) << text;
    // One turn more would not fit: the fewest were dropped.
    std::vector<tokenizer::ChatMessage> more(history.begin(), history.begin() + 1);
    more.insert(more.end(), history.begin() + p.first_message - 2, history.end());
    EXPECT_GT(static_cast<int64_t>(tok.encode(tpl.apply(more, true), special).size()), budget);
  }
  try {
    infer::fit_template_prompt(tpl, history, tok, 10);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("with the system message but only 10 fit"),
              std::string::npos)
        << e.what();
  }
}

TEST(TemplateChat, TinyGptKeepsTheHistoryWithinItsContext) {
  const auto& tok = chatml_tokenizer();
  models::GPTConfig c;
  c.n_layer = 2;
  c.n_head = 2;
  c.n_embd = 16;
  c.block_size = 96;
  c.vocab_size = tok.vocab_size();
  models::GPT model(c, 7);
  model.eval();
  infer::GptDecoder decoder(model);
  const auto tpl = chatml_with_eos();
  std::vector<tokenizer::ChatMessage> history = {{"system", "Be kind."}};
  infer::GenerateOptions opt = greedy(16);
  opt.stop_ids.clear();  // the template's own end-of-turn ids stop it
  size_t dropped = 0;
  for (int round = 0; round < 6; ++round) {
    std::string shown;
    infer::ChatReplyInfo info;
    const std::string reply = infer::template_chat_reply(
        decoder, tok, tpl, history, "question " + std::to_string(round), opt,
        [&](std::string_view s) { shown += s; }, &info);
    EXPECT_EQ(shown, reply);
    EXPECT_EQ(reply.find("<|im_end|>"), std::string::npos);
    EXPECT_LE(info.stats.prompt_tokens + info.stats.new_tokens, c.block_size);
    EXPECT_LE(info.stats.new_tokens, 16);
    dropped = std::max(dropped, info.dropped_turns);
    ASSERT_EQ(history.size(), 3u + 2u * round);
    EXPECT_EQ(history.front().role, "system");
    EXPECT_EQ(history.back().role, "assistant");
    EXPECT_EQ(history.back().content, reply);
  }
  EXPECT_GT(dropped, 0u);  // six rounds do not fit in 96 tokens: old turns went
  // A template that refuses the history leaves it as it was.
  const tokenizer::ChatTemplate strict("{{ raise_exception('no') }}");
  const auto before = history.size();
  EXPECT_THROW(infer::template_chat_reply(decoder, tok, strict, history, "x", opt), Error);
  EXPECT_EQ(history.size(), before);
}
