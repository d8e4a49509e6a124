// `llmkit convert --from PATH --to DIR [--format hf|llmkit]`: loads any model models::load takes
// (llmkit run dir, Hugging Face dir, .gguf) and writes a model directory with Hugging Face tensor
// names: config.json (Hugging Face's or llmkit's), model.safetensors (f32), tokenizer.json,
// tokenizer_config.json (chat template, bos/eos). The logic is models::save_model_dir.
#include <cstdio>
#include <memory>

#include "llmkit/models/load.h"
#include "tools/llmkit/command.h"

namespace {
struct ConvertArgs {
  std::string from, to, format = "hf";
};
}  // namespace

LLMKIT_COMMAND({"convert", "Convert a model (llmkit dir, Hugging Face dir, .gguf) to a directory",
                [](CLI::App& sub) {
                  auto a = std::make_shared<ConvertArgs>();
                  sub.add_option("--from", a->from, "llmkit dir, Hugging Face dir or .gguf file")
                      ->required()
                      ->check(CLI::ExistingPath);
                  sub.add_option("--to", a->to, "output directory")->required();
                  sub.add_option("--format", a->format, "hf (transformers) or llmkit")
                      ->capture_default_str()
                      ->check(CLI::IsMember({"hf", "llmkit"}));
                  return [a] {
                    const auto m = llmkit::models::load(a->from);
                    llmkit::models::save_model_dir(m, a->to, a->format);
                    std::fprintf(stderr, "loaded %s (%s, %s) in %.2f s; wrote %s (%s)\n",
                                 a->from.c_str(), m.arch.c_str(),
                                 llmkit::models::source_kind_name(m.source), m.load_seconds,
                                 a->to.c_str(), a->format.c_str());
                  };
                }});
