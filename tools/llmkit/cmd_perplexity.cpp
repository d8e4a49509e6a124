// `llmkit perplexity`: perplexity of a decoder on a text file by llama.cpp's method
// (infer/perplexity.h: chunks of --context tokens from an empty cache, the second half of each
// scored), so the quality cost of a quantisation type can be read off and compared with
// llama-perplexity's figures. Prints the running perplexity per chunk as llama.cpp does
// ("[1]12.3456,[2]...") and, as the last line of stdout, JSON: {"perplexity": ..., "loss": ...,
// "tokens_scored": ..., "chunks": ..., "context": ..., "weights": ..., "seconds": ...}. Not here:
// `llmkit eval` (the trainer's windowed loss of an llmkit run).
#include <cstdio>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "llmkit/core/parallel.h"
#include "llmkit/infer/engine.h"
#include "llmkit/infer/generate.h"
#include "llmkit/infer/perplexity.h"
#include "llmkit/models/gguf_export.h"
#include "llmkit/models/load.h"
#include "tools/llmkit/command.h"

namespace {

struct Args {
  std::string model, data, type = "f32";
  int64_t context = 512, chunks = 0;
  int threads = 0;
};

std::string read_text(const std::string& file) {
  std::ifstream in(file, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  LLMKIT_CHECK(in.good() || in.eof(), "perplexity: cannot read '", file, "'");
  return text.str();
}

double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

void run_perplexity(const Args& a) {
  using namespace llmkit;
  if (a.threads > 0) set_num_threads(a.threads);
  models::LoadOptions lo;
  lo.gguf_module = false;  // a .gguf runs on its mapped blocks, as stored; no f32 copy
  const models::LoadedModel m = models::load(a.model, lo);
  infer::EngineOptions eo;
  eo.weight_type = models::parse_file_type(a.type);
  eo.context = a.context;  // the engine caps it at the model's context
  infer::Engine engine(m, eo);
  infer::PerplexityOptions po;
  po.context = engine.context();
  po.chunks = a.chunks;
  // Like llama-perplexity: a model that starts its sequences with BOS sees BOS at every chunk's
  // start (the tokenised text also begins with it, through encode_prompt).
  po.bos_id = m.add_bos ? m.bos_id : -1;
  const std::vector<int32_t> ids = infer::encode_prompt(m, read_text(a.data));
  std::fprintf(stderr, "%s\n%zu tokens, %lld per chunk, %d threads\n", engine.describe().c_str(),
               ids.size(), static_cast<long long>(po.context), num_threads());
  const double t0 = now();
  const infer::PerplexityResult r = infer::perplexity(engine, ids, po, [](int64_t c, double ppl) {
    std::printf("[%lld]%.4f,", static_cast<long long>(c + 1), ppl);
    std::fflush(stdout);
  });
  const double secs = now() - t0;
  std::printf(
      "\nFinal estimate: PPL = %.4f over %lld tokens (%lld chunks of %lld), %.1f tokens/s\n",
      r.perplexity, static_cast<long long>(r.tokens_scored), static_cast<long long>(r.chunks),
      static_cast<long long>(r.context), static_cast<double>(r.chunks * r.context) / secs);
  const nlohmann::json j = {{"perplexity", r.perplexity},
                            {"loss", r.loss},
                            {"tokens_scored", r.tokens_scored},
                            {"chunks", r.chunks},
                            {"context", r.context},
                            {"weights", engine.describe()},
                            {"seconds", secs}};
  std::printf("%s\n", j.dump().c_str());
}

}  // namespace

LLMKIT_COMMAND(
    {"perplexity",
     "Perplexity of a decoder on a text file, by llama.cpp's method (chunks, second half scored)",
     [](CLI::App& sub) {
       auto a = std::make_shared<Args>();
       sub.add_option("--model", a->model,
                      "an llmkit run directory, a Hugging Face directory or "
                      "a .gguf file (gpt or llama)")
           ->required()
           ->check(CLI::ExistingPath);
       sub.add_option("--data", a->data, "text file")->required()->check(CLI::ExistingFile);
       sub.add_option("--context", a->context,
                      "tokens per chunk (llama.cpp's -c; at most the model's context)")
           ->capture_default_str()
           ->check(llmkit::cli::number_in(4, HUGE_VAL));
       sub.add_option("--chunks", a->chunks, "at most this many chunks (0: all)")
           ->capture_default_str()
           ->check(llmkit::cli::non_negative());
       sub.add_option("--type", a->type,
                      "weight type for f32 sources (f32, f16, q8_0, q4_0, q4_1, q4_k, q6_k); a "
                      ".gguf keeps its stored types")
           ->capture_default_str();
       sub.add_option("--threads", a->threads, "threads (default: LLMKIT_THREADS or all cores)")
           ->check(llmkit::cli::positive());
       return [a] { run_perplexity(*a); };
     }});
