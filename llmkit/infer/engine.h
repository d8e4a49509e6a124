// The inference engine of the decoder family (GPT-2 and llama layouts): the same forward pass as
// models::GPT, written for generation rather than training: no autograd, every buffer allocated
// once, the weights kept as they are stored (f32, f16, bf16 or ggml's quantised blocks, mapped
// straight from a .gguf without a copy) and multiplied by kernels::qmatmul, a KV cache per layer.
// This is what makes a small LLM (sLLM) cheap to run: decode streams every weight byte once per
// token, so 4.5-bit weights cost about a seventh of f32's memory traffic.
// Not here: sampling and the generation loop (generate.h), tokenizers, training (models::GPT).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "llmkit/infer/generate.h"
#include "llmkit/kernels/cpu/quant.h"
#include "llmkit/models/load.h"

namespace llmkit::infer {

struct EngineOptions {
  // Context (KV cache capacity) in tokens; 0: the model's block_size, at most 4096.
  int64_t context = 0;
  // Weights that come as f32 (an llmkit or Hugging Face directory) are quantised to this type at
  // load (F32 keeps them as they are, borrowed from the module). Quantised sources are kept as
  // stored whatever this says.
  kernels::GgmlType weight_type = kernels::GgmlType::F32;
  // Independent sequences the engine holds, each with its own KV cache of `context` positions
  // (a slot). Slot 0 is the sequence of eval(), pos() and truncate(); eval_batch() feeds several
  // at once (continuous batching: llmkit/serve). A cache's memory is reserved, not touched: it
  // costs pages only as far as its positions are filled.
  int slots = 1;
  // Batch invariance: every matrix product takes qmatmul's 8-bit path whatever its row count
  // (QPath::kInt8), and a pass multiplies all its rows together. A position's bits then depend
  // only on the tokens up to it: not on how a prompt is cut into chunks, on a cached prefix being
  // reused, or on the other sequences in the batch. Off: prefill chunks of 64 tokens or more use
  // f32 BLAS (~1.5x faster for long prompts on an AVX2 CPU), and a chunk's bits then depend on
  // its length.
  bool batch_invariant = false;
};

// One slot's part of a batched forward: `tokens` are fed to that slot at positions
// slot_pos(slot) .. slot_pos(slot) + n - 1.
struct BatchSegment {
  int slot = 0;
  std::span<const int32_t> tokens;
};

class Engine : public Decoder {
 public:
  // Builds the engine over `loaded` (gpt or llama; an Error naming the arch otherwise), which
  // must outlive it: f32 weights and .gguf mappings are borrowed, not copied.
  Engine(const models::LoadedModel& loaded, const EngineOptions& options = {});
  ~Engine() override;

  // Decoder: context(), reset(), next_logits() (the last row of eval()).
  int64_t context() const override;
  void reset(bool use_cache) override;
  std::span<const float> next_logits(std::span<const int32_t> seq, size_t fresh) override;

  // Feeds `tokens` at positions pos() .. pos() + n - 1 (prefill when n > 1, decode when n == 1)
  // and returns their logits: [n, vocab()] row-major when all_logits, else the last row only.
  // The span stays valid until the next call. An Error when the context would overflow or an id
  // is outside the vocabulary.
  std::span<const float> eval(std::span<const int32_t> tokens, bool all_logits = false);
  // Tokens in the KV cache.
  int64_t pos() const;
  // Forgets every position from n on (n <= pos()).
  void truncate(int64_t n);

  // ---- Several sequences at once (continuous batching) ----
  // Feeds every segment in ONE forward pass: the rows of all segments go through each matrix
  // product together, so B sequences decoding one token each read the weights once, not B times;
  // only attention is per sequence, over its own slot's cache. Returns each segment's last-row
  // logits, [segments, vocab()] row-major, valid until the next call. A segment's logits equal,
  // bit for bit, those of eval() on its slot alone from the same cache contents (each prefill
  // segment's rows are multiplied alone and one-token rows in runs under 64, as qmatmul switches
  // to BLAS at 64; with batch_invariant all rows together). Errors: more than max_batch_tokens()
  // tokens in all, an empty segment, a slot twice or out of range, a slot's context overflowing, an
  // id outside the vocabulary (checked before anything is computed: the caches stay as they were).
  std::span<const float> eval_batch(std::span<const BatchSegment> segments);
  // The most tokens one eval_batch() takes (longer prompts are fed in several steps).
  int64_t max_batch_tokens() const;
  int slots() const;
  int64_t slot_pos(int slot) const;
  // Forgets the slot's positions from n on (0: the slot is empty).
  void truncate_slot(int slot, int64_t n);
  // Copies the first n positions of slot `from`'s cache into slot `to` (its other positions are
  // forgotten): n choices of one prompt prefill it once.
  void copy_slot(int from, int to, int64_t n);
  // Bytes of KV cache one position of one slot takes (all layers, keys and values).
  size_t kv_bytes_per_token() const;

  int64_t vocab() const;
  const models::GPTConfig& config() const;
  // Bytes of weights read per decoded token (all matrices, the output head and one embedding
  // row): the memory traffic that bounds decode speed.
  size_t weight_bytes() const;
  // One line: "llama 30 layers x 576, q4_1 (output q6_k), 81.4 MiB of weights, context 2048".
  std::string describe() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace llmkit::infer
