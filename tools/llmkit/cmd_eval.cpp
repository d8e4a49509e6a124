// `llmkit eval`: how well a trained model (any family) does on a text file. The last line of
// stdout is JSON: {"loss": ..., "perplexity": ..., "tokens": ...} for next-token models (gpt,
// rnn) and span-corruption models (t5), {"loss": ..., "accuracy": ..., "tokens": ...} for masked-
// token models (bert: accuracy of the masked-token predictions). A Hugging Face directory or a
// .gguf (a pretrained decoder, through models::load) gets the perplexity over windows of
// --context tokens (default: the model's context, at most 1024).
#include <unistd.h>
#include <cstdio>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>

#include "llmkit/data/shards.h"
#include "llmkit/infer/generate.h"
#include "llmkit/io/json_file.h"
#include "llmkit/models/load.h"
#include "llmkit/train/checkpoint.h"
#include "llmkit/train/trainer.h"
#include "tools/llmkit/command.h"

namespace {

struct Args {
  std::string dir, file;
  int64_t batch = 8, context = 0;
};

std::string read_text(const std::string& file) {
  std::ifstream in(file, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  LLMKIT_CHECK(in.good() || in.eof(), "cannot read '", file, "'");
  return text.str();
}

// A pretrained decoder (Hugging Face directory or .gguf): perplexity of the file's tokens.
void run_eval_pretrained(const Args& a) {
  const llmkit::models::LoadedModel m = llmkit::models::load(a.dir);
  LLMKIT_CHECK(m.gpt != nullptr, "eval: ", a.dir, " holds a ", m.arch,
               " model; eval of a pretrained model needs a decoder (gpt, llama)");
  const std::vector<int32_t> ids = llmkit::infer::encode_prompt(m, read_text(a.file));
  const int64_t block = m.gpt->config().block_size;
  const int64_t ctx = a.context > 0 ? a.context : std::min<int64_t>(block, 1024);
  const double loss = llmkit::train::evaluate_tokens(*m.gpt, ids, a.batch, 0, ctx);
  std::printf("{\"loss\": %.6f, \"perplexity\": %.4f, \"tokens\": %zu, \"context\": %lld}\n", loss,
              std::exp(loss), ids.size(), static_cast<long long>(ctx));
}

void run_eval(const Args& a) {
  namespace fs = std::filesystem;
  const bool llmkit_dir =
      fs::is_directory(a.dir) && fs::exists(fs::path(a.dir) / "config.json") &&
      !llmkit::io::read_json_file(a.dir + "/config.json").contains("model_type");
  if (!llmkit_dir) return run_eval_pretrained(a);
  LLMKIT_CHECK(a.context == 0,
               "eval: --context applies to pretrained decoders (a Hugging Face "
               "directory or a .gguf); an llmkit run is evaluated at its block_size");
  const auto tok = llmkit::tokenizer::Tokenizer::load(a.dir + "/tokenizer.json");
  // The whole file becomes the validation shard (a temporary file, removed afterwards).
  const std::string shard =
      (fs::temp_directory_path() / ("llmkit-eval-" + std::to_string(getpid()) + ".bin")).string();
  struct Remove {
    std::string p;
    ~Remove() { std::remove(p.c_str()); }
  } cleanup{shard};
  const std::vector<int32_t> ids = tok.encode(read_text(a.file));
  llmkit::data::write_shard(shard, ids, tok.vocab_size());
  llmkit::train::TaskData td;
  td.val_shard = shard;
  td.tokenizer = &tok;
  td.quiet = true;
  auto task = llmkit::train::load_task(a.dir, td, a.batch);
  const llmkit::train::Metrics m = task->evaluate(0);
  const double loss = m.at("loss");
  if (task->headline_metric() == "perplexity")
    std::printf("{\"loss\": %.6f, \"perplexity\": %.4f, \"tokens\": %zu}\n", loss, std::exp(loss),
                ids.size());
  else
    std::printf("{\"loss\": %.6f, \"%s\": %.6f, \"tokens\": %zu}\n", loss,
                task->headline_metric().c_str(), m.at(task->headline_metric()), ids.size());
}

}  // namespace

LLMKIT_COMMAND(
    {"eval",
     "Loss and perplexity (or MLM accuracy) of a model (llmkit run, HF dir, .gguf) on a text file",
     [](CLI::App& sub) {
       auto a = std::make_shared<Args>();
       sub.add_option("--model", a->dir,
                      "an llmkit run directory, a Hugging Face directory or a .gguf file")
           ->required()
           ->check(CLI::ExistingPath);
       sub.add_option("--data", a->file, "text file")->required()->check(CLI::ExistingFile);
       sub.add_option("--batch-size", a->batch, "sequences per forward pass")
           ->capture_default_str()
           ->check(llmkit::cli::positive());
       sub.add_option("--context", a->context,
                      "tokens per window for a pretrained decoder (default: its context, at most "
                      "1024)")
           ->check(llmkit::cli::positive());
       return [a] { run_eval(*a); };
     }});
