// `llmkit serve` (10.x 챗봇): an HTTP server that speaks the OpenAI API, so the official clients
// and existing chat front ends work with llmkit models unchanged, plus a web chat page at /.
//
//   POST /v1/chat/completions   chat through the model's template; SSE streaming, n, logprobs,
//                               usage; with --db, retrieval-augmented answers with their sources
//   POST /v1/completions        plain text continuation
//   POST /v1/embeddings         sentence embeddings (--embed-model, or the --db index's embedder)
//   GET  /v1/models, /health, /metrics (Prometheus), /chunks/ID (a RAG source), / (the page)
//
// Requests decode together through serve::Scheduler (continuous batching over the engine's KV
// cache slots). HTTP is cpp-httplib (Debian's libcpp-httplib-dev): a thread per connection from a
// bounded pool; streaming responses are chunked, and a client that goes away cancels its
// generation at the next step. Bound to 127.0.0.1 unless told otherwise; with --api-key-file
// every /v1 and /metrics request needs "Authorization: Bearer KEY".
// Not here: batching (scheduler.h), request parsing (openai.h), the page (web/).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace llmkit::serve {

struct ServerOptions {
  std::string model;        // a decoder: .gguf, Hugging Face or llmkit directory
  std::string embed_model;  // a sentence-transformers directory for /v1/embeddings
  std::string db;           // a retrieval index (llmkit index create): RAG answers
  std::string host = "127.0.0.1";
  int port = 8080;               // 0: any free port
  std::string api_key_file;      // one key per line; blank lines and # comments ignored
  std::string web_root;          // serve the page from this directory instead of the built-in one
  int slots = 4;                 // sequences decoded together
  int64_t context = 2048;        // KV positions per slot (prompt + reply); 0: the model's, <= 4096
  bool batch_invariant = false;  // infer::EngineOptions::batch_invariant: answers that depend on
                                 // nothing but the request (slower prefill of long prompts)
  int64_t kv_memory_mib = 4096;  // slots * context * KV bytes per token must fit
  int64_t max_tokens = 4096;     // most new tokens one request may ask for
  size_t max_body = 1 << 20;     // bytes
  int max_queue = 64;            // requests waiting for slots before 503
  int max_connections = 128;     // HTTP worker threads (open connections served at once)
  int threads = 0;               // compute threads (0: LLMKIT_THREADS or all cores)
  bool quiet = false;            // no access log on stderr
  // RAG (--db): sources offered to the model, their token budget, the relevance threshold.
  int rag_k = 4;
  int64_t rag_context_tokens = 1200;
  double rag_min_cosine = 0.35;
};

class Server {
 public:
  // Loads the model (and the embedder and index), checks the options; an Error names the
  // problem. Nothing listens yet.
  explicit Server(const ServerOptions& options);
  ~Server();

  // Binds host:port and serves until stop(); `on_ready(port)` is called once it listens. An
  // Error when the address cannot be bound.
  void run(const std::function<void(int port)>& on_ready = {});
  // Stops listening and ends run() (thread-safe; also from another thread).
  void stop();
  // "SmolLM2-135M-Instruct.Q4_1: llama 30 layers x 576 ..., 4 slots x 2048 tokens"
  std::string describe() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Constant-time equality (the time depends on the lengths only): API keys.
bool constant_time_equal(const std::string& a, const std::string& b);

// The file under `root` that the URL path `path` names, or "" when it names none: a path with a
// ".." or "." segment, a backslash or NUL, or one whose real location (symbolic links resolved)
// lies outside root. "/" is index.html.
std::string resolve_static_path(const std::string& root, const std::string& path);

}  // namespace llmkit::serve
