// `llmkit serve`: the OpenAI-compatible HTTP server and web chat page (llmkit/serve/server.h).
// Loads the model, prints one "listening on http://HOST:PORT" line to stderr when ready, and
// serves until SIGINT or SIGTERM, which stop it cleanly (exit status 0).
#include <csignal>
#include <cstdio>
#include <memory>
#include <thread>

#include "llmkit/serve/server.h"
#include "tools/llmkit/command.h"

namespace {

void run_serve(const llmkit::serve::ServerOptions& o) {
  // SIGINT / SIGTERM are taken by one thread (sigwait), so every thread the server starts
  // inherits the mask and none is interrupted mid-request.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  llmkit::serve::Server server(o);
  std::thread waiter([&] {
    int sig = 0;
    sigwait(&set, &sig);
    if (sig != 0) server.stop();
  });
  try {
    server.run([&](int port) {
      std::fprintf(stderr, "llmkit serve: listening on http://%s:%d (%s)\n", o.host.c_str(), port,
                   server.describe().c_str());
      std::fflush(stderr);
    });
  } catch (...) {
    pthread_kill(waiter.native_handle(), SIGTERM);
    waiter.join();
    throw;
  }
  // run() returned: stopped by a signal, or the listener failed; wake the waiter either way.
  pthread_kill(waiter.native_handle(), SIGTERM);
  waiter.join();
  std::fprintf(stderr, "llmkit serve: stopped\n");
}

}  // namespace

LLMKIT_COMMAND(
    {"serve", "OpenAI-compatible HTTP server with a web chat page (continuous batching, RAG)",
     [](CLI::App& sub) {
       auto o = std::make_shared<llmkit::serve::ServerOptions>();
       sub.footer(
           "Endpoints: POST /v1/chat/completions, /v1/completions, /v1/embeddings; GET "
           "/v1/models, /health, /metrics; the chat page at /. Requests decode together "
           "(continuous batching over --slots KV caches of --context tokens each). "
           "Example: llmkit serve --model ~/.cache/llmkit/models/SmolLM2-135M-Instruct.Q4_1.gguf "
           "then open http://127.0.0.1:8080/ (docs/serve.md).");
       sub.add_option("--model", o->model, "a decoder: .gguf file, Hugging Face or llmkit dir")
           ->required()
           ->check(CLI::ExistingPath);
       sub.add_option("--embed-model", o->embed_model,
                      "sentence-transformers directory for /v1/embeddings (e.g. "
                      "all-MiniLM-L6-v2)")
           ->check(CLI::ExistingDirectory);
       sub.add_option("--db", o->db,
                      "retrieval index (llmkit index create): chat answers from it, with sources")
           ->check(CLI::ExistingDirectory);
       sub.add_option("--host", o->host, "address to bind (0.0.0.0: every interface)")
           ->capture_default_str();
       sub.add_option("--port", o->port, "port (0: any free port)")
           ->capture_default_str()
           ->check(CLI::Range(0, 65535));
       sub.add_option("--api-key-file", o->api_key_file,
                      "require 'Authorization: Bearer KEY' on /v1 and /metrics; one key per line")
           ->check(CLI::ExistingFile);
       sub.add_option("--slots", o->slots, "sequences decoded together (KV caches)")
           ->capture_default_str()
           ->check(CLI::Range(1, 256));
       sub.add_option("--context", o->context,
                      "tokens per slot, prompt and reply (0: the model's, at most 4096)")
           ->capture_default_str()
           ->check(CLI::Range(int64_t{0}, int64_t{1} << 20));
       sub.add_flag("--batch-invariant", o->batch_invariant,
                    "an answer depends only on its request, not on the cache or the batch "
                    "(long prompts prefill ~1.5x slower: no f32 BLAS)");
       sub.add_option("--kv-memory", o->kv_memory_mib,
                      "MiB the slots' KV caches may take (slots x context x bytes per token)")
           ->capture_default_str()
           ->check(CLI::Range(int64_t{1}, int64_t{1} << 30));
       sub.add_option("--max-tokens", o->max_tokens,
                      "most new tokens a request may ask for (and the default)")
           ->capture_default_str()
           ->check(CLI::Range(int64_t{1}, int64_t{1} << 30));
       sub.add_option("--max-body", o->max_body, "largest request body in bytes (413 beyond)")
           ->capture_default_str()
           ->check(CLI::Range(size_t{64}, size_t{1} << 30));
       sub.add_option("--max-queue", o->max_queue,
                      "requests waiting for a slot before new ones get 503")
           ->capture_default_str()
           ->check(CLI::Range(0, 1 << 20));
       sub.add_option("--max-connections", o->max_connections,
                      "connections served at once (HTTP worker threads)")
           ->capture_default_str()
           ->check(CLI::Range(1, 4096));
       sub.add_option("--threads", o->threads, "compute threads (default: LLMKIT_THREADS or all)")
           ->check(CLI::PositiveNumber);
       sub.add_option("--web-root", o->web_root,
                      "serve the chat page from this directory instead of the built-in copy")
           ->check(CLI::ExistingDirectory);
       sub.add_option("--rag-k", o->rag_k, "with --db: sources offered to the model")
           ->capture_default_str()
           ->check(CLI::Range(1, 50));
       sub.add_option("--rag-min-cosine", o->rag_min_cosine,
                      "with --db: below this best-source cosine the answer is \"I don't know "
                      "from these sources\"")
           ->capture_default_str()
           ->check(llmkit::cli::number_in(-1, 1));
       sub.add_flag("--quiet", o->quiet, "no access log on stderr");
       return [o] { run_serve(*o); };
     }});
