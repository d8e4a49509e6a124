// `llmkit chat`: an interactive loop over a trained model (llmkit/infer/chat.h does the work: the
// transcript, trimming it to the context by dropping the oldest turns, and streaming replies
// without ever showing a stop string). Empty line or Ctrl-D ends the chat. --transcript starts
// from a saved conversation (or just a preamble); --save writes the conversation after each reply.
#include <cstdio>
#include <iostream>
#include <memory>

#include "llmkit/infer/chat.h"
#include "llmkit/io/atomic_file.h"
#include "llmkit/models/load.h"
#include "llmkit/tokenizer/read_file.h"
#include "tools/llmkit/command.h"

namespace {

struct ChatArgs {
  std::string dir, transcript, save;
  llmkit::infer::GenerateOptions gen;
};

void run_chat(ChatArgs& a) {
  auto loaded = llmkit::models::load(a.dir);
  auto decoder = llmkit::infer::make_decoder(loaded);
  LLMKIT_CHECK(loaded.tokenizer.has_value(), "'", a.dir, "' has no tokenizer");
  const auto& tok = *loaded.tokenizer;
  a.gen = llmkit::infer::with_model_stops(loaded, a.gen);
  llmkit::infer::Conversation conversation;
  if (!a.transcript.empty()) {
    conversation =
        llmkit::infer::parse_transcript(llmkit::tokenizer::read_file(a.transcript), a.transcript);
  }
  const int64_t ctx = decoder->context();
  std::fprintf(stderr,
               "chatting with %s (context %s tokens, %zu earlier turns); empty line to quit\n",
               a.dir.c_str(), ctx > 0 ? std::to_string(ctx).c_str() : "unbounded, kept to 4096",
               conversation.turns.size());
  std::string line;
  // "model>" goes out with the first piece of the reply, so an error prints none.
  while (std::fputs("you> ", stderr), std::getline(std::cin, line) && !line.empty()) {
    llmkit::infer::ChatReplyInfo info;
    bool started = false;
    try {
      llmkit::infer::chat_reply(
          *decoder, tok, conversation, line, a.gen,
          [&started](std::string_view s) {
            if (!started) std::fputs("model>", stdout);
            started = true;
            std::fwrite(s.data(), 1, s.size(), stdout);
            std::fflush(stdout);
          },
          &info);
    } catch (const llmkit::Error& e) {
      // A question too long for the context: say so and let the user try again.
      std::fprintf(stderr, "error: %s\n", e.what());
      continue;
    }
    std::fputs(started ? "\n" : "model>\n", stdout);
    if (info.dropped_turns > 0) {
      std::fprintf(stderr, "(the %zu oldest turns no longer fit the context and were left out)\n",
                   info.dropped_turns);
    }
    if (!a.save.empty()) llmkit::io::write_file_atomic(a.save, conversation.render());
    a.gen.sampler.seed += 1;
  }
}

}  // namespace

LLMKIT_COMMAND(
    {"chat", "Talk with a trained model (interactive)", [](CLI::App& sub) {
       auto a = std::make_shared<ChatArgs>();
       a->gen.sampler.temperature = 0.8;
       a->gen.sampler.top_k = 50;
       a->gen.max_new_tokens = 100;
       sub.add_option("--model", a->dir, "llmkit run dir, Hugging Face dir or .gguf file")
           ->required()
           ->check(CLI::ExistingPath);
       sub.add_option("--temperature", a->gen.sampler.temperature, "0 = greedy")
           ->capture_default_str()
           ->check(llmkit::cli::non_negative());
       sub.add_option("--max-new-tokens", a->gen.max_new_tokens,
                      "per reply (at most half the context)")
           ->capture_default_str()
           ->check(llmkit::cli::positive());
       sub.add_option("--seed", a->gen.sampler.seed, "sampling seed")->capture_default_str();
       sub.add_option("--transcript", a->transcript,
                      "start from a saved conversation: lines 'User: ...' and "
                      "'Assistant: ...'; text before the first is a preamble kept at "
                      "the top")
           ->check(CLI::ExistingFile);
       sub.add_option("--save", a->save,
                      "write the conversation to this file after each reply (the "
                      "--transcript format)");
       return [a] { run_chat(*a); };
     }});
