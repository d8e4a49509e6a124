// `llmkit chat`: an interactive loop over a trained model. A pretrained (not instruction-tuned)
// model only continues text, so the conversation is kept as a transcript
// ("User: ...\nAssistant: ...") and the model writes the assistant's next line; generation stops
// at the next "User:" or end of text. Empty line or Ctrl-D ends the chat.
#include <cstdio>
#include <iostream>
#include <memory>

#include "llmkit/infer/generate.h"
#include "llmkit/train/checkpoint.h"
#include "tools/llmkit/command.h"

LLMKIT_COMMAND(
    {"chat", "Talk with a trained model (interactive)", [](CLI::App& sub) {
       auto dir = std::make_shared<std::string>();
       auto gen = std::make_shared<llmkit::infer::GenerateOptions>();
       gen->sampler.temperature = 0.8;
       gen->sampler.top_k = 50;
       gen->max_new_tokens = 100;
       sub.add_option("--model", *dir, "model directory")
           ->required()
           ->check(CLI::ExistingDirectory);
       sub.add_option("--temperature", gen->sampler.temperature, "0 = greedy")
           ->capture_default_str();
       sub.add_option("--max-new-tokens", gen->max_new_tokens, "per reply")->capture_default_str();
       sub.add_option("--seed", gen->sampler.seed, "sampling seed")->capture_default_str();
       return [dir, gen] {
         auto loaded = llmkit::train::load_decoder(*dir);
         const auto tok = llmkit::tokenizer::Tokenizer::load(*dir + "/tokenizer.json");
         if (auto eot = tok.find_token("<|endoftext|>")) gen->stop_ids.push_back(*eot);
         gen->stop_strings = {"\nUser:", "\n\n"};
         // An RNN has no context limit; keep its transcript to a few thousand tokens.
         const int64_t ctx = loaded.decoder->context() > 0 ? loaded.decoder->context() : 4096;
         std::string transcript;
         std::fprintf(stderr, "chatting with %s (context %lld tokens); empty line to quit\n",
                      dir->c_str(), static_cast<long long>(ctx));
         std::string line;
         while (std::fputs("you> ", stderr), std::getline(std::cin, line) && !line.empty()) {
           transcript += "User: " + line + "\nAssistant:";
           // Keep the most recent part of the transcript that leaves room to answer.
           while (static_cast<int64_t>(tok.encode(transcript).size()) + gen->max_new_tokens >=
                      ctx &&
                  transcript.size() > 1) {
             const size_t cut = transcript.find('\n', transcript.size() / 4);
             transcript = cut == std::string::npos ? transcript.substr(transcript.size() / 2)
                                                   : transcript.substr(cut + 1);
           }
           std::fputs("model>", stdout);
           const std::string reply = llmkit::infer::generate_text(
               *loaded.decoder, tok, transcript, *gen, [](std::string_view s) {
                 std::fwrite(s.data(), 1, s.size(), stdout);
                 std::fflush(stdout);
               });
           std::fputs("\n", stdout);
           transcript += reply + "\n";
           gen->sampler.seed += 1;
         }
       };
     }});
