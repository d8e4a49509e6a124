// `llmkit translate`: translate a text with a trained encoder-decoder (t5 / bart run directory),
// or translate the held-out pairs of a parallel corpus and report corpus BLEU and chrF (JSON on
// the last line). The held-out split is the one training used (data/pairs.h: a hash of the
// source with the same --val-fraction).
#include <cstdio>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>

#include "llmkit/models/config_file.h"
#include "llmkit/train/translate.h"
#include "tools/llmkit/command.h"

namespace {
struct Args {
  std::string model_dir, text, pairs;
  int64_t limit = 0, examples = 5;
  double val_fraction = 0.05;
  llmkit::train::TranslateOptions opt;
};

void run(const Args& a) {
  using namespace llmkit;
  LLMKIT_CHECK(a.text.empty() != a.pairs.empty(), "translate: give --text or --pairs (one)");
  // load_t5 would report a decoder's fields as unknown T5 fields; name the real problem.
  const std::string cfg = a.model_dir + "/config.json";
  LLMKIT_CHECK(std::filesystem::exists(cfg), "'", a.model_dir,
               "' is not a model directory (no config.json)");
  const nlohmann::json mc = models::read_config_json(cfg);
  const std::string arch = mc.is_object() && mc.contains("arch") && mc["arch"].is_string()
                               ? mc["arch"].get<std::string>()
                               : "?";
  LLMKIT_CHECK(arch == "t5" || arch == "bart", "'", a.model_dir, "' holds a ", arch,
               " model; translate needs an encoder-decoder (t5 or bart)");
  auto model = train::load_t5(a.model_dir);
  const auto tok = tokenizer::Tokenizer::load(a.model_dir + "/tokenizer.json");
  if (!a.text.empty()) {
    std::printf("%s\n", train::translate(*model, tok, {a.text}, a.opt)[0].c_str());
    return;
  }
  std::vector<data::TextPair> train_pairs, held;
  data::split_pairs(data::read_pairs(a.pairs), a.val_fraction, train_pairs, held);
  LLMKIT_CHECK(!held.empty(), "translate: no held-out pairs in '", a.pairs, "'");
  if (a.limit > 0 && static_cast<int64_t>(held.size()) > a.limit) held.resize(a.limit);
  const auto r = train::evaluate_translation(*model, tok, held, a.opt);
  for (int64_t i = 0; i < std::min<int64_t>(a.examples, r.pairs); ++i)
    std::printf("src: %s\nref: %s\nhyp: %s\n\n", held[i].source.c_str(), held[i].target.c_str(),
                r.hypotheses[i].c_str());
  std::printf(
      "BLEU %.2f (%.1f/%.1f/%.1f/%.1f, BP %.3f, hyp %lld ref %lld)  chrF2 %.2f  "
      "%lld pairs in %.1f s\n",
      r.bleu.bleu, r.bleu.precisions[0], r.bleu.precisions[1], r.bleu.precisions[2],
      r.bleu.precisions[3], r.bleu.brevity_penalty, static_cast<long long>(r.bleu.hyp_len),
      static_cast<long long>(r.bleu.ref_len), r.chrf, static_cast<long long>(r.pairs), r.seconds);
  const nlohmann::json j = {{"bleu", r.bleu.bleu},
                            {"chrf", r.chrf},
                            {"brevity_penalty", r.bleu.brevity_penalty},
                            {"pairs", r.pairs},
                            {"seconds", r.seconds}};
  std::printf("%s\n", j.dump().c_str());
}
}  // namespace

LLMKIT_COMMAND({"translate", "Translate with a trained encoder-decoder (t5/bart)",
                [](CLI::App& sub) {
                  auto a = std::make_shared<Args>();
                  sub.add_option("--model", a->model_dir, "model directory")
                      ->required()
                      ->check(CLI::ExistingDirectory);
                  sub.add_option("--text", a->text,
                                 "text to translate (cut to the model's block_size tokens)");
                  sub.add_option("--pairs", a->pairs,
                                 "parallel corpus (TSV): translate its held-out pairs, report BLEU")
                      ->check(CLI::ExistingFile);
                  sub.add_option("--limit", a->limit, "score at most N held-out pairs (0 = all)")
                      ->capture_default_str()
                      ->check(llmkit::cli::non_negative());
                  sub.add_option("--val-fraction", a->val_fraction,
                                 "held-out fraction (as the training run's val_fraction)")
                      ->capture_default_str()
                      ->check(llmkit::cli::number_in(0.0, 0.5));
                  sub.add_option("--examples", a->examples, "example translations to print")
                      ->capture_default_str()
                      ->check(llmkit::cli::non_negative());
                  sub.add_option("--batch-size", a->opt.batch_size, "sentences decoded together")
                      ->capture_default_str()
                      ->check(llmkit::cli::positive());
                  sub.add_option("--no-repeat-ngram", a->opt.no_repeat_ngram,
                                 "never repeat an n-gram of this many tokens (0 = off)")
                      ->capture_default_str()
                      ->check(llmkit::cli::non_negative());
                  sub.add_option("--max-new-tokens", a->opt.max_new_tokens,
                                 "longest translation in tokens (0 = block_size)")
                      ->capture_default_str()
                      ->check(llmkit::cli::non_negative());
                  return [a] { run(*a); };
                }});
