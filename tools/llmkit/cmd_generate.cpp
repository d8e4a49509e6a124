// `llmkit generate`: continue a prompt with a trained model, streaming tokens to stdout.
#include <cstdio>
#include <memory>

#include "llmkit/infer/generate.h"
#include "llmkit/models/load.h"
#include "tools/llmkit/command.h"

namespace {
struct Args {
  std::string model_dir, prompt;
  llmkit::infer::GenerateOptions gen;
  bool no_cache = false, stats = false;
};
}  // namespace

LLMKIT_COMMAND(
    {"generate",
     "Generate text from a decoder: a trained GPT, llama-style or RNN run, a Hugging Face "
     "directory or a .gguf",
     [](CLI::App& sub) {
       auto a = std::make_shared<Args>();
       a->gen.sampler.temperature = 0.8;
       a->gen.sampler.top_k = 50;
       sub.add_option("--model", a->model_dir, "llmkit run dir, Hugging Face dir or .gguf file")
           ->required()
           ->check(CLI::ExistingPath);
       sub.add_option("--prompt", a->prompt, "text to continue")->required();
       sub.add_option("--max-new-tokens", a->gen.max_new_tokens, "tokens to generate")
           ->capture_default_str()
           ->check(llmkit::cli::positive());
       sub.add_option("--temperature", a->gen.sampler.temperature, "0 = greedy")
           ->capture_default_str()
           ->check(llmkit::cli::non_negative());
       sub.add_option("--top-k", a->gen.sampler.top_k, "keep the k most likely (0 = off)")
           ->capture_default_str()
           ->check(llmkit::cli::non_negative());
       sub.add_option("--top-p", a->gen.sampler.top_p, "nucleus sampling mass (1 = off)")
           ->capture_default_str()
           ->check(llmkit::cli::number_in(0.0, 1.0));
       sub.add_option("--repetition-penalty", a->gen.sampler.repetition_penalty, "1 = off")
           ->capture_default_str()
           ->check(llmkit::cli::positive());
       sub.add_option("--seed", a->gen.sampler.seed, "sampling seed")->capture_default_str();
       sub.add_option("--stop", a->gen.stop_strings, "stop when this text appears");
       sub.add_flag("--no-cache", a->no_cache, "recompute the whole sequence each step");
       sub.add_flag("--stats", a->stats, "print prefill/decode speed to stderr");
       return [a] {
         // The engine reads a .gguf's weights as stored; --no-cache recomputes with the
         // training forward (models::GPT), which needs them as f32.
         llmkit::models::LoadOptions lo;
         lo.gguf_module = a->no_cache;
         auto loaded = llmkit::models::load(a->model_dir, lo);
         std::unique_ptr<llmkit::infer::Decoder> decoder;
         if (a->no_cache && loaded.gpt != nullptr)
           decoder = std::make_unique<llmkit::infer::GptDecoder>(*loaded.gpt);
         else
           decoder = llmkit::infer::make_decoder(loaded);
         LLMKIT_CHECK(loaded.tokenizer.has_value(), "'", a->model_dir, "' has no tokenizer");
         const auto& tok = *loaded.tokenizer;
         a->gen = llmkit::infer::with_model_stops(loaded, a->gen);
         a->gen.use_cache = !a->no_cache;
         const std::vector<int32_t> prompt_ids = llmkit::infer::encode_prompt(loaded, a->prompt);
         llmkit::infer::GenerateStats st;
         // The prompt is echoed with the first token, not before: a prompt or an option that
         // generate_text rejects then leaves stdout empty, not a prompt followed by an error.
         bool echoed = false;
         auto echo = [&] {
           if (!echoed) std::fputs(a->prompt.c_str(), stdout);
           echoed = true;
         };
         llmkit::infer::generate_text_from_ids(
             *decoder, tok, prompt_ids, a->gen,
             [&](std::string_view s) {
               echo();
               std::fwrite(s.data(), 1, s.size(), stdout);
               std::fflush(stdout);
             },
             &st);
         echo();
         std::fputs("\n", stdout);
         if (a->stats)
           std::fprintf(stderr,
                        "load %.3f s; prefill %lld tokens in %.3f s (%.0f tok/s); decode %lld "
                        "tokens in %.3f s "
                        "(%.1f tok/s); stop: %s\n",
                        loaded.load_seconds, static_cast<long long>(st.prompt_tokens),
                        st.prefill_seconds, st.prompt_tokens / std::max(st.prefill_seconds, 1e-9),
                        static_cast<long long>(st.new_tokens), st.decode_seconds,
                        st.new_tokens / std::max(st.decode_seconds, 1e-9), st.stop_reason.c_str());
       };
     }});
