// `llmkit embed`: sentence embeddings from a BERT encoder (e.g. all-MiniLM-L6-v2), one JSON line
// per text: {"embedding": [...]}. Pooling, normalisation and the max length default to what the
// model directory's sentence-transformers files say (mean + L2 normalise + 256 for MiniLM);
// flags override them. The work is infer::embed_texts.
#include <charconv>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>

#include "llmkit/infer/embed.h"
#include "tools/llmkit/command.h"

namespace {

struct Args {
  std::string model_dir, file, pooling;
  std::vector<std::string> texts;
  bool normalize = false, no_normalize = false;  // neither: the model's default
  int64_t max_len = 0, batch = 32;
  bool stats = false;
};

// {"embedding": [...]} with each float in its shortest round-trip form.
std::string embedding_json(const std::vector<float>& v) {
  std::string s = "{\"embedding\": [";
  char buf[32];
  for (size_t i = 0; i < v.size(); ++i) {
    if (i) s += ", ";
    const auto r = std::to_chars(buf, buf + sizeof buf, v[i]);
    s.append(buf, r.ptr);
  }
  return s + "]}";
}

}  // namespace

LLMKIT_COMMAND(
    {"embed", "Sentence embeddings from a BERT encoder, one JSON line per text", [](CLI::App& sub) {
       auto a = std::make_shared<Args>();
       sub.add_option("--model", a->model_dir,
                      "encoder model directory (config.json, model.safetensors, tokenizer.json; "
                      "e.g. all-MiniLM-L6-v2)")
           ->required();
       auto* text = sub.add_option("--text", a->texts, "a text to embed (repeatable)");
       auto* file = sub.add_option("--file", a->file,
                                   "texts, one per line (blank lines included; - = stdin)");
       text->excludes(file);
       sub.add_option("--pooling", a->pooling,
                      "mean | cls (default: the model's sentence-transformers Pooling, else mean)")
           ->check(CLI::IsMember({"mean", "cls"}));
       auto* norm = sub.add_flag("--normalize", a->normalize,
                                 "scale each vector to unit length (default: on when the model "
                                 "has a sentence-transformers Normalize module)");
       sub.add_flag("--no-normalize", a->no_normalize, "keep the pooled vectors as they are")
           ->excludes(norm);
       sub.add_option("--max-length", a->max_len,
                      "tokens per text, [CLS] and [SEP] included; longer texts are cut (default: "
                      "max_seq_length of sentence_bert_config.json, else the model's limit)")
           ->check(CLI::Range(int64_t{2}, int64_t{1} << 30));
       sub.add_option("--batch-size", a->batch, "texts per forward pass")
           ->capture_default_str()
           ->check(CLI::Range(int64_t{1}, int64_t{1} << 20));
       sub.add_flag("--stats", a->stats, "print texts/s to stderr");
       return [a, text, file] {
         LLMKIT_CHECK(text->count() > 0 || file->count() > 0, "embed: give --text or --file");
         // Every line is a text, a blank one too (it embeds as [CLS] [SEP], as
         // sentence-transformers embeds ""), so output line i belongs to input line i.
         const std::vector<std::string> texts =
             file->count() > 0 ? llmkit::cli::read_lines(a->file, "embed: --file") : a->texts;
         const auto t0 = std::chrono::steady_clock::now();
         auto e = llmkit::infer::load_embedder(a->model_dir);
         const auto pooling =
             a->pooling.empty() ? e.defaults.pooling : llmkit::models::parse_pooling(a->pooling);
         const bool normalize = a->normalize || (e.defaults.normalize && !a->no_normalize);
         const int64_t max_len = a->max_len > 0 ? a->max_len : e.defaults.max_len;
         const auto t1 = std::chrono::steady_clock::now();
         const auto vectors = llmkit::infer::embed_texts(*e.model, *e.tokenizer, texts, pooling,
                                                         normalize, max_len, a->batch);
         const auto t2 = std::chrono::steady_clock::now();
         for (const auto& v : vectors) std::puts(embedding_json(v).c_str());
         if (a->stats) {
           const double load = std::chrono::duration<double>(t1 - t0).count();
           const double run = std::chrono::duration<double>(t2 - t1).count();
           std::fprintf(stderr, "load %.3f s; %zu texts in %.3f s (%.1f texts/s)\n", load,
                        texts.size(), run, texts.size() / std::max(run, 1e-9));
         }
       };
     }});
