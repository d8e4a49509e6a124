// serve::Server (server.h): the OpenAI-compatible endpoints over cpp-httplib.
#include "llmkit/serve/server.h"

#include <httplib.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <sstream>

#include <nlohmann/json.hpp>

#include "llmkit/core/parallel.h"
#include "llmkit/infer/chat.h"
#include "llmkit/infer/embed.h"
#include "llmkit/infer/engine.h"
#include "llmkit/models/load.h"
#include "llmkit/retrieval/indexer.h"
#include "llmkit/retrieval/rag.h"
#include "llmkit/serve/metrics.h"
#include "llmkit/serve/openai.h"
#include "llmkit/serve/scheduler.h"
#include "llmkit/serve/web_assets.h"
#include "llmkit/tokenizer/chat_template.h"
#include "llmkit/tokenizer/read_file.h"

namespace llmkit::serve {

namespace fs = std::filesystem;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

bool constant_time_equal(const std::string& a, const std::string& b) {
  // Every byte of the longer string is read whatever the contents; only the lengths show.
  const size_t n = std::max(a.size(), b.size());
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < n; ++i) {
    const unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    const unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    diff |= static_cast<unsigned char>(x ^ y);
  }
  return diff == 0;
}

std::string resolve_static_path(const std::string& root, const std::string& path) {
  if (path.empty() || path[0] != '/') return "";
  if (path.find('\0') != std::string::npos || path.find('\\') != std::string::npos) return "";
  std::string rel = path == "/" ? "index.html" : path.substr(1);
  std::stringstream ss(rel);
  for (std::string seg; std::getline(ss, seg, '/');)
    if (seg == ".." || seg == "." || (seg.empty() && !ss.eof())) return "";
  std::error_code ec;
  const fs::path base = fs::canonical(root, ec);
  if (ec) return "";
  const fs::path file = fs::canonical(base / rel, ec);  // symbolic links resolved
  if (ec || !fs::is_regular_file(file, ec)) return "";
  const std::string b = base.string() + "/", f = file.string();
  return f.compare(0, b.size(), b) == 0 ? f : "";
}

namespace {

std::string mime_type(const std::string& path) {
  const auto dot = path.rfind('.');
  const std::string ext = dot == std::string::npos ? "" : path.substr(dot + 1);
  if (ext == "html") return "text/html; charset=utf-8";
  if (ext == "js") return "text/javascript; charset=utf-8";
  if (ext == "css") return "text/css; charset=utf-8";
  if (ext == "svg") return "image/svg+xml";
  if (ext == "png") return "image/png";
  if (ext == "json") return "application/json";
  if (ext == "txt" || ext == "md") return "text/plain; charset=utf-8";
  return "application/octet-stream";
}

// The float32 values' little-endian bytes in base64: encoding_format "base64", which the
// official client asks for by default.
std::string base64_floats(const std::vector<float>& v) {
  static const char* kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string bytes(v.size() * sizeof(float), '\0');
  for (size_t i = 0; i < v.size(); ++i) {
    uint32_t u;
    std::memcpy(&u, &v[i], 4);
    for (int b = 0; b < 4; ++b) bytes[4 * i + b] = static_cast<char>((u >> (8 * b)) & 0xff);
  }
  std::string out;
  for (size_t i = 0; i < bytes.size(); i += 3) {
    uint32_t n = static_cast<unsigned char>(bytes[i]) << 16;
    if (i + 1 < bytes.size()) n |= static_cast<unsigned char>(bytes[i + 1]) << 8;
    if (i + 2 < bytes.size()) n |= static_cast<unsigned char>(bytes[i + 2]);
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += i + 1 < bytes.size() ? kAlphabet[(n >> 6) & 63] : '=';
    out += i + 2 < bytes.size() ? kAlphabet[n & 63] : '=';
  }
  return out;
}

std::string dump(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string html_escape(std::string_view s) {
  std::string o;
  for (char c : s) {
    switch (c) {
      case '&':
        o += "&amp;";
        break;
      case '<':
        o += "&lt;";
        break;
      case '>':
        o += "&gt;";
        break;
      case '"':
        o += "&quot;";
        break;
      case '\'':
        o += "&#39;";
        break;
      default:
        o += c;
    }
  }
  return o;
}

std::string display_name(const std::string& path) {
  fs::path p(path);
  if (!p.has_filename()) p = p.parent_path();
  std::string name = p.filename().string();
  if (name.size() > 5 && name.ends_with(".gguf")) name.resize(name.size() - 5);
  return name;
}

std::vector<std::string> read_api_keys(const std::string& path) {
  std::ifstream in(path);
  LLMKIT_CHECK(in.good(), "serve: cannot read --api-key-file '", path, "'");
  std::vector<std::string> keys;
  for (std::string line; std::getline(in, line);) {
    const auto b = line.find_first_not_of(" \t\r");
    if (b == std::string::npos || line[b] == '#') continue;
    const auto e = line.find_last_not_of(" \t\r");
    keys.push_back(line.substr(b, e - b + 1));
  }
  LLMKIT_CHECK(!keys.empty(), "serve: --api-key-file '", path, "' holds no key");
  return keys;
}

const char* finish_reason(const std::string& f) {
  return f == "length" ? "length" : "stop";
}

json bytes_of(const std::string& s) {
  json b = json::array();
  for (unsigned char c : s) b.push_back(static_cast<int>(c));
  return b;
}

// Per-token log-probabilities in the chat API's shape.
json chat_logprobs(const std::vector<TokenLogprob>& lps, const tokenizer::Tokenizer& tok) {
  json content = json::array();
  for (const TokenLogprob& lp : lps) {
    json top = json::array();
    for (const auto& [id, v] : lp.top) {
      const std::string t = tok.decode(std::span<const int32_t>(&id, 1));
      top.push_back({{"token", t}, {"logprob", v}, {"bytes", bytes_of(t)}});
    }
    content.push_back({{"token", lp.token},
                       {"logprob", lp.logprob},
                       {"bytes", bytes_of(lp.token)},
                       {"top_logprobs", top}});
  }
  return {{"content", content}};
}

// The legacy completions shape; text_offset counts bytes from `offset`.
json completion_logprobs(const std::vector<TokenLogprob>& lps, const tokenizer::Tokenizer& tok,
                         size_t offset) {
  json tokens = json::array(), values = json::array(), tops = json::array(),
       offsets = json::array();
  for (const TokenLogprob& lp : lps) {
    tokens.push_back(lp.token);
    values.push_back(lp.logprob);
    json top = json::object();
    for (const auto& [id, v] : lp.top) top[tok.decode(std::span<const int32_t>(&id, 1))] = v;
    tops.push_back(top);
    offsets.push_back(offset);
    offset += lp.token.size();
  }
  return {{"tokens", tokens},
          {"token_logprobs", values},
          {"top_logprobs", tops},
          {"text_offset", offsets}};
}

// What one choice produced, gathered from its events.
struct ChoiceResult {
  std::string text, finish, error;
  std::vector<TokenLogprob> logprobs;
};

// What a generation handler streams or returns: the request's framing.
struct Reply {
  bool chat = true;
  std::string id, model;
  int64_t created = 0;
  int n = 1;
  bool include_usage = false, logprobs = false;
  json sources;  // RAG: the numbered sources (null otherwise)
  std::shared_ptr<Stream> stream;
  const tokenizer::Tokenizer* tok = nullptr;
  // Streaming state.
  bool started = false;
  bool done_sent = false;          // "data: [DONE]" reached the socket: the reply is complete
  std::vector<std::string> texts;  // each choice's text so far (citations)
  std::vector<size_t> offsets;     // completions: text_offset
  Clock::time_point t0, last_write;
};

json usage_json(const Usage& u) {
  json j = {{"prompt_tokens", u.prompt_tokens},
            {"completion_tokens", u.completion_tokens},
            {"total_tokens", u.prompt_tokens + u.completion_tokens}};
  if (u.cached_tokens > 0) j["prompt_tokens_details"] = {{"cached_tokens", u.cached_tokens}};
  return j;
}

json chunk_base(const Reply& r) {
  return {{"id", r.id},
          {"object", r.chat ? "chat.completion.chunk" : "text_completion"},
          {"created", r.created},
          {"model", r.model}};
}

std::string sse(const json& j) {
  return "data: " + dump(j) + "\n\n";
}

// The SSE events of a batch of scheduler events.
std::string stream_events(Reply& r, const std::vector<Event>& events) {
  std::string out;
  for (const Event& e : events) {
    if (e.finish == "cancelled") continue;
    if (e.finish == "error") {
      out += sse(error_body(e.error, "server_error"));
      continue;
    }
    json choice = {{"index", e.choice}};
    if (r.chat) {
      json delta = json::object();
      if (!e.text.empty()) delta["content"] = e.text;
      choice["delta"] = delta;
      choice["logprobs"] =
          r.logprobs && !e.logprobs.empty() ? chat_logprobs(e.logprobs, *r.tok) : json(nullptr);
    } else {
      choice["text"] = e.text;
      choice["logprobs"] = r.logprobs && !e.logprobs.empty()
                               ? completion_logprobs(e.logprobs, *r.tok, r.offsets[e.choice])
                               : json(nullptr);
      for (const auto& lp : e.logprobs) r.offsets[e.choice] += lp.token.size();
    }
    r.texts[e.choice] += e.text;
    choice["finish_reason"] = e.finish.empty() ? json(nullptr) : json(finish_reason(e.finish));
    json chunk = chunk_base(r);
    chunk["choices"] = json::array({choice});
    if (!e.finish.empty() && !r.sources.is_null())
      chunk["citations"] =
          retrieval::cited_sources(r.texts[e.choice], static_cast<int>(r.sources.size()));
    out += sse(chunk);
  }
  return out;
}

}  // namespace

struct Server::Impl {
  ServerOptions o;
  models::LoadedModel loaded;
  std::unique_ptr<infer::Engine> engine;
  std::unique_ptr<Scheduler> sched;
  const tokenizer::Tokenizer* tok = nullptr;
  std::optional<tokenizer::ChatTemplate> tpl;
  std::vector<int32_t> eos_ids, turn_ids;
  std::string model_id, embed_id, description;
  int64_t created = 0;

  std::optional<infer::Embedder> embedder;                 // --embed-model
  std::optional<retrieval::IndexEmbedder> index_embedder;  // the --db index's own
  std::optional<retrieval::Store> store;
  std::mutex embed_mu, store_mu;

  std::vector<std::string> keys;
  Metrics metrics;
  httplib::Server http;
  // Each fixed path's metrics label, as routes() registers it.
  std::map<std::string, std::string> route_labels;

  explicit Impl(const ServerOptions& options);
  void routes();
  // The metrics label of a request path: its route's, "chunks" or "static".
  std::string endpoint_of(const std::string& path) const;
  bool authorised(const httplib::Request& req) const;

  // Handlers; each may throw ApiError (and llmkit::Error: 400).
  void chat(const httplib::Request& req, httplib::Response& res, bool& streaming);
  void completion(const httplib::Request& req, httplib::Response& res, bool& streaming);
  void embeddings(const httplib::Request& req, httplib::Response& res);
  void models(httplib::Response& res);
  void health(httplib::Response& res);
  void chunk_page(const httplib::Request& req, httplib::Response& res);
  void static_file(const httplib::Request& req, httplib::Response& res);

  std::vector<std::vector<float>> embed(std::span<const std::string> texts, int64_t* tokens);
  void check_model(const std::string& requested) const;
  Job make_job(const GenerationFields& g, std::vector<int32_t> prompt) const;
  std::shared_ptr<Stream> submit(Job job);
  void start(httplib::Response& res, std::shared_ptr<Reply> r, const GenerationFields& g, Job job,
             bool& streaming);
  void respond(httplib::Response& res, std::shared_ptr<Reply> r, bool stream, const char* endpoint,
               bool& streaming);
};

Server::Impl::Impl(const ServerOptions& options) : o(options) {
  // A write to a client that has gone must fail (and cancel its generation), not kill the process.
  std::signal(SIGPIPE, SIG_IGN);
  LLMKIT_CHECK(o.slots >= 1 && o.slots <= 256, "serve: --slots must be in [1, 256], got ", o.slots);
  LLMKIT_CHECK(o.context >= 0, "serve: --context must be >= 0");
  LLMKIT_CHECK(o.max_tokens >= 1, "serve: --max-tokens must be >= 1");
  LLMKIT_CHECK(o.max_connections >= 1, "serve: --max-connections must be >= 1");
  if (o.threads > 0) set_num_threads(o.threads);
  if (!o.api_key_file.empty()) keys = read_api_keys(o.api_key_file);
  models::LoadOptions lo;
  lo.gguf_module = false;  // the engine reads a .gguf's weights as stored
  loaded = models::load(o.model, lo);
  LLMKIT_CHECK(loaded.gpt_config.has_value(), "serve: '", o.model, "' holds a ", loaded.arch,
               " model; serve runs decoders (gpt, llama)");
  LLMKIT_CHECK(loaded.tokenizer.has_value(), "serve: '", o.model, "' has no tokenizer");
  tok = &*loaded.tokenizer;
  infer::EngineOptions eo;
  eo.context = o.context;
  eo.slots = o.slots;
  eo.batch_invariant = o.batch_invariant;
  // The KV memory the slots may take, checked before anything is reserved.
  {
    const auto& c = *loaded.gpt_config;
    const int64_t ctx =
        o.context > 0 ? std::min(o.context, c.block_size) : std::min<int64_t>(c.block_size, 4096);
    const double per_token = 2.0 * static_cast<double>(c.n_layer * c.kv_heads()) *
                             static_cast<double>(c.n_embd / c.n_head) * sizeof(float);
    const double mib = per_token * static_cast<double>(ctx) * o.slots / (1 << 20);
    LLMKIT_CHECK(mib <= static_cast<double>(o.kv_memory_mib), "serve: ", o.slots, " slots x ", ctx,
                 " tokens need ", static_cast<int64_t>(mib + 0.5),
                 " MiB of KV cache, over --kv-memory ", o.kv_memory_mib,
                 " MiB; lower --slots or --context, or raise --kv-memory");
  }
  engine = std::make_unique<infer::Engine>(loaded, eo);
  model_id = display_name(o.model);
  description = engine->describe();
  infer::GenerateOptions stops = infer::with_model_stops(loaded, {});
  eos_ids = stops.stop_ids;
  if (!loaded.chat_template.empty()) {
    try {
      tpl.emplace(loaded.chat_template, loaded.bos_token, loaded.eos_token);
      turn_ids = infer::end_of_turn_ids(*tpl, *tok);
    } catch (const Error& e) {
      fail("serve: the chat template of '", o.model, "': ", e.what());
    }
  }
  for (int32_t id : eos_ids)
    if (std::find(turn_ids.begin(), turn_ids.end(), id) == turn_ids.end()) turn_ids.push_back(id);
  if (!o.embed_model.empty()) {
    embedder.emplace(infer::load_embedder(o.embed_model));
    embed_id = display_name(o.embed_model);
  }
  if (!o.db.empty()) {
    store.emplace(retrieval::Store::open(o.db, retrieval::Store::Mode::Read));
    index_embedder.emplace(retrieval::load_index_embedder(store->config().embedder));
    LLMKIT_CHECK(tpl.has_value(),
                 "serve: --db needs an instruction-tuned model with a chat "
                 "template; '",
                 o.model, "' has none");
    if (embed_id.empty()) embed_id = display_name(index_embedder->dir);
  }
  SchedulerOptions so;
  so.max_queue = o.max_queue;
  sched = std::make_unique<Scheduler>(*engine, *tok, so);
  created = static_cast<int64_t>(std::time(nullptr));
  routes();
}

bool Server::Impl::authorised(const httplib::Request& req) const {
  if (keys.empty()) return true;
  const std::string h = req.get_header_value("Authorization");
  const std::string given = h.rfind("Bearer ", 0) == 0 ? h.substr(7) : std::string();
  bool ok = false;
  for (const std::string& k : keys) ok |= constant_time_equal(given, k);  // no early exit
  return ok;
}

void Server::Impl::check_model(const std::string& requested) const {
  if (requested.empty() || requested == model_id) return;
  throw ApiError(
      404, "invalid_request_error",
      "The model '" + requested + "' does not exist; this server serves '" + model_id + "'",
      "model", "model_not_found");
}

Job Server::Impl::make_job(const GenerationFields& g, std::vector<int32_t> prompt) const {
  Job job;
  const int64_t room = sched->context() - static_cast<int64_t>(prompt.size());
  if (room < 1)
    throw ApiError(400, "invalid_request_error",
                   detail::concat("This model's context holds ", sched->context(),
                                  " tokens, but the prompt has ", prompt.size(),
                                  " tokens (prompt and reply together must fit): shorten it"),
                   "messages", "context_length_exceeded");
  if (g.max_tokens && *g.max_tokens > o.max_tokens)
    bad_request(detail::concat("'max_tokens' must be at most ", o.max_tokens,
                               " on this server, got ", *g.max_tokens),
                "max_tokens");
  job.max_tokens = std::min(g.max_tokens.value_or(o.max_tokens), room);
  job.prompt = std::move(prompt);
  if (g.n > sched->slots())
    bad_request(detail::concat("'n' must be at most ", sched->slots(), " (the server's slots)"),
                "n");
  job.n = g.n;
  job.sampler.temperature = g.temperature;
  job.sampler.top_p = g.top_p;
  job.sampler.top_k = g.top_k;
  job.sampler.repetition_penalty = g.repetition_penalty;
  job.sampler.frequency_penalty = g.frequency_penalty;
  job.sampler.presence_penalty = g.presence_penalty;
  job.sampler.seed = g.seed ? *g.seed : std::random_device{}();
  job.stop_strings = g.stop;
  job.logprobs = g.logprobs;
  return job;
}

std::shared_ptr<Stream> Server::Impl::submit(Job job) {
  try {
    return sched->submit(std::move(job));
  } catch (const Overloaded& e) {
    throw ApiError(503, "server_error", e.what(), "", "overloaded");
  } catch (const ContextOverflow& e) {
    throw ApiError(400, "invalid_request_error", e.what(), "messages", "context_length_exceeded");
  }
}

std::vector<std::vector<float>> Server::Impl::embed(std::span<const std::string> texts,
                                                    int64_t* tokens) {
  std::lock_guard lock(embed_mu);
  if (embedder) {
    const auto& d = embedder->defaults;
    for (const auto& t : texts)
      *tokens += static_cast<int64_t>(
          infer::bert_input_ids(*embedder->tokenizer, t,
                                d.max_len > 0 ? d.max_len : embedder->model->config().block_size)
              .size());
    return infer::embed_texts(*embedder->model, *embedder->tokenizer, texts, d.pooling, d.normalize,
                              d.max_len);
  }
  if (index_embedder) {
    for (const auto& t : texts) *tokens += index_embedder->count_tokens(t) + 2;
    return index_embedder->embed(texts);
  }
  bad_request(
      "this server has no embedding model: start it with --embed-model DIR (a "
      "sentence-transformers model such as all-MiniLM-L6-v2) or --db",
      "model");
}

// ---- Chat and text completions ----

void Server::Impl::chat(const httplib::Request& req, httplib::Response& res, bool& streaming) {
  ChatRequest cr = parse_chat_request(req.body);
  check_model(cr.gen.model);
  for (const auto& m : cr.messages)
    if (!valid_utf8(m.content)) bad_request("a message is not valid UTF-8", "messages");
  auto r = std::make_shared<Reply>();
  r->chat = true;
  // RAG: the last user message is the question; the model gets the numbered sources with it.
  if (store && cr.rag.value_or(true) && cr.messages.back().role == "user") {
    const std::string question = cr.messages.back().content;
    int64_t ignored = 0;
    const auto qv = embed(std::vector<std::string>{question}, &ignored).at(0);
    retrieval::RagOptions ro;
    ro.search.k = o.rag_k;
    ro.min_cosine = o.rag_min_cosine;
    ro.context_tokens = o.rag_context_tokens;
    retrieval::RagPrompt p;
    {
      std::lock_guard lock(store_mu);
      p = retrieval::build_rag_prompt(
          *store, question, qv,
          [&](std::string_view t) { return static_cast<int64_t>(tok->encode(t).size()); }, ro);
    }
    r->sources = json::array();
    for (const auto& src : p.sources)
      r->sources.push_back({{"number", src.number},
                            {"label", retrieval::source_label(src.hit.chunk)},
                            {"path", src.hit.chunk.path},
                            {"first_line", src.hit.chunk.first_line},
                            {"last_line", src.hit.chunk.last_line},
                            {"heading", src.hit.chunk.heading},
                            {"chunk", src.hit.chunk.id},
                            {"url", "/chunks/" + std::to_string(src.hit.chunk.id)},
                            {"cosine", src.hit.cosine},
                            {"text", src.hit.chunk.text}});
    if (!p.answerable) {
      // Nothing relevant: the fixed answer, without asking the model.
      r->sources = json::array();
      const std::string text = retrieval::kNoAnswer;
      json choices = json::array();
      for (int i = 0; i < cr.gen.n; ++i)
        choices.push_back({{"index", i},
                           {"message", {{"role", "assistant"}, {"content", text}}},
                           {"logprobs", nullptr},
                           {"finish_reason", "stop"}});
      const json usage = {{"prompt_tokens", 0}, {"completion_tokens", 0}, {"total_tokens", 0}};
      if (!cr.gen.stream) {
        res.set_content(dump({{"id", new_id("chatcmpl-")},
                              {"object", "chat.completion"},
                              {"created", static_cast<int64_t>(std::time(nullptr))},
                              {"model", model_id},
                              {"choices", choices},
                              {"usage", usage},
                              {"sources", r->sources},
                              {"best_cosine", p.best_cosine}}),
                        "application/json");
        return;
      }
      json base = {{"id", new_id("chatcmpl-")},
                   {"object", "chat.completion.chunk"},
                   {"created", static_cast<int64_t>(std::time(nullptr))},
                   {"model", model_id}};
      std::string body;
      for (int i = 0; i < cr.gen.n; ++i) {
        json c = base;
        c["choices"] = {{{"index", i},
                         {"delta", {{"role", "assistant"}, {"content", text}}},
                         {"logprobs", nullptr},
                         {"finish_reason", "stop"}}};
        if (i == 0) c["sources"] = json::array();
        body += sse(c);
      }
      if (cr.gen.include_usage) {
        json c = base;
        c["choices"] = json::array();
        c["usage"] = usage;
        body += sse(c);
      }
      body += "data: [DONE]\n\n";
      res.set_header("Cache-Control", "no-cache");
      res.set_content(body, "text/event-stream");
      return;
    }
    std::vector<tokenizer::ChatMessage> msgs;
    std::string system = p.system;
    for (const auto& m : cr.messages)
      if (m.role == "system") system += "\n\n" + m.content;
    msgs.push_back({"system", system});
    for (size_t i = 0; i + 1 < cr.messages.size(); ++i)
      if (cr.messages[i].role != "system") msgs.push_back(cr.messages[i]);
    msgs.push_back({"user", p.user});
    cr.messages = std::move(msgs);
  }
  std::vector<int32_t> prompt;
  std::vector<std::string> stops = cr.gen.stop;
  std::vector<int32_t> stop_ids;
  if (tpl) {
    tokenizer::EncodeOptions special;
    special.allow_special = true;
    prompt = tok->encode(tpl->apply(cr.messages, true), special);
    stop_ids = turn_ids;
  } else {
    // A model without a chat template continues a "User: ... / Assistant:" transcript.
    infer::Conversation conv;
    for (const auto& m : cr.messages) {
      if (m.role == "system")
        conv.preamble += (conv.preamble.empty() ? "" : "\n") + m.content;
      else
        conv.add(m.role == "user" ? infer::Role::kUser : infer::Role::kAssistant, m.content);
    }
    prompt = infer::encode_prompt(loaded, conv.prompt());
    for (auto& s : infer::chat_stop_strings()) stops.push_back(s);
    stop_ids = eos_ids;
  }
  Job job = make_job(cr.gen, std::move(prompt));
  job.stop_strings = stops;
  job.stop_ids = stop_ids;
  start(res, r, cr.gen, std::move(job), streaming);
}

void Server::Impl::completion(const httplib::Request& req, httplib::Response& res,
                              bool& streaming) {
  CompletionRequest cr = parse_completion_request(req.body);
  check_model(cr.gen.model);
  if (!valid_utf8(cr.prompt)) bad_request("'prompt' is not valid UTF-8", "prompt");
  if (cr.prompt.empty()) bad_request("'prompt' is empty", "prompt");
  Job job = make_job(cr.gen, infer::encode_prompt(loaded, cr.prompt));
  job.stop_ids = eos_ids;
  auto r = std::make_shared<Reply>();
  r->chat = false;
  start(res, r, cr.gen, std::move(job), streaming);
}

// Queues the job of a chat or text completion and answers it.
void Server::Impl::start(httplib::Response& res, std::shared_ptr<Reply> r,
                         const GenerationFields& g, Job job, bool& streaming) {
  r->id = new_id(r->chat ? "chatcmpl-" : "cmpl-");
  r->model = model_id;
  r->created = static_cast<int64_t>(std::time(nullptr));
  r->n = job.n;
  r->include_usage = g.include_usage;
  r->logprobs = g.logprobs >= 0;
  r->tok = tok;
  r->stream = submit(std::move(job));
  respond(res, r, g.stream, r->chat ? "chat" : "completions", streaming);
}

// Streams `r` as SSE, or waits for it and answers one JSON object.
void Server::Impl::respond(httplib::Response& res, std::shared_ptr<Reply> r, bool stream,
                           const char* endpoint, bool& streaming) {
  Impl& s = *this;
  r->texts.assign(static_cast<size_t>(r->n), "");
  r->offsets.assign(static_cast<size_t>(r->n), 0);
  r->t0 = r->last_write = Clock::now();
  if (stream) {
    streaming = true;
    res.set_header("Cache-Control", "no-cache");
    res.set_header("X-Accel-Buffering", "no");
    std::string ep = endpoint;
    res.set_chunked_content_provider(
        "text/event-stream",
        [r](size_t, httplib::DataSink& sink) {
          std::vector<Event> events;
          std::string out;
          if (!r->started) {
            r->started = true;
            for (int i = 0; i < r->n; ++i) {
              json c = chunk_base(*r);
              if (r->chat)
                c["choices"] = {{{"index", i},
                                 {"delta", {{"role", "assistant"}, {"content", ""}}},
                                 {"logprobs", nullptr},
                                 {"finish_reason", nullptr}}};
              else
                continue;
              if (i == 0 && !r->sources.is_null()) c["sources"] = r->sources;
              out += sse(c);
            }
          } else {
            const bool more = r->stream->next(events, std::chrono::milliseconds(100));
            out = stream_events(*r, events);
            // While nothing comes (queued, or a long prompt being read), an SSE comment every
            // half second: writing is how a client that has gone away is noticed.
            const auto now = Clock::now();
            if (!out.empty()) {
              r->last_write = now;
            } else if (now - r->last_write > std::chrono::milliseconds(500)) {
              out = ": waiting\n\n";
              r->last_write = now;
            }
            if (!more) {
              if (r->include_usage) {
                json c = chunk_base(*r);
                c["choices"] = json::array();
                c["usage"] = usage_json(r->stream->usage());
                out += sse(c);
              }
              out += "data: [DONE]\n\n";
              if (!sink.write(out.data(), out.size())) {
                r->stream->cancel();
                return false;
              }
              r->done_sent = true;
              sink.done();
              return true;
            }
          }
          if (!sink.is_writable() || (!out.empty() && !sink.write(out.data(), out.size()))) {
            r->stream->cancel();  // the client went away: free its slot at the next step
            return false;
          }
          return true;
        },
        [r, &s, ep](bool written) {
          // A client that closes once [DONE] is in has its whole answer (only the chunked
          // encoding's last empty chunk may have found the socket closed): 200, not 499.
          const bool success = written || r->done_sent;
          if (!success) r->stream->cancel();
          if (r->stream->first_token_seconds() >= 0)
            s.metrics.first_token(r->stream->first_token_seconds());
          const double secs = std::chrono::duration<double>(Clock::now() - r->t0).count();
          s.metrics.request(ep, success ? 200 : 499, secs);
          if (!s.o.quiet) {
            const Usage u = r->stream->usage();
            std::fprintf(stderr, "POST %s stream %s: %lld + %lld tokens in %.2f s\n", ep.c_str(),
                         success ? "200" : "client gone", static_cast<long long>(u.prompt_tokens),
                         static_cast<long long>(u.completion_tokens), secs);
          }
        });
    return;
  }
  // Not streaming: gather every choice's text and answer once.
  std::vector<ChoiceResult> results(static_cast<size_t>(r->n));
  std::vector<Event> events;
  while (r->stream->next(events, std::chrono::milliseconds(200))) {
    for (Event& e : events) {
      ChoiceResult& c = results[e.choice];
      c.text += e.text;
      for (auto& lp : e.logprobs) c.logprobs.push_back(std::move(lp));
      if (!e.finish.empty()) c.finish = e.finish, c.error = e.error;
    }
    events.clear();
  }
  for (const ChoiceResult& c : results)
    if (c.finish == "error") throw ApiError(500, "server_error", c.error);
  if (r->stream->first_token_seconds() >= 0)
    s.metrics.first_token(r->stream->first_token_seconds());
  json choices = json::array();
  for (int i = 0; i < r->n; ++i) {
    const ChoiceResult& c = results[i];
    json choice = {{"index", i}, {"finish_reason", finish_reason(c.finish)}};
    if (r->chat) {
      choice["message"] = {{"role", "assistant"}, {"content", c.text}};
      choice["logprobs"] = r->logprobs ? chat_logprobs(c.logprobs, *r->tok) : json(nullptr);
      if (!r->sources.is_null())
        choice["citations"] = retrieval::cited_sources(c.text, static_cast<int>(r->sources.size()));
    } else {
      choice["text"] = c.text;
      choice["logprobs"] =
          r->logprobs ? completion_logprobs(c.logprobs, *r->tok, 0) : json(nullptr);
    }
    choices.push_back(choice);
  }
  json body = {{"id", r->id},           {"object", r->chat ? "chat.completion" : "text_completion"},
               {"created", r->created}, {"model", r->model},
               {"choices", choices},    {"usage", usage_json(r->stream->usage())}};
  if (!r->sources.is_null()) body["sources"] = r->sources;
  res.set_content(dump(body), "application/json");
}

// ---- Other endpoints ----

void Server::Impl::embeddings(const httplib::Request& req, httplib::Response& res) {
  EmbeddingRequest er = parse_embedding_request(req.body);
  if (!er.model.empty() && er.model != embed_id)
    throw ApiError(404, "invalid_request_error",
                   "The model '" + er.model + "' does not exist; " +
                       (embed_id.empty() ? "this server has no embedding model"
                                         : "this server embeds with '" + embed_id + "'"),
                   "model", "model_not_found");
  for (const auto& s : er.input)
    if (!valid_utf8(s)) bad_request("'input' is not valid UTF-8", "input");
  int64_t tokens = 0;
  const auto vecs = embed(er.input, &tokens);
  json data = json::array();
  for (size_t i = 0; i < vecs.size(); ++i)
    data.push_back({{"object", "embedding"},
                    {"index", i},
                    {"embedding", er.base64 ? json(base64_floats(vecs[i])) : json(vecs[i])}});
  res.set_content(dump({{"object", "list"},
                        {"data", data},
                        {"model", embed_id},
                        {"usage", {{"prompt_tokens", tokens}, {"total_tokens", tokens}}}}),
                  "application/json");
}

void Server::Impl::models(httplib::Response& res) {
  json data = json::array();
  data.push_back({{"id", model_id},
                  {"object", "model"},
                  {"created", created},
                  {"owned_by", "llmkit"},
                  {"context", sched->context()},
                  {"slots", sched->slots()},
                  {"description", description},
                  {"chat_template", tpl.has_value()},
                  {"rag", store.has_value()}});
  if (!embed_id.empty())
    data.push_back({{"id", embed_id},
                    {"object", "model"},
                    {"created", created},
                    {"owned_by", "llmkit"},
                    {"type", "embedding"}});
  res.set_content(dump({{"object", "list"}, {"data", data}}), "application/json");
}

void Server::Impl::health(httplib::Response& res) {
  const SchedulerStats st = sched->stats();
  res.set_content(dump({{"status", "ok"},
                        {"model", model_id},
                        {"slots", st.slots},
                        {"slots_busy", st.busy},
                        {"queue", st.queued}}),
                  "application/json");
}

void Server::Impl::chunk_page(const httplib::Request& req, httplib::Response& res) {
  if (!store) throw ApiError(404, "invalid_request_error", "this server has no --db index");
  const std::string arg = req.matches[1];
  int64_t id = 0;
  try {
    id = std::stoll(arg);
  } catch (...) {
    throw ApiError(404, "invalid_request_error", "no chunk '" + arg + "'");
  }
  std::vector<retrieval::ChunkRecord> found;
  {
    std::lock_guard lock(store_mu);
    found = store->chunks(std::span<const int64_t>(&id, 1));
  }
  if (found.empty())
    throw ApiError(404, "invalid_request_error", "no chunk " + arg + " in the index");
  const auto& c = found[0];
  const std::string label = html_escape(retrieval::source_label(c));
  res.set_content("<!doctype html><html lang=\"" + html_escape(c.lang.empty() ? "en" : c.lang) +
                      "\"><head><meta charset=\"utf-8\"><title>" + label +
                      "</title><style>body{font:16px/1.5 system-ui,sans-serif;max-width:48rem;"
                      "margin:2rem auto;padding:0 1rem}pre{white-space:pre-wrap;background:"
                      "#f6f8fa;padding:1rem;border-radius:6px}</style></head><body><h1>" +
                      label + "</h1><p>" + html_escape(c.title) + "</p><pre>" +
                      html_escape(c.text) + "</pre></body></html>",
                  "text/html; charset=utf-8");
}

void Server::Impl::static_file(const httplib::Request& req, httplib::Response& res) {
  const std::string& path = req.path;
  if (!o.web_root.empty()) {
    const std::string file = resolve_static_path(o.web_root, path);
    if (file.empty()) throw ApiError(404, "invalid_request_error", "not found: " + path);
    res.set_content(tokenizer::read_file(file), mime_type(file));
    return;
  }
  const std::string want = path == "/" ? "/index.html" : path;
  for (const WebAsset& a : web_assets())
    if (a.path == want) {
      res.set_content(std::string(a.content), mime_type(want));
      return;
    }
  throw ApiError(404, "invalid_request_error", "not found: " + path);
}

std::string Server::Impl::endpoint_of(const std::string& path) const {
  if (const auto it = route_labels.find(path); it != route_labels.end()) return it->second;
  return path.rfind("/chunks/", 0) == 0 ? "chunks" : "static";
}

void Server::Impl::routes() {
  http.new_task_queue = [n = o.max_connections] {
    return new httplib::ThreadPool(static_cast<size_t>(n));
  };
  http.set_payload_max_length(o.max_body);
  http.set_tcp_nodelay(true);  // a reply's header and body go out in two writes
  http.set_keep_alive_max_count(1000);
  http.set_read_timeout(30);
  http.set_write_timeout(30);
  // Every error status gets OpenAI's error body unless the handler wrote one.
  http.set_error_handler([this](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;  // a handler's own error, counted by wrap()
    // Refused before any handler ran (413 body too large, 404, 405, unparsable HTTP): counted
    // under the endpoint the path names.
    metrics.request(endpoint_of(req.path), res.status, 0.0);
    std::string msg = "error";
    if (res.status == 404) msg = "not found: " + req.path;
    if (res.status == 405) msg = "method " + req.method + " is not allowed on " + req.path;
    if (res.status == 413) msg = "the request body is too large";
    if (res.status == 400) msg = "bad request";
    const char* type = res.status >= 500 ? "server_error" : "invalid_request_error";
    res.set_content(dump(error_body(msg, type)), "application/json");
  });
  // Wraps a handler: errors become OpenAI error bodies; metrics and the access log.
  using Fn = std::function<void(const httplib::Request&, httplib::Response&, bool&)>;
  auto wrap = [this](std::string endpoint, Fn fn) {
    return [this, endpoint, fn](const httplib::Request& req, httplib::Response& res) {
      const auto t0 = Clock::now();
      bool streaming = false;
      try {
        // Authentication: /v1/* and /metrics need a key when keys are set. Checked here, once
        // the body has been read, so that the connection stays usable after a 401.
        const bool guarded = req.path.rfind("/v1/", 0) == 0 || req.path == "/metrics";
        if (guarded && !authorised(req))
          throw ApiError(401, "authentication_error",
                         "Invalid or missing API key: send 'Authorization: Bearer KEY'", "",
                         "invalid_api_key");
        fn(req, res, streaming);
      } catch (const ApiError& e) {
        res.status = e.status;
        res.set_content(dump(error_body(e)), "application/json");
      } catch (const Error& e) {
        res.status = 400;
        res.set_content(dump(error_body(e.what(), "invalid_request_error")), "application/json");
      } catch (const std::exception& e) {
        res.status = 500;
        res.set_content(dump(error_body(e.what(), "server_error")), "application/json");
      }
      if (streaming) return;                   // recorded when the stream ends
      if (res.status == -1) res.status = 200;  // httplib fills in 200 after the handler
      const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
      metrics.request(endpoint, res.status, secs);
      if (!o.quiet && endpoint != "health" && endpoint != "metrics" && endpoint != "static")
        std::fprintf(stderr, "%s %s %d in %.2f s\n", req.method.c_str(), req.path.c_str(),
                     res.status, secs);
    };
  };
  // The other method on a fixed path: 405, its body written and counted by the error handler.
  auto method_not_allowed = [](const httplib::Request&, httplib::Response& res) {
    res.status = 405;
  };
  auto route = [&](bool post, const char* path, const char* label, Fn fn) {
    route_labels[path] = label;
    if (post) {
      http.Post(path, wrap(label, std::move(fn)));
      http.Get(path, method_not_allowed);
    } else {
      http.Get(path, wrap(label, std::move(fn)));
      http.Post(path, method_not_allowed);
    }
  };
  route(true, "/v1/chat/completions", "chat",
        [this](auto& q, auto& s, bool& st) { chat(q, s, st); });
  route(true, "/v1/completions", "completions",
        [this](auto& q, auto& s, bool& st) { completion(q, s, st); });
  route(true, "/v1/embeddings", "embeddings",
        [this](auto& q, auto& s, bool&) { embeddings(q, s); });
  route(false, "/v1/models", "models", [this](auto&, auto& s, bool&) { models(s); });
  route(false, "/health", "health", [this](auto&, auto& s, bool&) { health(s); });
  route(false, "/metrics", "metrics", [this](auto&, auto& s, bool&) {
    s.set_content(metrics.render(sched->stats()), "text/plain; version=0.0.4; charset=utf-8");
  });
  http.Get(R"(/chunks/([^/]+))",
           wrap("chunks", [this](auto& q, auto& s, bool&) { chunk_page(q, s); }));
  http.Get(R"(/.*)", wrap("static", [this](auto& q, auto& s, bool&) { static_file(q, s); }));
}

// ---- Server ----

Server::Server(const ServerOptions& options) : impl_(std::make_unique<Impl>(options)) {}

Server::~Server() = default;

void Server::run(const std::function<void(int)>& on_ready) {
  Impl& m = *impl_;
  int port = m.o.port;
  if (port == 0) {
    port = m.http.bind_to_any_port(m.o.host);
    LLMKIT_CHECK(port > 0, "serve: cannot bind ", m.o.host, " (any port)");
  } else {
    LLMKIT_CHECK(m.http.bind_to_port(m.o.host, port), "serve: cannot bind ", m.o.host, ":", port,
                 " (in use, or not an address of this machine?)");
  }
  if (on_ready) on_ready(port);
  m.http.listen_after_bind();
}

void Server::stop() {
  impl_->http.stop();
}

std::string Server::describe() const {
  const Impl& m = *impl_;
  std::string s = m.model_id + ": " + m.description + "; " + std::to_string(m.sched->slots()) +
                  " slots x " + std::to_string(m.sched->context()) + " tokens";
  if (!m.embed_id.empty()) s += "; embeddings: " + m.embed_id;
  if (m.store) s += "; RAG: " + m.o.db;
  if (!m.keys.empty()) s += "; API keys required";
  return s;
}

}  // namespace llmkit::serve
