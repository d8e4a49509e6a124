// `llmkit chat`: an interactive loop over a decoder, reading one question per line from stdin
// (a terminal or a pipe: a scripted exchange) until an empty line or EOF. A model with a chat
// template (an instruction-tuned one such as SmolLM2-Instruct, or any model given
// --chat-template) talks through it: the history of {role, content} messages is rendered by the
// template and trimmed to the context (llmkit/infer/chat.h, template_chat_reply). A model without
// one gets the transcript chat ("User: ... / Assistant: ...", --transcript/--save). Replies stream
// to stdout; prompts, statistics and per-question refusals go to stderr. Not here: the chat logic.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>
#include <optional>

#include <nlohmann/json.hpp>

#include "llmkit/infer/chat.h"
#include "llmkit/io/atomic_file.h"
#include "llmkit/models/load.h"
#include "llmkit/tokenizer/chat_template.h"
#include "llmkit/tokenizer/read_file.h"
#include "tools/llmkit/command.h"

namespace {

// Defaults when the user gives none: an instruction-tuned model answers best near greedy
// (SmolLM2's model card suggests temperature 0.2, top_p 0.9); a small pretrained model reads
// better with more randomness.
constexpr double kTemplateTemperature = 0.2, kTemplateTopP = 0.9;
constexpr int64_t kTemplateMaxNew = 256;
constexpr double kTranscriptTemperature = 0.8;
constexpr int kTranscriptTopK = 50;
constexpr int64_t kTranscriptMaxNew = 100;

struct ChatArgs {
  std::string dir, transcript, save, system, template_file;
  std::optional<double> temperature, top_p;
  std::optional<int> top_k;
  std::optional<int64_t> max_new_tokens;
  uint64_t seed = 0;
  bool stats = false;
};

std::string display_name(const std::string& path) {
  std::filesystem::path p(path);
  if (!p.has_filename()) p = p.parent_path();  // "dir/" -> "dir"
  return p.filename().string();
}

// "loaded SmolLM2-135M-Instruct.Q4_1.gguf (llama, 134.5M params, gguf) in 0.62 s"
void print_load_line(const llmkit::models::LoadedModel& m) {
  const double n = static_cast<double>(m.module ? m.module->num_parameters() : 0);
  char count[32];
  if (n >= 1e9)
    std::snprintf(count, sizeof count, "%.2fB", n / 1e9);
  else if (n >= 1e6)
    std::snprintf(count, sizeof count, "%.1fM", n / 1e6);
  else
    std::snprintf(count, sizeof count, "%.1fK", n / 1e3);
  std::fprintf(stderr, "loaded %s (%s, %s params, %s) in %.2f s\n", display_name(m.path).c_str(),
               m.arch.c_str(), count, llmkit::models::source_kind_name(m.source), m.load_seconds);
}

void print_reply_stats(const llmkit::infer::GenerateStats& st) {
  std::fprintf(stderr,
               "[stats] prompt %lld tokens, prefill %.0f tok/s; %lld new tokens, decode %.1f "
               "tok/s; stop: %s\n",
               static_cast<long long>(st.prompt_tokens),
               st.prompt_tokens / std::max(st.prefill_seconds, 1e-9),
               static_cast<long long>(st.new_tokens),
               st.new_tokens / std::max(st.decode_seconds, 1e-9), st.stop_reason.c_str());
}

// Reads the next question; false at EOF or an empty line. The "you> " prompt goes to stderr;
// when stdin is not a terminal the question is echoed after it, so a scripted session reads as
// a conversation.
bool next_question(std::string& line) {
  std::fputs("you> ", stderr);
  if (!std::getline(std::cin, line) || line.empty()) {
    std::fputs("\n", stderr);
    return false;
  }
  if (!isatty(STDIN_FILENO)) std::fprintf(stderr, "%s\n", line.c_str());
  return true;
}

// One round of either mode: streams the reply after "model> " (printed with the first piece,
// so a refused question prints none); a refusal is one "error: ..." line and the chat goes on.
template <class Reply>
bool answer(const Reply& reply, llmkit::infer::ChatReplyInfo& info) {
  bool started = false;
  try {
    reply([&started](std::string_view s) {
      if (!started) std::fputs("model> ", stdout);
      started = true;
      std::fwrite(s.data(), 1, s.size(), stdout);
      std::fflush(stdout);
    });
  } catch (const llmkit::Error& e) {
    // A question too long for the context: say so and let the user try again.
    std::fprintf(stderr, "error: %s\n", e.what());
    return false;
  }
  std::fputs(started ? "\n" : "model>\n", stdout);
  std::fflush(stdout);
  if (info.dropped_turns > 0) {
    std::fprintf(stderr, "(the %zu oldest turns no longer fit the context and were left out)\n",
                 info.dropped_turns);
  }
  return true;
}

void save_history(const std::string& path,
                  const std::vector<llmkit::tokenizer::ChatMessage>& history) {
  std::string out;
  for (const auto& m : history) {
    out += nlohmann::json{{"role", m.role}, {"content", m.content}}.dump(
        -1, ' ', false, nlohmann::json::error_handler_t::replace);
    out += '\n';
  }
  llmkit::io::write_file_atomic(path, out);
}

void run_chat(ChatArgs& a) {
  llmkit::models::LoadOptions lo;
  lo.gguf_module = false;  // the engine reads a .gguf's weights as stored
  auto loaded = llmkit::models::load(a.dir, lo);
  auto decoder = llmkit::infer::make_decoder(loaded);
  LLMKIT_CHECK(loaded.tokenizer.has_value(), "'", a.dir, "' has no tokenizer");
  const auto& tok = *loaded.tokenizer;

  // The template: --chat-template's file, else the model's own; checked up front (parsed and
  // rendered once) so a bad one is one error naming it, not a refusal of every question.
  std::optional<llmkit::tokenizer::ChatTemplate> tpl;
  try {
    const std::string source = a.template_file.empty()
                                   ? loaded.chat_template
                                   : llmkit::tokenizer::read_file(a.template_file);
    if (!source.empty()) {
      tpl.emplace(source, loaded.bos_token, loaded.eos_token);
      std::vector<llmkit::tokenizer::ChatMessage> probe;
      if (!a.system.empty()) probe.push_back({"system", a.system});
      probe.push_back({"user", "hi"});
      (void)tpl->apply(probe, true);
      (void)llmkit::infer::end_of_turn_ids(*tpl, tok);
    }
  } catch (const llmkit::Error& e) {
    if (a.template_file.empty())
      llmkit::fail("the chat template of '", a.dir, "': ", e.what(),
                   " (give another with --chat-template)");
    llmkit::fail("--chat-template '", a.template_file, "': ", e.what());
  }
  if (tpl && !a.transcript.empty())
    llmkit::fail("--transcript is for models without a chat template; '", a.dir,
                 "' has one (use --system for a system message)");

  llmkit::infer::GenerateOptions gen;
  gen.sampler.temperature =
      a.temperature.value_or(tpl ? kTemplateTemperature : kTranscriptTemperature);
  gen.sampler.top_k = a.top_k.value_or(tpl ? 0 : kTranscriptTopK);
  gen.sampler.top_p = a.top_p.value_or(tpl ? kTemplateTopP : 1.0);
  gen.max_new_tokens = a.max_new_tokens.value_or(tpl ? kTemplateMaxNew : kTranscriptMaxNew);
  gen.sampler.seed = a.seed;
  gen = llmkit::infer::with_model_stops(loaded, gen);

  if (a.stats) print_load_line(loaded);
  const int64_t ctx = decoder->context();
  std::fprintf(stderr, "chatting with %s (%s, context %s tokens); empty line to quit\n",
               display_name(a.dir).c_str(), tpl ? "chat template" : "transcript, no chat template",
               ctx > 0 ? std::to_string(ctx).c_str() : "unbounded, kept to 4096");

  std::string line;
  if (tpl) {
    std::vector<llmkit::tokenizer::ChatMessage> history;
    if (!a.system.empty()) history.push_back({"system", a.system});
    while (next_question(line)) {
      llmkit::infer::ChatReplyInfo info;
      const bool ok = answer(
          [&](const auto& on_text) {
            llmkit::infer::template_chat_reply(*decoder, tok, *tpl, history, line, gen, on_text,
                                               &info);
          },
          info);
      if (!ok) continue;
      if (a.stats) print_reply_stats(info.stats);
      if (!a.save.empty()) save_history(a.save, history);
      gen.sampler.seed += 1;
    }
    return;
  }

  llmkit::infer::Conversation conversation;
  if (!a.transcript.empty()) {
    conversation =
        llmkit::infer::parse_transcript(llmkit::tokenizer::read_file(a.transcript), a.transcript);
  }
  if (!a.system.empty()) conversation.preamble = a.system;
  if (!conversation.turns.empty())
    std::fprintf(stderr, "(%zu earlier turns from %s)\n", conversation.turns.size(),
                 a.transcript.c_str());
  while (next_question(line)) {
    llmkit::infer::ChatReplyInfo info;
    const bool ok = answer(
        [&](const auto& on_text) {
          llmkit::infer::chat_reply(*decoder, tok, conversation, line, gen, on_text, &info);
        },
        info);
    if (!ok) continue;
    if (a.stats) print_reply_stats(info.stats);
    if (!a.save.empty()) llmkit::io::write_file_atomic(a.save, conversation.render());
    gen.sampler.seed += 1;
  }
}

}  // namespace

LLMKIT_COMMAND(
    {"chat", "Talk with a model (interactive, or questions piped one per line)", [](CLI::App& sub) {
       auto a = std::make_shared<ChatArgs>();
       sub.footer(
           "A model with a chat template (SmolLM2-Instruct, ...) or --chat-template talks through "
           "the template, keeping the history within the context; other models continue a "
           "'User: ... / Assistant: ...' transcript. Defaults: with a template temperature 0.2, "
           "top-p 0.9, top-k off, 256 new tokens (SmolLM2's model card); without one "
           "temperature 0.8, top-k 50, 100 new tokens. Questions come one per line from stdin; "
           "an empty line or EOF ends the chat.");
       sub.add_option("--model", a->dir, "llmkit run dir, Hugging Face dir or .gguf file")
           ->required()
           ->check(CLI::ExistingPath);
       sub.add_option("--system", a->system,
                      "system message put first in the history (without it the template's own "
                      "default applies); without a template, the transcript's preamble");
       sub.add_option("--chat-template", a->template_file,
                      "Jinja chat template file to use instead of the model's own")
           ->check(CLI::ExistingFile);
       sub.add_option("--temperature", a->temperature,
                      "0 = greedy (default 0.2 with a chat template, else 0.8)")
           ->check(llmkit::cli::non_negative());
       sub.add_option("--top-k", a->top_k,
                      "keep the k most likely, 0 = off (default off with a chat template, else 50)")
           ->check(llmkit::cli::non_negative());
       sub.add_option("--top-p", a->top_p,
                      "nucleus sampling mass, 1 = off (default 0.9 with a chat template, else 1)")
           ->check(llmkit::cli::number_in(0.0, 1.0));
       sub.add_option("--max-new-tokens", a->max_new_tokens,
                      "per reply, at most half the context (default 256 with a chat template, "
                      "else 100)")
           ->check(llmkit::cli::positive());
       sub.add_option("--seed", a->seed, "sampling seed (+1 after each reply)")
           ->capture_default_str();
       sub.add_flag("--stats", a->stats,
                    "print the load time once and, after each reply, prompt and new tokens "
                    "with prefill and decode tokens/s (stderr)");
       sub.add_option("--transcript", a->transcript,
                      "without a chat template: start from a saved conversation, lines 'User: "
                      "...' and 'Assistant: ...'; text before the first is a preamble kept at "
                      "the top")
           ->check(CLI::ExistingFile);
       sub.add_option("--save", a->save,
                      "write the conversation to this file after each reply: the --transcript "
                      "format, or with a chat template JSON lines {\"role\", \"content\"}");
       return [a] { run_chat(*a); };
     }});
