// AdamW against a scalar reference of torch.optim.AdamW, its state round trip, the decay rule
// (by role; per family exactly the projection weights), learning-rate schedules (and the
// default warm-up) and gradient clipping.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>

#include "llmkit/core/autograd.h"
#include "llmkit/data/shards.h"
#include "llmkit/io/json_file.h"
#include "llmkit/ops/ops.h"
#include "llmkit/train/adamw.h"
#include "llmkit/train/checkpoint.h"
#include "llmkit/train/clip.h"
#include "llmkit/train/schedule.h"
#include "llmkit/train/task.h"
#include "llmkit/train/trainer.h"
#include "tests/common/temp_dir.h"

using namespace llmkit;
using namespace llmkit::train;
using llmkit::testing::TempDir;

static Tensor param(std::vector<double> v, Shape s) {
  return Tensor::from_vector(v, s).requires_grad_();
}
static void set_grad(const Tensor& p, std::vector<double> g) {
  p.zero_grad();
  Tensor x = p * Tensor::from_vector(g, p.shape());
  ops::sum(x).backward();
}

TEST(AdamW, MatchesScalarReference) {
  Tensor w = param({0.5, -1.0, 2.0, 0.1}, {2, 2}), b = param({0.3, -0.2}, {2});
  AdamW opt({{"h.0.mlp.c_fc.weight", w}, {"h.0.mlp.c_fc.bias", b}},
            {.lr = 0.01, .beta1 = 0.9, .beta2 = 0.95, .eps = 1e-8, .weight_decay = 0.1});
  std::vector<double> rw = {0.5, -1.0, 2.0, 0.1}, rb = {0.3, -0.2}, mw(4), vw(4), mb(2), vb(2);
  for (int t = 1; t <= 5; ++t) {
    std::vector<double> gw = {0.1 * t, -0.2, 0.3, 0.05 * t}, gb = {-0.1, 0.2 * t};
    set_grad(w, gw);
    set_grad(b, gb);
    opt.step();
    auto ref = [&](std::vector<double>& p, std::vector<double>& m, std::vector<double>& v,
                   const std::vector<double>& g, double wd) {
      for (size_t i = 0; i < p.size(); ++i) {
        p[i] -= 0.01 * wd * p[i];
        m[i] = 0.9 * m[i] + 0.1 * g[i];
        v[i] = 0.95 * v[i] + 0.05 * g[i] * g[i];
        const double mh = m[i] / (1 - std::pow(0.9, t)), vh = v[i] / (1 - std::pow(0.95, t));
        p[i] -= 0.01 * mh / (std::sqrt(vh) + 1e-8);
      }
    };
    ref(rw, mw, vw, gw, 0.1);
    ref(rb, mb, vb, gb, 0.0);
    const auto aw = w.to_vector<double>(), ab = b.to_vector<double>();
    for (int i = 0; i < 4; ++i) EXPECT_NEAR(aw[i], rw[i], 1e-12) << t;
    for (int i = 0; i < 2; ++i) EXPECT_NEAR(ab[i], rb[i], 1e-12) << t;
  }
}

// Decay is decided by role: identity with an embedding table, not the name.
TEST(AdamW, DecayRuleIsByRoleNotName) {
  Tensor table = param({1, 2, 3, 4}, {2, 2}), proj = param({1, 2, 3, 4}, {2, 2}),
         gain = param({1, 1}, {2});
  EXPECT_FALSE(AdamW::decays(table, {table}));
  EXPECT_TRUE(AdamW::decays(proj, {table}));
  EXPECT_FALSE(AdamW::decays(gain, {}));
  EXPECT_TRUE(AdamW::decays(table, {}));  // no tables named: every matrix decays (torch's AdamW)
  // Misleading names change nothing.
  AdamW opt({{"h.0.mlp.c_fc.weight", table}, {"wte.weight", proj}, {"ln_f.weight", gain}}, {},
            {table});
  EXPECT_EQ(opt.decayed_names(), std::vector<std::string>{"wte.weight"});
}

namespace {

// The Task of a repo config (configs/NAME.json), with just enough data to build it.
struct FamilyTask {
  TempDir dir;
  std::optional<tokenizer::Tokenizer> tok;
  std::unique_ptr<Task> task;

  explicit FamilyTask(const std::string& config, const nlohmann::json& model_changes) {
    const char* src = std::getenv("LLMKIT_SOURCE_DIR");
    if (src == nullptr) throw std::runtime_error("LLMKIT_SOURCE_DIR not set (run through ctest)");
    const nlohmann::json cfg =
        io::read_json_file(std::string(src) + "/configs/" + config + ".json");
    nlohmann::json model = cfg.at("model");
    if (model_changes.is_object()) model.update(model_changes);
    const TrainConfig tc = TrainConfig::from_json(cfg.value("train", nlohmann::json::object()));
    tokenizer::TrainOptions opt;
    opt.vocab_size = 300;
    opt.special_tokens = task_special_tokens(model, tc);
    std::string text;
    for (int i = 0; i < 200; ++i) text += "the cat sees the moon and the dog likes a river.\n";
    tok.emplace(tokenizer::Tokenizer::train_from_text(text, opt));
    TaskData data;
    data.train_shard = dir.file("train.bin");
    data.val_shard = dir.file("val.bin");
    data::write_shard(data.train_shard, tok->encode(text), tok->vocab_size());
    data::write_shard(data.val_shard, tok->encode(text), tok->vocab_size());
    data.tokenizer = &*tok;
    data.quiet = true;
    task = make_task(model, tc, data);
  }
};

// What the test expects to decay: the weight of every projection layer (Linear, by the
// modules' checkpoint names) and the recurrent cells' input/hidden matrices; nothing else.
bool is_projection_weight(const std::string& name) {
  static const std::set<std::string> kLinear = {
      "c_attn",  "c_proj",    "c_fc",    "q_proj",
      "k_proj",  "v_proj",    "o_proj",  "gate_proj",
      "up_proj", "down_proj", "lm_head", "query",
      "key",     "value",     "dense",   "seq_relationship",
      "q",       "k",         "v",       "o",
      "wi",      "wi_0",      "wi_1",    "wo",
      "head",    "fc1",       "fc2",     "out_proj"};
  const size_t dot = name.rfind('.');
  const std::string leaf = name.substr(dot + 1);
  if (leaf.rfind("weight_ih_l", 0) == 0 || leaf.rfind("weight_hh_l", 0) == 0) return true;
  if (leaf != "weight" || dot == std::string::npos) return false;
  const size_t dot2 = name.rfind('.', dot - 1);
  const std::string module = name.substr(dot2 == std::string::npos ? 0 : dot2 + 1, dot - dot2 - 1);
  return kLinear.count(module) > 0;
}

}  // namespace

TEST(AdamW, DecayedSetPerFamilyIsTheProjectionWeights) {
  struct Case {
    const char* config;
    nlohmann::json changes;
    std::vector<std::string> never;  // embedding tables that must not decay
  };
  const std::vector<Case> cases = {
      {"gpt2-tiny", nlohmann::json::object(), {"wte.weight", "wpe.weight"}},
      {"gpt2-tiny", {{"tie_embeddings", false}}, {"wte.weight", "wpe.weight"}},
      {"llama-tiny", nlohmann::json::object(), {"model.embed_tokens.weight"}},
      {"bert-tiny",
       nlohmann::json::object(),
       {"bert.embeddings.word_embeddings.weight", "bert.embeddings.position_embeddings.weight",
        "bert.embeddings.token_type_embeddings.weight"}},
      {"t5-tiny",
       nlohmann::json::object(),
       {"shared.weight", "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight",
        "decoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight"}},
      {"t5-tiny", {{"tie_embeddings", false}}, {"shared.weight"}},
      {"bart-tiny", nlohmann::json::object(), {"shared.weight"}},
      {"rnn-lstm-tiny", nlohmann::json::object(), {}},
      {"rnn-gru-tiny", {{"tie_embeddings", false}}, {}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(std::string(c.config) + " " + c.changes.dump());
    FamilyTask f(c.config, c.changes);
    const auto params = f.task->model().named_parameters();
    AdamW opt(params, {}, f.task->embedding_tables());
    const std::vector<std::string> decayed = opt.decayed_names();
    std::vector<std::string> want;
    std::set<std::string> names;
    for (const auto& [n, p] : params) {
      names.insert(n);
      if (is_projection_weight(n)) want.push_back(n);
    }
    EXPECT_EQ(decayed, want);
    EXPECT_FALSE(want.empty());
    for (const auto& n : c.never) {
      EXPECT_TRUE(names.count(n)) << n << " is not a parameter name of this family";
      EXPECT_EQ(std::count(decayed.begin(), decayed.end(), n), 0) << n;
    }
    // Every 2-D parameter that does not decay is one of the task's embedding tables.
    const auto tables = f.task->embedding_tables();
    for (const auto& [n, p] : params) {
      if (p.dim() < 2 || std::count(decayed.begin(), decayed.end(), n) > 0) continue;
      EXPECT_TRUE(std::any_of(tables.begin(), tables.end(), [&](const Tensor& t) {
        return t.same(p);
      })) << n;
    }
  }
}

TEST(AdamW, StateRoundTripContinuesIdentically) {
  auto run = [](bool reload) {
    Tensor w = param({0.5, -1.0, 2.0, 0.1}, {2, 2});
    auto opt = std::make_unique<AdamW>(std::vector<std::pair<std::string, Tensor>>{{"w", w}},
                                       AdamWOptions{});
    for (int t = 0; t < 6; ++t) {
      if (reload && t == 3) {
        std::map<std::string, Tensor> s;
        for (auto& [n, x] : opt->state()) s[n] = x.clone();
        const int64_t step = opt->step_count();
        opt = std::make_unique<AdamW>(std::vector<std::pair<std::string, Tensor>>{{"w", w}},
                                      AdamWOptions{});
        opt->load_state(s, step);
      }
      set_grad(w, {0.1 * t, -0.3, 0.2, 0.01});
      opt->step();
    }
    return w.to_vector<double>();
  };
  EXPECT_EQ(run(false), run(true));
  Tensor w = param({1, 2}, {2});
  AdamW opt({{"w", w}}, {});
  EXPECT_THROW(opt.load_state({}, 1), Error);
  EXPECT_THROW(opt.load_state({{"w.exp_avg", Tensor::zeros({3}, DType::F64)},
                               {"w.exp_avg_sq", Tensor::zeros({2}, DType::F64)}},
                              1),
               Error);
}

TEST(AdamW, MinimisesAQuadraticInFloat) {
  Tensor x = Tensor::full({10}, 3.0).requires_grad_();
  AdamW opt({{"x", x}},
            {.lr = 0.1, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .weight_decay = 0.0});
  double loss = 0;
  for (int i = 0; i < 300; ++i) {
    opt.zero_grad();
    Tensor l = ops::sum((x - 1.0) * (x - 1.0));
    loss = l.item<float>();
    l.backward();
    opt.step();
  }
  EXPECT_LT(loss, 1e-3);
}

TEST(Schedule, CosineWarmupLinearConstant) {
  LrSchedule s{LrSchedule::Kind::Cosine, 10, 110, 1.0, 0.1};
  EXPECT_NEAR(s.at(0), 0.1, 1e-12);
  EXPECT_NEAR(s.at(9), 1.0, 1e-12);
  EXPECT_NEAR(s.at(10), 1.0, 1e-12);
  EXPECT_NEAR(s.at(60), 0.55, 1e-12);  // halfway: min + (max - min) / 2
  EXPECT_NEAR(s.at(110), 0.1, 1e-12);
  EXPECT_NEAR(s.at(500), 0.1, 1e-12);
  s.kind = LrSchedule::Kind::Linear;
  EXPECT_NEAR(s.at(35), 1.0 - 0.9 * 0.25, 1e-12);
  s.kind = LrSchedule::Kind::Constant;
  EXPECT_NEAR(s.at(100), 1.0, 1e-12);
  s.min_lr = 2.0;
  EXPECT_THROW(s.at(3), Error);
}

// A config without warmup gets min(100, schedule_steps / 10); the schedule's length defaults to
// the steps and both are recorded resolved.
TEST(Schedule, DefaultWarmupFitsShortRuns) {
  auto warmup = [](nlohmann::json j) { return TrainConfig::from_json(j).warmup; };
  EXPECT_EQ(warmup({{"steps", 30}}), 3);
  EXPECT_EQ(warmup({{"steps", 999}}), 99);
  EXPECT_EQ(warmup({{"steps", 5000}}), 100);
  EXPECT_EQ(warmup({{"steps", 5}}), 0);
  EXPECT_EQ(warmup({{"steps", 5000}, {"warmup", 7}}), 7);
  EXPECT_EQ(warmup({{"steps", 10}, {"schedule_steps", 2000}}), 100);
  const TrainConfig tc = TrainConfig::from_json({{"steps", 40}});
  EXPECT_EQ(tc.schedule_steps, 40);
  const nlohmann::json saved = tc.to_json();
  EXPECT_EQ(saved.at("warmup"), 4);
  EXPECT_EQ(saved.at("schedule_steps"), 40);
  const LrSchedule s = make_schedule(tc);
  EXPECT_EQ(s.warmup, 4);
  EXPECT_EQ(s.total, 40);
  EXPECT_DOUBLE_EQ(s.at(0), tc.lr / 4);
  EXPECT_THROW(TrainConfig::from_json({{"steps", 10}, {"schedule_steps", -1}}), Error);
  EXPECT_THROW(TrainConfig::from_json({{"steps", 10}, {"checkpoint_interval", -2}}), Error);
}

TEST(Clip, GlobalNorm) {
  Tensor a = param({3, 0}, {2}), b = param({0, 4}, {2}), c = param({1}, {1});
  set_grad(a, {3, 0});
  set_grad(b, {0, 4});
  EXPECT_NEAR(clip_grad_norm({a, b, c}, 10.0), 5.0, 1e-12);  // c has no grad: skipped
  EXPECT_EQ(a.grad().to_vector<double>()[0], 3.0);
  EXPECT_NEAR(clip_grad_norm({a, b}, 1.0), 5.0, 1e-12);
  EXPECT_NEAR(a.grad().to_vector<double>()[0], 3.0 / (5.0 + 1e-6), 1e-9);
  EXPECT_NEAR(clip_grad_norm({a, b}, 0.0), 1.0, 1e-6);
}
