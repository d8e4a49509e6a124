// infer::Engine (engine.h): models::GPT's forward pass for generation, on weights in their stored
// types. One pass over n tokens at positions pos() .. pos() + n - 1:
//   x = tok_embd[ids] (+ pos_embd[pos])
//   per layer:  h = norm_1(x); q, k, v = h Wq, h Wk, h Wv (+ biases); rope(q, k)
//               append k, v to the layer's cache; a = attention(q, cache)
//               x = x + a Wo                                   (post-LN: x = norm_1(x + a Wo))
//               h = norm_2(x); x = x + down(silu(gate h) * up h)  or  down(gelu(up h))
//   logits = norm_f(x) W_out
// Every matrix product is kernels::qmatmul; every buffer is sized once for the longest chunk
// (kMaxChunk tokens) and reused, so decoding a token allocates nothing.
// The rows of one pass may belong to several sequences (slots, each with its own cache): every
// step but attention is row by row or a product over all rows, so it does not care; the
// embedding, RoPE and the cache write read each row's own position, and attention runs per
// sequence over its slot's cache (continuous batching).
#include "llmkit/infer/engine.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <sstream>

#include "llmkit/core/parallel.h"
#include "llmkit/io/gguf.h"
#include "llmkit/kernels/cpu/activation.h"
#include "llmkit/kernels/cpu/attention.h"
#include "llmkit/kernels/cpu/norm.h"
#include "llmkit/kernels/cpu/qmatmul.h"
#include "llmkit/kernels/cpu/quantize.h"
#include "llmkit/nn/lora.h"
#include "llmkit/nn/positional.h"
#include "llmkit/ops/rope.h"

namespace llmkit::infer {
namespace {

using kernels::GgmlType;
using kernels::QMatrix;

// Tokens per forward pass: a longer prompt is fed in chunks of this many (llama.cpp's n_ubatch).
constexpr int64_t kMaxChunk = 512;
// One-token rows multiplied together, at most: below qmatmul's BLAS threshold of 64 rows.
constexpr int64_t kDecodeRun = 63;

// An f32 vector parameter (a norm's weight or a bias): a view of the module's tensor or of a
// GGUF tensor converted to f32, kept alive by `t`.
struct Vec {
  Tensor t;
  const float* p = nullptr;
};

// A buffer left uninitialised: its pages are touched (and cost their first-touch time) only as
// far as they are used, so a 4096-token KV cache costs nothing until the tokens come.
using Buf = std::unique_ptr<float[]>;
Buf buffer(int64_t n) {
  return Buf(new float[static_cast<size_t>(n)]);
}

struct Layer {
  Vec ln1_w, ln1_b, ln2_w, ln2_b;
  QMatrix qkv, q, k, v, o, gate, up, down;  // qkv: the GPT-2 layout's fused projection
  Vec b_qkv, b_q, b_k, b_v, b_o, b_gate, b_up, b_down;
};

// One sequence's KV cache: per layer, keys and values [NKV, cap, HS].
struct Cache {
  std::vector<Buf> k, v;
  int64_t pos = 0;  // positions filled
};

// A sequence's rows in one pass: rows [row0, row0 + n) at positions pos0 .. pos0 + n - 1.
struct Segment {
  int slot = 0;
  int64_t row0 = 0, n = 0, pos0 = 0;
};

void add_bias(float* y, const Vec& b, int64_t n, int64_t ld, int64_t width) {
  if (b.p == nullptr) return;
  for (int64_t t = 0; t < n; ++t)
    for (int64_t i = 0; i < width; ++i) y[t * ld + i] += b.p[i];
}

// ggml's fallback for K-quant rows that are not a whole number of 256-element super-blocks.
GgmlType fit_type(GgmlType want, int64_t cols) {
  if (cols % kernels::ggml_block_size(want) == 0) return want;
  switch (want) {
    case GgmlType::Q4_K:
      return fit_type(GgmlType::Q5_0, cols);
    case GgmlType::Q5_K:
      return fit_type(GgmlType::Q5_1, cols);
    case GgmlType::Q6_K:
      return fit_type(GgmlType::Q8_0, cols);
    default:
      return GgmlType::F32;
  }
}

// Products that read the same input: Y_i = X W_i^T for each (W_i, Y_i). A short batch (decode)
// runs them in ONE parallel region, the rows of all of them split evenly over the threads, each
// thread running kernels::qmatmul on its slice (the activations are quantised per slice: a few
// hundred floats, next to tens of KiB of weights). Small matrices (llama's k and v) then use
// every core, and q/k/v or gate/up cost one fork-join instead of three or two. Every output is
// one vec_dot either way, so the bits do not depend on the split. A long batch (prefill) calls
// qmatmul per matrix, which threads itself.
struct Product {
  const QMatrix* w;
  float* y;
  int64_t ldy;
};

void products(std::span<const Product> ps, int64_t n, const float* x, int64_t ldx,
              kernels::QPath path) {
  const int nt = num_threads();
  if (n > 8 || nt <= 1) {
    for (const Product& p : ps) kernels::qmatmul(*p.w, n, x, ldx, p.y, p.ldy, path);
    return;
  }
  int64_t rows = 0;
  for (const Product& p : ps) rows += p.w->rows;
#pragma omp parallel num_threads(nt)
  {
    const int64_t t = omp_get_thread_num(), T = omp_get_num_threads();
    int64_t lo = rows * t / T, hi = rows * (t + 1) / T, base = 0;
    for (const Product& p : ps) {
      const int64_t r0 = std::max(lo, base) - base, r1 = std::min(hi, base + p.w->rows) - base;
      if (r0 < r1)
        kernels::qmatmul({p.w->type, r1 - r0, p.w->cols, p.w->row(r0)}, n, x, ldx, p.y + r0, p.ldy,
                         path);
      base += p.w->rows;
    }
  }
}

// Rows [r0, r1) of m (a view).
QMatrix rows_of(const QMatrix& m, int64_t r0, int64_t r1) {
  return {m.type, r1 - r0, m.cols, m.row(r0)};
}

Vec slice(const Vec& v, int64_t begin) {
  Vec s = v;
  if (s.p != nullptr) s.p += begin;
  return s;
}

const char* type_label(GgmlType t) {
  return kernels::ggml_type_name(t);
}

}  // namespace

struct Engine::Impl {
  models::GPTConfig c;
  int64_t C = 0, NH = 0, NKV = 0, HS = 0, FF = 0, V = 0, cap = 0;
  bool pre_ln = true, rms = false, swiglu = false, rope = false, rope_adjacent = false;
  bool alibi = false;
  // EngineOptions::batch_invariant: every product on the 8-bit path, all rows of a pass together.
  bool invariant = false;
  kernels::QPath qpath() const { return invariant ? kernels::QPath::kInt8 : kernels::QPath::kAuto; }
  std::string source;

  QMatrix tok_embd, out;
  Vec pos_embd, lnf_w, lnf_b;
  Tensor sinusoidal;  // [block_size, C] for sinusoidal positions
  std::vector<Layer> layers;
  std::vector<std::vector<uint8_t>> owned;  // matrices quantised at load or re-ordered
  std::shared_ptr<const io::GgufFile> gguf;
  std::vector<double> cos_t, sin_t;  // [cap, HS/2] rope angles
  std::vector<double> slopes;        // ALiBi

  std::vector<Cache> caches;  // one per slot
  // The pass in progress: its segments, and each row's slot and position.
  std::vector<Segment> segs;
  std::vector<int> row_slot;
  std::vector<int64_t> row_pos;
  // Scratch, [kMaxChunk, width] each.
  Buf x, h, qkv, att, tmp, f1, f2, qh, oh, lse;
  std::vector<float> stat1, stat2, logits, bias;
  std::vector<int32_t> batch_ids;
  std::vector<const Segment*> decode_segs;
  // Row ranges (row0, n) multiplied by separate qmatmul calls: each prefill segment alone, and
  // the one-token rows in runs of fewer than 64. qmatmul picks its kernel by row count (vec_dot
  // below 64, BLAS from 64), so every row then gets the bits it gets when its sequence runs
  // alone: batching never changes an answer. With `invariant`, one range of all the rows: the
  // 8-bit path gives every row the same bits whatever the row count.
  std::vector<std::pair<int64_t, int64_t>> groups;
  void mul(std::initializer_list<Product> ps, const float* x, int64_t ldx);

  QMatrix matrix_from_tensor(const Tensor& t, GgmlType want);
  QMatrix matrix_from_gguf(const io::GgufTensor& t);
  Vec vec_from_gguf(const io::GgufFile& f, const std::string& name, bool optional);
  void build_from_module(const models::GPT& g, GgmlType want);
  void build_from_gguf(const io::GgufFile& f);
  void allocate(int slots);
  void embed(const int32_t* ids, int64_t n);
  void norm(float* out, const float* in, const Vec& w, const Vec& b, int64_t n);
  void rotate(float* x, int64_t n, int64_t heads, int64_t ld);
  void attention(size_t li);
  const float* alibi_bias(std::vector<float>& out, int64_t g, int64_t m, int64_t pos0) const;
  void layer(size_t li, int64_t n);
  void plan(std::span<const BatchSegment> segments);
  void forward(const int32_t* ids, int64_t n, bool all_logits, float* logits_out);
  void check_slot(int slot) const;
};

QMatrix Engine::Impl::matrix_from_tensor(const Tensor& t, GgmlType want) {
  LLMKIT_CHECK(t.dim() == 2 && t.dtype() == DType::F32 && t.is_contiguous(), "engine: weight ",
               t.str(), " is not a contiguous f32 matrix");
  const int64_t rows = t.size(0), cols = t.size(1);
  const GgmlType type = fit_type(want, cols);
  if (type == GgmlType::F32) return {GgmlType::F32, rows, cols, t.data<float>()};
  QMatrix m{type, rows, cols, nullptr};
  auto& buf = owned.emplace_back(m.bytes());
  const float* src = t.data<float>();
  const size_t rb = m.row_bytes();
  parallel_for(rows, 16, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r)
      kernels::quantize_row(type, src + r * cols, &buf[r * rb], cols);
  });
  m.data = buf.data();
  return m;
}

QMatrix Engine::Impl::matrix_from_gguf(const io::GgufTensor& t) {
  LLMKIT_CHECK(t.ne.size() == 2, gguf->path, ": ", t.name, " is not a matrix");
  LLMKIT_CHECK(kernels::qmatmul_supports(t.type), gguf->path, ": ", t.name, " has type ",
               kernels::ggml_type_name(t.type), ", which the engine cannot multiply");
  return {t.type, t.ne[1], t.ne[0], t.data};
}

Vec Engine::Impl::vec_from_gguf(const io::GgufFile& f, const std::string& name, bool optional) {
  const io::GgufTensor* t = f.find_tensor(name);
  if (t == nullptr) {
    LLMKIT_CHECK(optional, f.path, ": tensor '", name, "' is missing");
    return {};
  }
  Vec v;
  v.t = f.to_f32(*t).contiguous();
  v.p = v.t.data<float>();
  return v;
}

void Engine::Impl::build_from_module(const models::GPT& g, GgmlType want) {
  // The engine reads the base weights by name: an adapter would be dropped silently.
  nn::check_plain_linears(g, "engine");
  const auto params = g.named_parameters();
  std::map<std::string, Tensor> p(params.begin(), params.end());
  auto vec = [&](const std::string& name) -> Vec {
    auto it = p.find(name);
    if (it == p.end()) return {};
    Vec v;
    v.t = it->second.contiguous();
    v.p = v.t.data<float>();
    return v;
  };
  auto mat = [&](const std::string& name) -> QMatrix {
    auto it = p.find(name);
    LLMKIT_CHECK(it != p.end(), "engine: the model has no '", name, "'");
    return matrix_from_tensor(it->second, want);
  };
  const bool hf = c.llama_layout();
  tok_embd = matrix_from_tensor(g.wte->weight, want);
  out = g.lm_head ? matrix_from_tensor(g.lm_head->weight, want) : tok_embd;
  if (g.wpe) pos_embd = vec("wpe.weight");
  lnf_w = vec(hf ? "model.norm.weight" : "ln_f.weight");
  lnf_b = vec(hf ? "model.norm.bias" : "ln_f.bias");
  for (int64_t i = 0; i < c.n_layer; ++i) {
    Layer L;
    const std::string b = (hf ? "model.layers." : "h.") + std::to_string(i) + ".";
    if (hf) {
      L.ln1_w = vec(b + "input_layernorm.weight");
      L.ln1_b = vec(b + "input_layernorm.bias");
      L.ln2_w = vec(b + "post_attention_layernorm.weight");
      L.ln2_b = vec(b + "post_attention_layernorm.bias");
      L.q = mat(b + "self_attn.q_proj.weight");
      L.k = mat(b + "self_attn.k_proj.weight");
      L.v = mat(b + "self_attn.v_proj.weight");
      L.o = mat(b + "self_attn.o_proj.weight");
      L.b_q = vec(b + "self_attn.q_proj.bias");
      L.b_k = vec(b + "self_attn.k_proj.bias");
      L.b_v = vec(b + "self_attn.v_proj.bias");
      L.b_o = vec(b + "self_attn.o_proj.bias");
      if (swiglu) {
        L.gate = mat(b + "mlp.gate_proj.weight");
        L.b_gate = vec(b + "mlp.gate_proj.bias");
      }
      L.up = mat(b + "mlp.up_proj.weight");
      L.down = mat(b + "mlp.down_proj.weight");
      L.b_up = vec(b + "mlp.up_proj.bias");
      L.b_down = vec(b + "mlp.down_proj.bias");
    } else {
      L.ln1_w = vec(b + "ln_1.weight");
      L.ln1_b = vec(b + "ln_1.bias");
      L.ln2_w = vec(b + "ln_2.weight");
      L.ln2_b = vec(b + "ln_2.bias");
      L.qkv = mat(b + "attn.c_attn.weight");
      L.b_qkv = vec(b + "attn.c_attn.bias");
      L.o = mat(b + "attn.c_proj.weight");
      L.b_o = vec(b + "attn.c_proj.bias");
      const QMatrix fc = mat(b + "mlp.c_fc.weight");
      const Vec fc_b = vec(b + "mlp.c_fc.bias");
      if (swiglu) {  // nn::FeedForward's fused c_fc: the gate's FF rows, then up's
        L.gate = rows_of(fc, 0, FF);
        L.up = rows_of(fc, FF, 2 * FF);
        L.b_gate = fc_b;
        L.b_up = slice(fc_b, FF);
      } else {
        L.up = fc;
        L.b_up = fc_b;
      }
      L.down = mat(b + "mlp.c_proj.weight");
      L.b_down = vec(b + "mlp.c_proj.bias");
    }
    layers.push_back(std::move(L));
  }
}

void Engine::Impl::build_from_gguf(const io::GgufFile& f) {
  auto mat = [&](const std::string& name) { return matrix_from_gguf(f.tensor(name)); };
  tok_embd = mat("token_embd.weight");
  out = f.find_tensor("output.weight") ? mat("output.weight") : tok_embd;
  if (f.find_tensor("position_embd.weight"))
    pos_embd = vec_from_gguf(f, "position_embd.weight", false);
  lnf_w = vec_from_gguf(f, "output_norm.weight", false);
  lnf_b = vec_from_gguf(f, "output_norm.bias", true);
  // llama.cpp's converter permutes q/k rows so that ggml's RoPE, which rotates adjacent pairs,
  // gives Hugging Face's rotate_half result: rotate adjacent pairs on these weights as well.
  rope_adjacent = c.llama_layout();
  for (int64_t i = 0; i < c.n_layer; ++i) {
    Layer L;
    const std::string b = "blk." + std::to_string(i) + ".";
    auto vec = [&](const std::string& n) { return vec_from_gguf(f, b + n, true); };
    L.ln1_w = vec_from_gguf(f, b + "attn_norm.weight", false);
    L.ln1_b = vec("attn_norm.bias");
    L.ln2_w = vec_from_gguf(f, b + "ffn_norm.weight", false);
    L.ln2_b = vec("ffn_norm.bias");
    if (c.llama_layout()) {
      L.q = mat(b + "attn_q.weight");
      L.k = mat(b + "attn_k.weight");
      L.v = mat(b + "attn_v.weight");
      L.b_q = vec("attn_q.bias");
      L.b_k = vec("attn_k.bias");
      L.b_v = vec("attn_v.bias");
      L.gate = mat(b + "ffn_gate.weight");
    } else {
      L.qkv = mat(b + "attn_qkv.weight");
      L.b_qkv = vec("attn_qkv.bias");
    }
    L.o = mat(b + "attn_output.weight");
    L.b_o = vec("attn_output.bias");
    L.up = mat(b + "ffn_up.weight");
    L.b_up = vec("ffn_up.bias");
    L.down = mat(b + "ffn_down.weight");
    L.b_down = vec("ffn_down.bias");
    layers.push_back(std::move(L));
  }
}

void Engine::Impl::allocate(int slots) {
  const int64_t M = kMaxChunk, QKV = (NH + 2 * NKV) * HS;
  x = buffer(M * C);
  h = buffer(M * C);
  qkv = buffer(M * QKV);
  att = buffer(M * C);
  tmp = buffer(M * C);
  f1 = buffer(M * FF);
  f2 = buffer(M * FF);
  qh = buffer(M * NH * HS);
  oh = buffer(M * NH * HS);
  lse = buffer(M * NH);
  stat1.assign(M, 0);
  stat2.assign(M, 0);
  logits.assign(V, 0);
  caches.resize(static_cast<size_t>(slots));
  for (Cache& cache : caches)
    for (size_t i = 0; i < layers.size(); ++i) {
      cache.k.push_back(buffer(NKV * cap * HS));
      cache.v.push_back(buffer(NKV * cap * HS));
    }
  row_slot.assign(M, 0);
  row_pos.assign(M, 0);
  if (rope) {
    const std::vector<double> inv = ops::rope_inv_freq(HS, c.rope_theta, c.rope_scaling);
    const int64_t half = HS / 2;
    cos_t.resize(cap * half);
    sin_t.resize(cap * half);
    for (int64_t t = 0; t < cap; ++t)
      for (int64_t i = 0; i < half; ++i) {
        const double a = static_cast<double>(t) * inv[i];
        cos_t[t * half + i] = std::cos(a);
        sin_t[t * half + i] = std::sin(a);
      }
  }
  if (alibi) slopes = nn::alibi_slopes(NH);
}

void Engine::Impl::embed(const int32_t* ids, int64_t n) {
  for (int64_t t = 0; t < n; ++t) {
    float* row = &x[t * C];
    if (tok_embd.type == GgmlType::F32)
      std::memcpy(row, static_cast<const float*>(tok_embd.row(ids[t])), C * sizeof(float));
    else
      kernels::dequantize_row(tok_embd.type, tok_embd.row(ids[t]), row, C);
    const int64_t p = row_pos[t];
    const float* pe = pos_embd.p != nullptr  ? pos_embd.p + p * C
                      : sinusoidal.defined() ? sinusoidal.data<float>() + p * C
                                             : nullptr;
    if (pe != nullptr)
      for (int64_t i = 0; i < C; ++i) row[i] += pe[i];
  }
}

void Engine::Impl::norm(float* o, const float* in, const Vec& w, const Vec& b, int64_t n) {
  if (rms)
    kernels::rms_norm_forward<float>(o, stat1.data(), in, w.p, n, C, c.norm_eps);
  else
    kernels::layer_norm_forward<float>(o, stat1.data(), stat2.data(), in, w.p, b.p, n, C,
                                       c.norm_eps);
}

// RoPE on `heads` heads of each of n rows (row stride ld), each at its row_pos, as ops::rope
// computes it (angles and products in double, rounded once).
void Engine::Impl::rotate(float* y, int64_t n, int64_t heads, int64_t ld) {
  const int64_t half = HS / 2;
  for (int64_t t = 0; t < n; ++t) {
    const double* cs = &cos_t[row_pos[t] * half];
    const double* sn = &sin_t[row_pos[t] * half];
    for (int64_t hd = 0; hd < heads; ++hd) {
      float* a = y + t * ld + hd * HS;
      for (int64_t i = 0; i < half; ++i) {
        float& x1 = rope_adjacent ? a[2 * i] : a[i];
        float& x2 = rope_adjacent ? a[2 * i + 1] : a[i + half];
        const double u = x1, w = x2;
        x1 = static_cast<float>(u * cs[i] - w * sn[i]);
        x2 = static_cast<float>(w * cs[i] + u * sn[i]);
      }
    }
  }
}

// ALiBi's score bias for the G query heads of kv head g, m queries at positions pos0 .. pos0 + m -
// 1 over keys 0 .. pos0 + m - 1: out [G, m, Tk] = -slope * |query position - key position|.
const float* Engine::Impl::alibi_bias(std::vector<float>& out, int64_t g, int64_t m,
                                      int64_t pos0) const {
  const int64_t G = NH / NKV, Tk = pos0 + m;
  out.resize(G * m * Tk);
  for (int64_t a = 0; a < G; ++a)
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < Tk; ++j)
        out[(a * m + i) * Tk + j] =
            static_cast<float>(-slopes[g * G + a] * static_cast<double>(std::abs(i + pos0 - j)));
  return out.data();
}

// att [n, C] = softmax(q k^T / sqrt(HS) (+ ALiBi), causal) v, each segment's queries over its
// slot's cache (its pos0 + n keys); q is in qkv's rows (stride QKV), k and v are already cached.
void Engine::Impl::attention(size_t li) {
  const int64_t QKV = (NH + 2 * NKV) * HS, G = NH / NKV;
  const double scale = 1.0 / std::sqrt(static_cast<double>(HS));
  // Decode rows (segments of one token): the same fused kernel with one query row, so a position
  // gets the bits it gets inside a prefill (a reused cached prefix, a prompt's last token fed
  // alone, a chat's next turn over the previous answer: none changes an answer). One task per
  // (row, kv head): its G query heads lie contiguous in the qkv row and in att, [G, 1, HS]. The
  // kernel runs in the calling thread (a nested OpenMP region).
  std::vector<const Segment*>& one = decode_segs;
  one.clear();
  for (const Segment& sg : segs)
    if (sg.n == 1) one.push_back(&sg);
  parallel_for(static_cast<int64_t>(one.size()) * NKV, 1, [&](int64_t i0, int64_t i1) {
    thread_local std::vector<float> lse1, bias1;
    if (lse1.size() < static_cast<size_t>(G)) lse1.resize(G);
    for (int64_t i = i0; i < i1; ++i) {
      const Segment& sg = *one[i / NKV];
      const int64_t g = i % NKV, Tk = sg.pos0 + 1, r = sg.row0;
      const Cache& cache = caches[sg.slot];
      const float* bias_p = alibi ? alibi_bias(bias1, g, 1, sg.pos0) : nullptr;
      kernels::attention_forward<float>(
          &att[r * C + g * G * HS], lse1.data(), &qkv[r * QKV + g * G * HS],
          cache.k[li].get() + g * cap * HS, cache.v[li].get() + g * cap * HS, nullptr, nullptr,
          bias_p, kernels::AttentionShape{1, G, 1, 1, Tk, HS, true, scale});
    }
  });
  // Prefill segments: the fused attention kernel, one call per kv head (its G query heads read
  // keys that lie contiguous in the cache). q and out go through [heads, m, HS] scratch.
  for (const Segment& sg : segs) {
    if (sg.n == 1) continue;
    const int64_t m = sg.n, Tk = sg.pos0 + m, r0 = sg.row0;
    const Cache& cache = caches[sg.slot];
    for (int64_t hd = 0; hd < NH; ++hd)
      for (int64_t t = 0; t < m; ++t)
        std::memcpy(&qh[(hd * m + t) * HS], &qkv[(r0 + t) * QKV + hd * HS], HS * sizeof(float));
    kernels::AttentionShape shape{1, G, 1, m, Tk, HS, true, scale};
    for (int64_t g = 0; g < NKV; ++g) {
      const float* bias_p = alibi ? alibi_bias(bias, g, m, sg.pos0) : nullptr;
      kernels::attention_forward<float>(&oh[g * G * m * HS], &lse[g * G * m], &qh[g * G * m * HS],
                                        cache.k[li].get() + g * cap * HS,
                                        cache.v[li].get() + g * cap * HS, nullptr, nullptr, bias_p,
                                        shape);
    }
    for (int64_t hd = 0; hd < NH; ++hd)
      for (int64_t t = 0; t < m; ++t)
        std::memcpy(&att[(r0 + t) * C + hd * HS], &oh[(hd * m + t) * HS], HS * sizeof(float));
  }
}

void Engine::Impl::layer(size_t li, int64_t n) {
  Layer& L = layers[li];
  const int64_t QKV = (NH + 2 * NKV) * HS;
  float* in = x.get();
  if (pre_ln) {
    norm(h.get(), x.get(), L.ln1_w, L.ln1_b, n);
    in = h.get();
  }
  if (L.qkv.data != nullptr) {
    mul({{&L.qkv, qkv.get(), QKV}}, in, C);
    add_bias(qkv.get(), L.b_qkv, n, QKV, QKV);
  } else {
    mul({{&L.q, qkv.get(), QKV},
         {&L.k, qkv.get() + NH * HS, QKV},
         {&L.v, qkv.get() + (NH + NKV) * HS, QKV}},
        in, C);
    add_bias(qkv.get(), L.b_q, n, QKV, NH * HS);
    add_bias(qkv.get() + NH * HS, L.b_k, n, QKV, NKV * HS);
    add_bias(qkv.get() + (NH + NKV) * HS, L.b_v, n, QKV, NKV * HS);
  }
  if (rope) {
    rotate(qkv.get(), n, NH, QKV);
    rotate(qkv.get() + NH * HS, n, NKV, QKV);
  }
  for (int64_t t = 0; t < n; ++t) {
    Cache& cache = caches[row_slot[t]];
    for (int64_t g = 0; g < NKV; ++g) {
      std::memcpy(&cache.k[li][(g * cap + row_pos[t]) * HS], &qkv[t * QKV + (NH + g) * HS],
                  HS * sizeof(float));
      std::memcpy(&cache.v[li][(g * cap + row_pos[t]) * HS], &qkv[t * QKV + (NH + NKV + g) * HS],
                  HS * sizeof(float));
    }
  }
  attention(li);
  mul({{&L.o, tmp.get(), C}}, att.get(), C);
  add_bias(tmp.get(), L.b_o, n, C, C);
  for (int64_t i = 0; i < n * C; ++i) x[i] += tmp[i];
  if (!pre_ln) {
    norm(h.get(), x.get(), L.ln1_w, L.ln1_b, n);
    std::copy(h.get(), h.get() + n * C, x.get());
  }
  in = x.get();
  if (pre_ln) {
    norm(h.get(), x.get(), L.ln2_w, L.ln2_b, n);
    in = h.get();
  }
  if (swiglu) {
    mul({{&L.gate, f1.get(), FF}, {&L.up, f2.get(), FF}}, in, C);
    add_bias(f1.get(), L.b_gate, n, FF, FF);
    add_bias(f2.get(), L.b_up, n, FF, FF);
    kernels::silu_forward<float>(f1.get(), f1.get(), n * FF);
    for (int64_t i = 0; i < n * FF; ++i) f1[i] *= f2[i];
  } else {
    mul({{&L.up, f2.get(), FF}}, in, C);
    add_bias(f2.get(), L.b_up, n, FF, FF);
    kernels::gelu_tanh_forward<float>(f1.get(), f2.get(), n * FF);
  }
  mul({{&L.down, tmp.get(), C}}, f1.get(), FF);
  add_bias(tmp.get(), L.b_down, n, C, C);
  for (int64_t i = 0; i < n * C; ++i) x[i] += tmp[i];
  if (!pre_ln) {
    norm(h.get(), x.get(), L.ln2_w, L.ln2_b, n);
    std::copy(h.get(), h.get() + n * C, x.get());
  }
}

// The products of `ps` over each row group (see `groups`).
void Engine::Impl::mul(std::initializer_list<Product> ps, const float* in, int64_t ldx) {
  Product part[3];
  LLMKIT_CHECK(ps.size() <= 3, "engine: at most three products share an input");
  for (const auto& [r0, n] : groups) {
    size_t k = 0;
    for (const Product& p : ps) part[k++] = {p.w, p.y + r0 * p.ldy, p.ldy};
    products({part, k}, n, in + r0 * ldx, ldx, qpath());
  }
}

void Engine::Impl::check_slot(int slot) const {
  LLMKIT_CHECK(slot >= 0 && slot < static_cast<int>(caches.size()), "engine: slot ", slot,
               " is out of range (", caches.size(), " slots)");
}

// Checks a batch and lays out its rows (segs, row_slot, row_pos); the ids, concatenated in
// segment order, go to `batch_ids`. Nothing is changed when it throws.
void Engine::Impl::plan(std::span<const BatchSegment> segments) {
  LLMKIT_CHECK(!segments.empty(), "engine: an empty batch");
  int64_t rows = 0;
  for (const BatchSegment& b : segments) {
    check_slot(b.slot);
    const int64_t n = static_cast<int64_t>(b.tokens.size());
    LLMKIT_CHECK(n > 0, "engine: slot ", b.slot, " has no tokens in the batch");
    LLMKIT_CHECK(caches[b.slot].pos + n <= cap, "engine: slot ", b.slot, ": ",
                 caches[b.slot].pos + n, " positions exceed the context of ", cap, " tokens");
    for (int32_t id : b.tokens)
      LLMKIT_CHECK(id >= 0 && id < V, "engine: token id ", id, " is outside the vocabulary (", V,
                   ")");
    rows += n;
  }
  LLMKIT_CHECK(rows <= kMaxChunk, "engine: a batch of ", rows, " tokens exceeds ", kMaxChunk);
  for (size_t i = 0; i < segments.size(); ++i)
    for (size_t j = 0; j < i; ++j)
      LLMKIT_CHECK(segments[i].slot != segments[j].slot, "engine: slot ", segments[i].slot,
                   " appears twice in one batch");
  // Rows: the one-token segments first (in runs of at most kDecodeRun), then each longer one.
  segs.assign(segments.size(), {});
  batch_ids.clear();
  groups.clear();
  int64_t r = 0;
  for (int pass = 0; pass < 2; ++pass)
    for (size_t i = 0; i < segments.size(); ++i) {
      const BatchSegment& b = segments[i];
      const int64_t n = static_cast<int64_t>(b.tokens.size()), p0 = caches[b.slot].pos;
      if ((n == 1) != (pass == 0)) continue;
      segs[i] = {b.slot, r, n, p0};
      if (groups.empty() || (!invariant && (n > 1 || groups.back().second == kDecodeRun)))
        groups.emplace_back(r, 0);
      groups.back().second += n;
      for (int64_t t = 0; t < n; ++t, ++r) {
        row_slot[r] = b.slot;
        row_pos[r] = p0 + t;
      }
      batch_ids.insert(batch_ids.end(), b.tokens.begin(), b.tokens.end());
    }
}

// One planned pass of n rows (n <= kMaxChunk); logits of every row into logits_out [n, V] when
// all_logits, else of each segment's last row into `logits` [segments, V].
void Engine::Impl::forward(const int32_t* ids, int64_t n, bool all_logits, float* logits_out) {
  embed(ids, n);
  for (size_t li = 0; li < layers.size(); ++li) layer(li, n);
  if (all_logits) {
    norm(h.get(), x.get(), lnf_w, lnf_b, n);
    mul({{&out, logits_out, V}}, h.get(), C);
  } else {
    // The last row of each segment, in the caller's order, multiplied in runs of kDecodeRun
    // (each run's rows get the bits a single row gets).
    const int64_t k = static_cast<int64_t>(segs.size());
    for (int64_t i = 0; i < k; ++i) {
      const Segment& sg = segs[i];
      std::memcpy(&tmp[i * C], &x[(sg.row0 + sg.n - 1) * C], C * sizeof(float));
    }
    norm(h.get(), tmp.get(), lnf_w, lnf_b, k);
    if (static_cast<int64_t>(logits.size()) < k * V) logits.resize(k * V);
    for (int64_t r0 = 0; r0 < k; r0 += kDecodeRun) {
      const Product p{&out, logits.data() + r0 * V, V};
      products({&p, 1}, std::min(kDecodeRun, k - r0), h.get() + r0 * C, C, qpath());
    }
  }
  for (const Segment& sg : segs) caches[sg.slot].pos += sg.n;
}

Engine::Engine(const models::LoadedModel& loaded, const EngineOptions& options)
    : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  LLMKIT_CHECK(loaded.gpt_config.has_value(), "engine: '", loaded.path, "' holds a ", loaded.arch,
               " model; the inference engine runs decoders (gpt, llama)");
  m.c = *loaded.gpt_config;
  const models::GPTConfig& c = m.c;
  m.C = c.n_embd;
  m.NH = c.n_head;
  m.NKV = c.kv_heads();
  m.HS = c.n_embd / c.n_head;
  m.FF = c.hidden();
  m.V = c.vocab_size;
  m.pre_ln = !c.post_ln;
  m.rms = c.norm == "rmsnorm";
  m.swiglu = c.activation == "swiglu";
  m.rope = c.pos_encoding == "rope";
  m.alibi = c.pos_encoding == "alibi";
  LLMKIT_CHECK(options.context >= 0, "engine: context must be >= 0, got ", options.context);
  m.cap = options.context > 0 ? std::min(options.context, c.block_size)
                              : std::min<int64_t>(c.block_size, 4096);
  if (c.pos_encoding == "sinusoidal")
    m.sinusoidal = nn::sinusoidal_table(c.block_size, c.n_embd, DType::F32).contiguous();
  if (loaded.gguf) {
    m.gguf = loaded.gguf;
    m.build_from_gguf(*loaded.gguf);
    m.source = "gguf";
  } else {
    LLMKIT_CHECK(loaded.gpt != nullptr, "engine: '", loaded.path, "' was loaded without weights");
    LLMKIT_CHECK(kernels::ggml_can_quantize(options.weight_type) &&
                     kernels::qmatmul_supports(options.weight_type),
                 "engine: cannot run weights of type ",
                 kernels::ggml_type_name(options.weight_type));
    m.build_from_module(*loaded.gpt, options.weight_type);
    m.source = "module";
  }
  LLMKIT_CHECK(options.slots >= 1, "engine: slots must be >= 1, got ", options.slots);
  m.invariant = options.batch_invariant;
  m.allocate(options.slots);
}

Engine::~Engine() = default;

int64_t Engine::context() const {
  return impl_->cap;
}

void Engine::reset(bool) {
  impl_->caches[0].pos = 0;
}

int64_t Engine::pos() const {
  return impl_->caches[0].pos;
}

void Engine::truncate(int64_t n) {
  truncate_slot(0, n);
}

int Engine::slots() const {
  return static_cast<int>(impl_->caches.size());
}

int64_t Engine::slot_pos(int slot) const {
  impl_->check_slot(slot);
  return impl_->caches[slot].pos;
}

void Engine::truncate_slot(int slot, int64_t n) {
  impl_->check_slot(slot);
  Cache& c = impl_->caches[slot];
  LLMKIT_CHECK(n >= 0 && n <= c.pos, "engine: cannot truncate slot ", slot, " to ", n, " of ",
               c.pos, " cached positions");
  c.pos = n;
}

void Engine::copy_slot(int from, int to, int64_t n) {
  Impl& m = *impl_;
  m.check_slot(from);
  m.check_slot(to);
  LLMKIT_CHECK(n >= 0 && n <= m.caches[from].pos, "engine: cannot copy ", n, " positions of slot ",
               from, ", which holds ", m.caches[from].pos);
  if (from != to) {
    const Cache& a = m.caches[from];
    Cache& b = m.caches[to];
    for (size_t li = 0; li < m.layers.size(); ++li)
      for (int64_t g = 0; g < m.NKV; ++g) {
        const size_t off = static_cast<size_t>(g * m.cap * m.HS), len = n * m.HS * sizeof(float);
        std::memcpy(b.k[li].get() + off, a.k[li].get() + off, len);
        std::memcpy(b.v[li].get() + off, a.v[li].get() + off, len);
      }
  }
  m.caches[to].pos = n;
}

int64_t Engine::max_batch_tokens() const {
  return kMaxChunk;
}

size_t Engine::kv_bytes_per_token() const {
  const Impl& m = *impl_;
  return static_cast<size_t>(2 * m.layers.size() * m.NKV * m.HS) * sizeof(float);
}

std::span<const float> Engine::eval_batch(std::span<const BatchSegment> segments) {
  Impl& m = *impl_;
  m.plan(segments);
  m.forward(m.batch_ids.data(), static_cast<int64_t>(m.batch_ids.size()), false, nullptr);
  return {m.logits.data(), segments.size() * static_cast<size_t>(m.V)};
}

int64_t Engine::vocab() const {
  return impl_->V;
}

const models::GPTConfig& Engine::config() const {
  return impl_->c;
}

std::span<const float> Engine::eval(std::span<const int32_t> tokens, bool all_logits) {
  Impl& m = *impl_;
  const int64_t n = static_cast<int64_t>(tokens.size()), pos = m.caches[0].pos;
  LLMKIT_CHECK(n > 0, "engine: no tokens to evaluate");
  LLMKIT_CHECK(pos + n <= m.cap, "engine: ", pos + n, " positions exceed the context of ", m.cap,
               " tokens");
  for (int32_t id : tokens)
    LLMKIT_CHECK(id >= 0 && id < m.V, "engine: token id ", id, " is outside the vocabulary (", m.V,
                 ")");
  if (all_logits && static_cast<int64_t>(m.logits.size()) < n * m.V) m.logits.resize(n * m.V);
  for (int64_t b = 0; b < n; b += kMaxChunk) {
    const int64_t len = std::min(kMaxChunk, n - b);
    const BatchSegment one{0, tokens.subspan(b, len)};
    m.plan({&one, 1});
    m.forward(tokens.data() + b, len, all_logits, all_logits ? m.logits.data() + b * m.V : nullptr);
  }
  if (all_logits) return {m.logits.data(), static_cast<size_t>(n * m.V)};
  return {m.logits.data(), static_cast<size_t>(m.V)};
}

std::span<const float> Engine::next_logits(std::span<const int32_t> seq, size_t fresh) {
  LLMKIT_CHECK(fresh <= seq.size() && seq.size() - fresh == static_cast<size_t>(pos()),
               "engine: ", seq.size() - fresh, " tokens fed before, but the cache holds ", pos());
  return eval(seq.last(fresh), false);
}

size_t Engine::weight_bytes() const {
  const Impl& m = *impl_;
  size_t total = m.out.bytes() + m.tok_embd.row_bytes();
  for (const Layer& L : m.layers)
    for (const QMatrix* q : {&L.qkv, &L.q, &L.k, &L.v, &L.o, &L.gate, &L.up, &L.down})
      if (q->data != nullptr) total += q->bytes();
  return total;
}

std::string Engine::describe() const {
  const Impl& m = *impl_;
  std::map<std::string, int64_t> count;
  for (const Layer& L : m.layers)
    for (const QMatrix* q : {&L.qkv, &L.q, &L.k, &L.v, &L.o, &L.gate, &L.up, &L.down})
      if (q->data != nullptr) ++count[type_label(q->type)];
  std::string main;
  int64_t best = -1;
  for (const auto& [t, k] : count)
    if (k > best) best = k, main = t;
  std::ostringstream o;
  o << m.c.arch << " " << m.c.n_layer << " layers x " << m.C << ", " << main;
  if (count.size() > 1) {
    o << " (";
    bool first = true;
    for (const auto& [t, k] : count)
      if (t != main) o << (first ? "" : ", ") << k << " " << t, first = false;
    o << ")";
  }
  o << ", output " << type_label(m.out.type) << ", " << std::fixed;
  o.precision(1);
  o << static_cast<double>(weight_bytes()) / (1 << 20) << " MiB of weights, context " << m.cap;
  return o.str();
}

}  // namespace llmkit::infer
