// `llmkit eval`: how well a trained model (any family) does on a text file. The last line of
// stdout is JSON: {"loss": ..., "perplexity": ..., "tokens": ...} for next-token models (gpt,
// rnn) and span-corruption models (t5), {"loss": ..., "accuracy": ..., "tokens": ...} for masked-
// token models (bert: accuracy of the masked-token predictions).
#include <unistd.h>
#include <cstdio>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>

#include "llmkit/data/shards.h"
#include "llmkit/train/checkpoint.h"
#include "tools/llmkit/command.h"

namespace {

struct Args {
  std::string dir, file;
  int64_t batch = 8;
};

void run_eval(const Args& a) {
  namespace fs = std::filesystem;
  const auto tok = llmkit::tokenizer::Tokenizer::load(a.dir + "/tokenizer.json");
  // The whole file becomes the validation shard (a temporary file, removed afterwards).
  const std::string shard =
      (fs::temp_directory_path() / ("llmkit-eval-" + std::to_string(getpid()) + ".bin")).string();
  struct Remove {
    std::string p;
    ~Remove() { std::remove(p.c_str()); }
  } cleanup{shard};
  std::ifstream in(a.file, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  LLMKIT_CHECK(in.good() || in.eof(), "cannot read '", a.file, "'");
  const std::vector<int32_t> ids = tok.encode(text.str());
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
    {"eval", "Loss and perplexity (or MLM accuracy) of a model on a text file", [](CLI::App& sub) {
       auto a = std::make_shared<Args>();
       sub.add_option("--model", a->dir, "model directory")
           ->required()
           ->check(CLI::ExistingDirectory);
       sub.add_option("--data", a->file, "text file")->required()->check(CLI::ExistingFile);
       sub.add_option("--batch-size", a->batch, "sequences per forward pass")
           ->capture_default_str()
           ->check(llmkit::cli::positive());
       return [a] { run_eval(*a); };
     }});
