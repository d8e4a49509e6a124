// SmolLM2-135M-Instruct against llama.cpp (llama-cpp-python from its PyPI sdist, driven by
// tests/models/llamacpp_reference.py): the Q4_1 GGUF and its f32 copy (scripts/gguf-to-f32.py,
// cached in the working directory by source size+mtime) load to identical weights; llama.cpp
// tokenises our English/Korean ChatML and code prompts as we do; our 64 greedy tokens (KV cache)
// equal llama.cpp's on the f32 file. On the Q4_1 file the agreement is only reported (see the
// note at GreedyDecoding64Tokens). Skips visibly when llama_cpp, gguf or the model is absent.
#include <gtest/gtest.h>

#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "llmkit/infer/engine.h"
#include "llmkit/models/gguf_export.h"
#include "llmkit/models/load.h"
#include "llmkit/tokenizer/chat_template.h"
#include "tests/common/reference.h"
#include "tests/common/temp_dir.h"

using namespace llmkit;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr int kNewTokens = 64;

// Why a test cannot run ("" when it can).
std::string skip_reason() {
  if (llmkit::testing::model_path("smollm2").empty())
    return "SmolLM2 GGUF not found under " + llmkit::testing::models_dir() +
           " (scripts/get-models.sh): llama.cpp parity skipped";
  for (const char* mod : {"llama_cpp", "gguf"})
    if (!llmkit::testing::ref_python_has(mod))
      return std::string(mod) + " not importable in " + llmkit::testing::ref_python() +
             " (scripts/install-deps.sh --test): llama.cpp parity skipped";
  return "";
}

#define SKIP_UNLESS_READY()                \
  do {                                     \
    const std::string why = skip_reason(); \
    if (!why.empty()) GTEST_SKIP() << why; \
  } while (0)

// The f32 copy of the SmolLM2 GGUF, made once and cached under the working directory (the build
// tree under ctest) as smollm2-f32-<size>-<mtime>.gguf; "" (with a test failure) on error. A lock
// file serialises the conversion between test processes that ctest runs at once.
std::string f32_copy() {
  static std::string done;
  if (!done.empty()) return done;
  const std::string src = llmkit::testing::model_path("smollm2");
  struct stat st {};
  if (::stat(src.c_str(), &st) != 0) {
    ADD_FAILURE() << "cannot stat " << src;
    return "";
  }
  const fs::path dir = fs::absolute("llamacpp_parity_cache");
  fs::create_directories(dir);
  const std::string dst = (dir / ("smollm2-f32-" + std::to_string(st.st_size) + "-" +
                                  std::to_string(st.st_mtime) + ".gguf"))
                              .string();
  if (!fs::exists(dst)) {
    const std::string cmd = "flock '" + dst + ".lock' sh -c \"test -f '" + dst + "' || " +
                            llmkit::testing::ref_python() + " '" + llmkit::testing::source_dir() +
                            "/scripts/gguf-to-f32.py' '" + src + "' '" + dst + "'\" > '" + dst +
                            ".log' 2>&1";
    if (std::system(cmd.c_str()) != 0 || !fs::exists(dst)) {
      ADD_FAILURE() << "f32 conversion failed: " << cmd << " (log in " << dst << ".log)";
      return "";
    }
  }
  return done = dst;
}

struct Prompt {
  std::string name, text;
  std::vector<int32_t> ids;  // ours
};

// English and Korean ChatML chat prompts (the model's own template, generation prompt added) and
// a raw code prompt, tokenised by our GGUF tokenizer with special tokens recognised.
std::vector<Prompt> make_prompts(const models::LoadedModel& m) {
  const tokenizer::ChatTemplate tpl(m.chat_template, m.bos_token, m.eos_token);
  auto chat = [&](const char* user) {
    const tokenizer::ChatMessage msgs[] = {{"user", user}};
    return tpl.apply(msgs, /*add_generation_prompt=*/true);
  };
  std::vector<Prompt> p = {
      {"english", chat("What is the capital of France? Answer in one sentence."), {}},
      {"korean", chat("한국의 수도는 어디인가요? 짧게 설명해 주세요."), {}},
      {"code", "def fibonacci(n):\n    \"\"\"Return the n-th Fibonacci number.\"\"\"\n", {}}};
  tokenizer::EncodeOptions eo;
  eo.allow_special = true;
  for (Prompt& q : p) {
    if (m.add_bos) q.ids.push_back(m.bos_id);
    const std::vector<int32_t> body = m.tokenizer->encode(q.text, eo);
    q.ids.insert(q.ids.end(), body.begin(), body.end());
  }
  return p;
}

// Runs llamacpp_reference.py on `model` for the prompts, decoding `new_tokens` greedy tokens each
// (once per model file and count per process); null (with a test failure) on error.
const json* reference(const std::string& model, const std::vector<Prompt>& prompts,
                      int new_tokens = kNewTokens) {
  static std::map<std::string, json> done;
  static std::unique_ptr<llmkit::testing::TempDir> tmp;
  if (!tmp) tmp = std::make_unique<llmkit::testing::TempDir>();
  const std::string key = model + "#" + std::to_string(new_tokens);
  auto it = done.find(key);
  if (it != done.end()) return &it->second;
  json in = {{"new_tokens", new_tokens}, {"prompts", json::array()}, {"texts", json::array()}};
  for (const Prompt& p : prompts) {
    in["prompts"].push_back(p.ids);
    in["texts"].push_back(p.text);
  }
  const std::string tag = std::to_string(done.size());
  const std::string in_path = tmp->file("in" + tag + ".json"),
                    out_path = tmp->file("out" + tag + ".json");
  std::ofstream(in_path) << in.dump();
  const std::string cmd = llmkit::testing::ref_python() + " '" + llmkit::testing::source_dir() +
                          "/tests/models/llamacpp_reference.py' '" + model + "' '" + in_path +
                          "' '" + out_path + "' > '" + out_path + ".log' 2>&1";
  if (std::system(cmd.c_str()) != 0) {
    std::ifstream log(out_path + ".log");
    ADD_FAILURE() << "llama.cpp reference failed: " << cmd << "\n" << log.rdbuf();
    return nullptr;
  }
  return &(done[key] = json::parse(std::ifstream(out_path)));
}

struct Greedy {
  std::vector<int32_t> tokens;
  std::vector<float> margin;  // top-1 minus top-2 logit at each step
};

// Our greedy decoding: prefill with the KV cache, then one token at a time (argmax, first index
// on ties, as numpy's argmax in the reference).
Greedy our_greedy(models::GPT& g, const std::vector<int32_t>& prompt) {
  NoGradGuard ng;
  const int64_t n = static_cast<int64_t>(prompt.size());
  auto caches = g.make_caches(1, n + kNewTokens);
  Tensor logits = g.forward(Tensor::from_vector(prompt, {1, n}), &caches);
  Greedy out;
  for (int i = 0; i < kNewTokens; ++i) {
    const int64_t T = logits.size(1), V = logits.size(2);
    const std::vector<float> last = logits.slice(1, T - 1, T).contiguous().to_vector<float>();
    int32_t best = 0;
    for (int64_t v = 1; v < V; ++v)
      if (last[v] > last[best]) best = static_cast<int32_t>(v);
    float second = -INFINITY;
    for (int64_t v = 0; v < V; ++v)
      if (v != best && last[v] > second) second = last[v];
    out.tokens.push_back(best);
    out.margin.push_back(last[best] - second);
    logits = g.forward(Tensor::from_vector(std::vector<int32_t>{best}, {1, 1}), &caches);
  }
  return out;
}

size_t common_prefix(const std::vector<int32_t>& a, const std::vector<int32_t>& b) {
  size_t i = 0;
  while (i < a.size() && i < b.size() && a[i] == b[i]) ++i;
  return i;
}

models::LoadedModel load_f32_model() {
  const std::string f32 = f32_copy();
  if (f32.empty()) return {};
  return models::load(f32);
}

}  // namespace

// The f32 copy must hold exactly the values our Q4_1 dequantisation gives (the `gguf` package
// dequantised it), so "the same weights" holds for both readers.
TEST(LlamaCppParity, F32CopyLoadsLikeQ4_1Original) {
  SKIP_UNLESS_READY();
  models::LoadOptions lo;
  lo.tokenizer = false;
  const std::string f32 = f32_copy();
  ASSERT_FALSE(f32.empty());
  const models::LoadedModel a = models::load(llmkit::testing::model_path("smollm2"), lo);
  const models::LoadedModel b = models::load(f32, lo);
  ASSERT_NE(a.gpt, nullptr);
  ASSERT_NE(b.gpt, nullptr);
  const auto pa = a.gpt->state_dict(), pb = b.gpt->state_dict();
  ASSERT_EQ(pa.size(), pb.size());
  for (const auto& [name, ta] : pa) {
    ASSERT_TRUE(pb.count(name)) << name << " missing from the f32 copy";
    const std::vector<float> va = ta.to_vector<float>(), vb = pb.at(name).to_vector<float>();
    ASSERT_EQ(va.size(), vb.size()) << name;
    EXPECT_EQ(std::memcmp(va.data(), vb.data(), va.size() * sizeof(float)), 0)
        << name << ": Q4_1 and f32 copy differ";
  }
  std::printf("%zu tensors identical (Q4_1 dequantised by llmkit == f32 copy)\n", pa.size());
}

TEST(LlamaCppParity, TokenizationMatches) {
  SKIP_UNLESS_READY();
  const models::LoadedModel m = load_f32_model();
  ASSERT_NE(m.gpt, nullptr);
  ASSERT_TRUE(m.tokenizer.has_value());
  const std::vector<Prompt> prompts = make_prompts(m);
  const json* ref = reference(f32_copy(), prompts, /*new_tokens=*/0);
  ASSERT_NE(ref, nullptr);
  ASSERT_EQ(ref->at("tokenized").size(), prompts.size());
  for (size_t i = 0; i < prompts.size(); ++i) {
    const auto want = ref->at("tokenized")[i].get<std::vector<int32_t>>();
    std::printf("%s: %zu tokens (llama.cpp %zu)\n", prompts[i].name.c_str(), prompts[i].ids.size(),
                want.size());
    EXPECT_EQ(prompts[i].ids, want) << prompts[i].name << ": llama.cpp tokenises differently";
  }
}

// f32, asserted: llama.cpp's f32 matmuls and ours sum in different orders, but with its KV cache
// in f32 too (tests/models/llamacpp_reference.py) the logits agree far closer than the top-1/top-2
// margins here (smallest seen: 2.3e-3, Korean step 31 -- which llama.cpp's default f16 KV cache
// does flip), so all 64 tokens agree. Should a prompt ever diverge, the test prints the step and
// our top-2 margin there; a divergence is accepted only where that margin is below 1e-3 (a near
// tie that summation order may flip), and fails otherwise.
//
// Q4_1, reported, not asserted: for Q4_1 (as for the other quantised types) llama.cpp quantises
// the activations to Q8 blocks before each matmul and works in integer dot products, while llmkit
// dequantises the weights to f32 (the same values as the f32 copy, see above) and multiplies in
// f32; the logits differ by far more than rounding, so greedy tokens may diverge after a while.
TEST(LlamaCppParity, GreedyDecoding64Tokens) {
  SKIP_UNLESS_READY();
  models::LoadedModel m = load_f32_model();
  ASSERT_NE(m.gpt, nullptr);
  const std::vector<Prompt> prompts = make_prompts(m);
  const json* ref = reference(f32_copy(), prompts);
  ASSERT_NE(ref, nullptr);
  const json* q4 = reference(llmkit::testing::model_path("smollm2"), prompts);
  ASSERT_NE(q4, nullptr);
  for (size_t i = 0; i < prompts.size(); ++i) {
    const auto want = ref->at("tokens")[i].get<std::vector<int32_t>>();
    const Greedy got = our_greedy(*m.gpt, prompts[i].ids);
    const size_t k = common_prefix(got.tokens, want);
    float min_margin = INFINITY;
    for (float x : got.margin) min_margin = std::min(min_margin, x);
    std::printf("f32 %s: %zu/%d greedy tokens agree with llama.cpp (smallest top-2 margin %.4g)\n",
                prompts[i].name.c_str(), k, kNewTokens, min_margin);
    std::printf("Q4_1 %s: %zu/%d leading greedy tokens agree with llama.cpp's Q4_1 (reported)\n",
                prompts[i].name.c_str(),
                common_prefix(got.tokens, q4->at("tokens")[i].get<std::vector<int32_t>>()),
                kNewTokens);
    if (k == want.size() && k == got.tokens.size()) continue;
    ASSERT_LT(k, got.tokens.size());
    std::printf("  first difference at step %zu: ours %d, llama.cpp %d, our top-2 margin %.4g\n", k,
                got.tokens[k], k < want.size() ? want[k] : -1, got.margin[k]);
    EXPECT_LT(got.margin[k], 1e-3f)
        << prompts[i].name << ": greedy tokens differ from llama.cpp's at step " << k
        << " where our top-2 margin is " << got.margin[k] << " (not a near tie)";
  }
}

// The quantised path. infer::Engine runs the Q4_1 file on its stored blocks and, as llama.cpp
// does, quantises each activation row to 8-bit blocks (Q8_1 for Q4_1 weights, Q8_0 for the Q8_0
// embedding) before integer dot products; single matrix products agree with ggml's to float
// rounding (bit for bit for Q4_0). But an activation that lands within float rounding of a Q8
// rounding boundary rounds one way here and the other in ggml, and SmolLM2's hidden states carry
// outliers of ~2.5e4 (layer 11 on): one flipped step there moves later values by 1e-3 of that.
// Both implementations therefore differ from the dequantised f32 model by ~0.4-1.5 in the logits,
// and from each other by as much; free-running greedy decoding then diverges at the first step
// whose top-2 margin is below that noise.
// So the assertion is teacher-forced: llama.cpp's own 64 greedy tokens, fed to the engine one at
// a time, must each be the engine's top choice or within kNoise of it, and mostly its top choice
// (measured on the Q4_1 file: 185 of 192 steps top-1, the largest gap 0.33); the free-running
// agreement is printed (26, 42 and 6 of 64 tokens).
// engine_follows_llamacpp runs both on `file` (label for the output).
static void engine_follows_llamacpp(const std::string& file, const std::string& label) {
  // The two implementations' logits differ by up to ~1.2 (the largest over the vocabulary, an
  // activation rounded to the other 8-bit step); the largest gap measured at llama.cpp's choice
  // is 0.4 (q8_0, code prompt), and llama.cpp's token is our top-1 at 60 or more of 64 steps.
  constexpr float kNoise = 1.0f;
  constexpr int kMinTop1 = 56;
  models::LoadOptions lo;
  lo.gguf_module = false;
  models::LoadedModel m = models::load(file, lo);
  ASSERT_EQ(m.gpt, nullptr);  // nothing dequantised
  const std::vector<Prompt> prompts = make_prompts(m);
  const json* ref = reference(file, prompts);
  ASSERT_NE(ref, nullptr);
  infer::Engine e(m);
  std::printf("%s engine: %s\n", label.c_str(), e.describe().c_str());
  for (size_t i = 0; i < prompts.size(); ++i) {
    const auto want = ref->at("tokens")[i].get<std::vector<int32_t>>();
    ASSERT_EQ(want.size(), static_cast<size_t>(kNewTokens));
    // Teacher-forced, the way llama.cpp made them: the prompt, then llama.cpp's tokens one at a
    // time, each step's logits against llama.cpp's next token (the same kernels' numerics: the
    // prompts are under 64 tokens, so their prefill is the int8 path too).
    e.reset(true);
    std::span<const float> row = e.eval(prompts[i].ids);
    int top1 = 0;
    float worst = 0;
    for (int s = 0; s < kNewTokens; ++s) {
      for (float x : row) ASSERT_TRUE(std::isfinite(x));
      const float best = *std::max_element(row.begin(), row.end());
      const float gap = best - row[want[s]];
      top1 += gap == 0;
      worst = std::max(worst, gap);
      EXPECT_LT(gap, kNoise) << label << " " << prompts[i].name << " step " << s
                             << ": llama.cpp's token " << want[s] << " is " << gap
                             << " below our best logit";
      const int32_t next[] = {want[s]};
      row = e.eval(next);
    }
    EXPECT_GE(top1, kMinTop1) << label << " " << prompts[i].name
                              << ": llama.cpp's token is our top-1 at only " << top1 << " of "
                              << kNewTokens << " steps";
    // Free-running, reported: our own greedy tokens against llama.cpp's.
    e.reset(true);
    std::vector<int32_t> ours;
    std::span<const float> last = e.eval(prompts[i].ids);
    for (int s = 0; s < kNewTokens; ++s) {
      const int32_t best =
          static_cast<int32_t>(std::max_element(last.begin(), last.end()) - last.begin());
      ours.push_back(best);
      const int32_t next[] = {best};
      last = e.eval(next);
    }
    std::printf(
        "%s engine %s: llama.cpp's token is our top-1 at %d/%d teacher-forced steps "
        "(largest gap %.3g); free-running, the first %zu/%d greedy tokens agree\n",
        label.c_str(), prompts[i].name.c_str(), top1, kNewTokens, worst, common_prefix(ours, want),
        kNewTokens);
  }
}

TEST(LlamaCppParity, QuantisedEngineFollowsLlamaCppGreedyTokens) {
  SKIP_UNLESS_READY();
  engine_follows_llamacpp(llmkit::testing::model_path("smollm2"), "Q4_1");
}

// `llmkit quantize`'s own files, done as the issue asks: llama.cpp loads them and its greedy
// tokens are ours (teacher-forced, as above). q8_0 is our Q8_0 x Q8_0 path; q4_k, at SmolLM2's
// 576-wide rows, is mostly Q5_0 (llama.cpp's fallback) with Q4_K in ffn_down and Q8_0 output.
TEST(LlamaCppParity, ExportedFilesEngineFollowsLlamaCpp) {
  SKIP_UNLESS_READY();
  llmkit::testing::TempDir tmp;
  models::LoadOptions lo;
  lo.gguf_module = false;
  const models::LoadedModel src = models::load(llmkit::testing::model_path("smollm2"), lo);
  for (const char* type : {"q8_0", "q4_k"}) {
    const std::string out = tmp.file(std::string("smollm2-") + type + ".gguf");
    models::GgufExportOptions o;
    o.type = models::parse_file_type(type);
    models::export_gguf(src, out, o);
    engine_follows_llamacpp(out, type);
  }
}
