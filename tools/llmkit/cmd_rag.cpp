// `llmkit rag`: answer a question from a knowledge base (llmkit/retrieval/rag.h). Retrieves the
// best chunks of an index (hybrid search), gives them numbered to an instruction-tuned model with
// the question, streams the answer, then lists the sources with the ones it cited. When no chunk
// is close enough to the question it answers "I don't know from these sources" without asking the
// model. --no-retrieval asks the model alone (for comparison: what RAG is for).
#include <nlohmann/json.hpp>

#include <cstdio>
#include <memory>
#include <optional>

#include "llmkit/infer/chat.h"
#include "llmkit/models/load.h"
#include "llmkit/retrieval/indexer.h"
#include "llmkit/retrieval/rag.h"
#include "llmkit/tokenizer/chat_template.h"
#include "tools/llmkit/command.h"

namespace {

using namespace llmkit;
using namespace llmkit::retrieval;

struct Args {
  std::string db, model, question, mode = "hybrid", rerank = "none";
  std::vector<std::string> filters;
  int64_t k = 4, context_tokens = 1200, max_new_tokens = 200;
  double min_cosine = 0.35, temperature = 0, repetition_penalty = 1.1, attribution_min = 0.65;
  uint64_t seed = 0;
  bool json = false, no_retrieval = false, show_prompt = false;
};

void run_rag(const Args& a) {
  models::LoadOptions lo;
  lo.gguf_module = false;  // the engine reads a .gguf's weights as stored
  auto loaded = models::load(a.model, lo);
  LLMKIT_CHECK(loaded.tokenizer.has_value(), "rag: '", a.model, "' has no tokenizer");
  LLMKIT_CHECK(!loaded.chat_template.empty(), "rag: '", a.model,
               "' has no chat template; rag needs an instruction-tuned model (e.g. "
               "SmolLM2-135M-Instruct)");
  const auto& tok = *loaded.tokenizer;
  tokenizer::ChatTemplate tpl(loaded.chat_template, loaded.bos_token, loaded.eos_token);
  auto decoder = infer::make_decoder(loaded);

  RagPrompt prompt;
  std::optional<IndexEmbedder> embedder;  // the index's, also for attribution
  if (a.no_retrieval) {
    prompt.system = "You answer questions briefly and accurately.";
    prompt.user = a.question;
    prompt.answerable = true;
  } else {
    Store store = Store::open(a.db, Store::Mode::Read);
    embedder.emplace(load_index_embedder(store.config().embedder));
    const auto qv = embedder->embed(std::vector<std::string>{a.question}).at(0);
    RagOptions o;
    o.search.k = a.k;
    o.search.mode = parse_search_mode(a.mode);
    o.search.mmr = a.rerank == "mmr";
    if (bm25_alone_for_language(store, a.question, o.search))
      std::fprintf(stderr,
                   "rag: the embedder was trained on %s only; the sources are ranked by BM25 and "
                   "the --min-cosine threshold means little for this question\n",
                   store.config().embedder_languages.front().c_str());
    for (const auto& f : a.filters) o.search.filters.push_back(parse_condition(f));
    o.min_cosine = a.min_cosine;
    o.context_tokens = a.context_tokens;
    prompt = build_rag_prompt(
        store, a.question, qv,
        [&](std::string_view s) { return static_cast<int64_t>(tok.encode(s).size()); }, o);
  }
  if (a.show_prompt)
    std::fprintf(stderr, "--- system ---\n%s\n--- user ---\n%s\n---\n", prompt.system.c_str(),
                 prompt.user.c_str());

  std::string answer;
  if (!prompt.answerable) {
    answer = kNoAnswer;
    if (!a.json) std::printf("%s\n", answer.c_str());
    std::fprintf(stderr,
                 "rag: the best source's cosine with the question is %.3f, below "
                 "--min-cosine %.2f\n",
                 prompt.best_cosine, a.min_cosine);
  } else {
    infer::GenerateOptions gen;
    gen.sampler.temperature = a.temperature;
    gen.sampler.top_p = a.temperature > 0 ? 0.9 : 1.0;
    gen.sampler.seed = a.seed;
    gen.sampler.repetition_penalty = a.repetition_penalty;
    gen.max_new_tokens = a.max_new_tokens;
    gen = infer::with_model_stops(loaded, gen);
    std::vector<tokenizer::ChatMessage> history{{"system", prompt.system}};
    answer = infer::template_chat_reply(*decoder, tok, tpl, history, prompt.user, gen,
                                        [&](std::string_view piece) {
                                          if (a.json) return;
                                          std::fwrite(piece.data(), 1, piece.size(), stdout);
                                          std::fflush(stdout);
                                        });
    if (!a.json) std::printf("\n");
  }
  const auto cited = cited_sources(answer, static_cast<int>(prompt.sources.size()));
  std::vector<SentenceAttribution> attribution;
  if (prompt.answerable && embedder && !prompt.sources.empty())
    attribution = attribute_answer(
        answer, prompt.sources, [&](std::span<const std::string> t) { return embedder->embed(t); },
        a.attribution_min);
  const auto attributed = attributed_sources(attribution);
  auto contains = [](const std::vector<int>& v, int n) {
    return std::find(v.begin(), v.end(), n) != v.end();
  };
  if (a.json) {
    nlohmann::json sources = nlohmann::json::array();
    for (const auto& s : prompt.sources)
      sources.push_back({{"number", s.number},
                         {"cited", contains(cited, s.number)},
                         {"attributed", contains(attributed, s.number)},
                         {"chunk", s.hit.chunk.id},
                         {"doc", s.hit.chunk.doc_key},
                         {"path", s.hit.chunk.path},
                         {"first_line", s.hit.chunk.first_line},
                         {"last_line", s.hit.chunk.last_line},
                         {"heading", s.hit.chunk.heading},
                         {"cosine", s.hit.cosine},
                         {"text", s.hit.chunk.text}});
    nlohmann::json attribution_json = nlohmann::json::array();
    for (const auto& at : attribution)
      attribution_json.push_back({{"sentence", answer.substr(at.begin, at.end - at.begin)},
                                  {"source", at.source},
                                  {"cosine", at.cosine}});
    nlohmann::json j = {{"question", a.question},
                        {"answer", answer},
                        {"answerable", prompt.answerable},
                        {"best_cosine", prompt.best_cosine},
                        {"citations", cited},
                        {"attributed", attributed},
                        {"attribution", attribution_json},
                        {"sources", sources}};
    std::puts(j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
    return;
  }
  if (!prompt.sources.empty()) {
    if (prompt.answerable) {
      if (!attributed.empty()) {
        std::string list;
        for (int n : attributed) list += (list.empty() ? "[" : ", [") + std::to_string(n) + "]";
        std::printf(
            "\nSupported by %s (attributed: answer sentences whose nearest source sentence "
            "has cosine >= %.2f)\n",
            list.c_str(), a.attribution_min);
      } else {
        std::printf(
            "\nNo sentence of the answer matches a source sentence (cosine >= %.2f): "
            "check it against the sources.\n",
            a.attribution_min);
      }
    }
    std::printf("\nSources:\n");
    for (const auto& s : prompt.sources) {
      std::string mark;
      if (contains(cited, s.number)) mark += '*';
      if (contains(attributed, s.number)) mark += '+';
      std::printf("[%d]%-2s %s (cosine %.2f)\n", s.number, mark.c_str(),
                  source_label(s.hit.chunk).c_str(), s.hit.cosine);
    }
    std::printf("(* cited by the model, + attributed)\n");
  }
}

}  // namespace

LLMKIT_COMMAND(
    {"rag", "Answer a question from an index with an instruction-tuned model, citing the sources",
     [](CLI::App& sub) {
       auto a = std::make_shared<Args>();
       sub.add_option("--db", a->db, "the index directory (llmkit index create/add)");
       sub.add_option("--model", a->model,
                      "an instruction-tuned model with a chat template (e.g. "
                      "SmolLM2-135M-Instruct.Q4_1.gguf)")
           ->required();
       sub.add_option("--question,-q", a->question, "the question")->required();
       sub.add_option("--k,-k", a->k, "sources to retrieve")
           ->capture_default_str()
           ->check(CLI::Range(int64_t{1}, int64_t{50}));
       sub.add_option("--mode", a->mode, "retrieval: bm25 | dense | hybrid")
           ->capture_default_str()
           ->check(CLI::IsMember({"bm25", "dense", "hybrid"}));
       sub.add_option("--filter", a->filters, "metadata filter, as for `index search`");
       sub.add_option("--rerank", a->rerank, "none | mmr, as for `index search`")
           ->capture_default_str()
           ->check(CLI::IsMember({"none", "mmr"}));
       sub.add_option("--min-cosine", a->min_cosine,
                      "answer \"I don't know from these sources\" when the best source's cosine "
                      "with the question is below this (docs/rag.md calibrates it)")
           ->capture_default_str()
           ->check(llmkit::cli::number_in(-1, 1));
       sub.add_option("--attribution-min", a->attribution_min,
                      "an answer sentence is attributed to the source whose nearest sentence has "
                      "at least this cosine with it")
           ->capture_default_str()
           ->check(llmkit::cli::number_in(-1, 1));
       sub.add_option("--context-tokens", a->context_tokens, "token budget for the sources")
           ->capture_default_str()
           ->check(CLI::Range(int64_t{16}, int64_t{1} << 20));
       sub.add_option("--max-new-tokens", a->max_new_tokens, "longest answer")
           ->capture_default_str()
           ->check(CLI::Range(int64_t{1}, int64_t{1} << 20));
       sub.add_option("--temperature", a->temperature, "0 = greedy")
           ->capture_default_str()
           ->check(llmkit::cli::non_negative());
       sub.add_option("--repetition-penalty", a->repetition_penalty,
                      "divides the logits of tokens already in the prompt or answer (> 1: a "
                      "small model decoding greedily repeats itself less)")
           ->capture_default_str()
           ->check(llmkit::cli::number_in(0, 10, true));
       sub.add_option("--seed", a->seed, "sampling seed")->capture_default_str();
       sub.add_flag("--no-retrieval", a->no_retrieval,
                    "ask the model alone, without sources (to compare)");
       sub.add_flag("--show-prompt", a->show_prompt, "print the prompt to stderr");
       sub.add_flag("--json", a->json, "one JSON object: answer, citations, sources");
       return [a] {
         LLMKIT_CHECK(a->no_retrieval || !a->db.empty(), "rag: give --db (or --no-retrieval)");
         run_rag(*a);
       };
     }});
