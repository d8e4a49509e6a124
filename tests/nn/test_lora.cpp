// LoRA in nn::Linear and over a module tree (nn/lora.h): the adapted forward's gradient against
// central finite differences in float64 (input, A, B, bias; the frozen base gets none), merge /
// unmerge / merge_and_unload / remove_lora, PEFT's name rule, freezing and PEFT's parameter-count
// line, dropout only in training, and the seeded init. Model-level tests (GPT, BERT) are in
// tests/models/test_lora_models.cpp; the quantised base in tests/nn/test_qlora.cpp.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "common/gradcheck.h"
#include "llmkit/core/error.h"
#include "llmkit/nn/layers.h"
#include "llmkit/nn/lora.h"

using namespace llmkit;
using llmkit::testing::gradcheck;
using llmkit::testing::max_abs;
using llmkit::testing::max_abs_diff;
using llmkit::testing::rand_tensor;
using V = std::vector<Tensor>;

namespace {

// A two-Linear module, names "attn.c_attn" and "mlp.fc" plus "head", for the tree-level calls.
struct Inner : nn::Module {
  std::shared_ptr<nn::Linear> lin;
  Inner(const std::string& name, int64_t in, int64_t out, bool bias, DType dt) {
    lin = register_module(name, std::make_shared<nn::Linear>(in, out, bias, dt));
  }
};
struct Net : nn::Module {
  std::shared_ptr<Inner> attn, mlp;
  std::shared_ptr<nn::Linear> head;
  explicit Net(DType dt = DType::F64) {
    attn = register_module("attn", std::make_shared<Inner>("c_attn", 6, 12, true, dt));
    mlp = register_module("mlp", std::make_shared<Inner>("fc", 12, 6, false, dt));
    head = register_module("head", std::make_shared<nn::Linear>(6, 3, true, dt));
    Generator g(3);
    NoGradGuard ng;
    for (auto& [n, p] : named_parameters()) g.uniform_(p, -0.5, 0.5);
  }
  Tensor forward(const Tensor& x) const {
    return head->forward(mlp->lin->forward(attn->lin->forward(x)));
  }
};

// A random Linear in f64 with an adapter whose B is random too (so A gets a gradient).
std::shared_ptr<nn::Linear> lora_linear(int64_t in, int64_t out, int64_t r, bool bias,
                                        double alpha = 16) {
  auto l = std::make_shared<nn::Linear>(in, out, bias, DType::F64);
  Generator g(11), init(12);
  NoGradGuard ng;
  g.uniform_(l->weight, -0.5, 0.5);
  if (bias) g.uniform_(l->bias, -0.5, 0.5);
  l->add_lora(r, alpha, 0.0, init, nullptr);
  g.uniform_(l->lora_B->weight, -0.5, 0.5);
  return l;
}

void check_gradients(int64_t r, bool bias) {
  auto l = lora_linear(5, 7, r, bias);
  l->weight.requires_grad_(false);  // the frozen base
  Tensor x = rand_tensor({2, 3, 5}, 21).requires_grad_();
  V inputs = {x, l->lora_A->weight, l->lora_B->weight};
  if (bias) inputs.push_back(l->bias);
  gradcheck([&](const V& v) { return l->forward(v[0]); }, inputs);
  EXPECT_FALSE(l->weight.grad().defined()) << "the frozen base weight got a gradient";
  EXPECT_EQ(l->lora_A->weight.size(0), r);
  EXPECT_EQ(l->lora_B->weight.size(1), r);
}

std::vector<std::string> names(const nn::Module& m) {
  std::vector<std::string> v;
  for (auto& [n, t] : m.named_parameters()) v.push_back(n);
  return v;
}

}  // namespace

TEST(LoraLinear, GradientMatchesFiniteDifferences) {
  check_gradients(3, true);
}
TEST(LoraLinear, GradientRankOne) {
  check_gradients(1, true);
}
TEST(LoraLinear, GradientBiasFreeBase) {
  check_gradients(2, false);
}

TEST(LoraLinear, ForwardIsBasePlusScaledProduct) {
  auto l = lora_linear(4, 6, 2, true, 6.0);
  EXPECT_DOUBLE_EQ(l->lora_scaling, 3.0);
  NoGradGuard ng;
  const Tensor x = rand_tensor({3, 4}, 5);
  const Tensor want = ops::linear(x, l->weight, l->bias) +
                      ops::linear(ops::linear(x, l->lora_A->weight), l->lora_B->weight) * 3.0;
  EXPECT_LT(max_abs_diff(l->forward(x), want), 1e-13);
}

TEST(LoraLinear, InitBZeroAndAWithinKaimingBound) {
  nn::Linear l(16, 8, true, DType::F64);
  Generator g(1);
  l.add_lora(4, 8, 0.0, g, nullptr);
  EXPECT_EQ(max_abs(l.lora_B->weight.to_vector<double>()), 0.0);
  const double a = max_abs(l.lora_A->weight.to_vector<double>());
  EXPECT_GT(a, 0.0);
  EXPECT_LE(a, 0.25);  // U(-1/sqrt(in), 1/sqrt(in))
  // The adapter's names are PEFT's.
  EXPECT_EQ(names(l),
            (std::vector<std::string>{"weight", "bias", "lora_A.weight", "lora_B.weight"}));
}

TEST(LoraLinear, SameSeedSameA) {
  nn::Linear a(8, 4), b(8, 4), c(8, 4);
  Generator ga(42), gb(42), gc(43);
  a.add_lora(2, 4, 0.0, ga, nullptr);
  b.add_lora(2, 4, 0.0, gb, nullptr);
  c.add_lora(2, 4, 0.0, gc, nullptr);
  EXPECT_EQ(a.lora_A->weight.to_vector<float>(), b.lora_A->weight.to_vector<float>());
  EXPECT_NE(a.lora_A->weight.to_vector<float>(), c.lora_A->weight.to_vector<float>());
}

TEST(LoraLinear, MergeEqualsUnmergedAndUnmergeRestores) {
  auto l = lora_linear(6, 5, 3, true);
  NoGradGuard ng;
  const Tensor x = rand_tensor({4, 6}, 8);
  const Tensor w0 = l->weight.clone();
  const Tensor y = l->forward(x);
  l->merge_lora();
  EXPECT_TRUE(l->lora_merged());
  EXPECT_GT(max_abs_diff(l->weight, w0), 1e-3);  // the weight moved
  EXPECT_LT(max_abs_diff(l->forward(x), y), 1e-13);
  EXPECT_THROW(l->merge_lora(), Error);
  l->unmerge_lora();
  EXPECT_FALSE(l->lora_merged());
  EXPECT_LT(max_abs_diff(l->weight, w0), 1e-14);
  EXPECT_LT(max_abs_diff(l->forward(x), y), 1e-13);
  EXPECT_THROW(l->unmerge_lora(), Error);
}

TEST(LoraLinear, RemoveLoraLeavesThePlainLayer) {
  auto l = lora_linear(4, 3, 2, true);
  NoGradGuard ng;
  const Tensor x = rand_tensor({2, 4}, 9);
  l->remove_lora();
  EXPECT_FALSE(l->has_lora());
  EXPECT_EQ(names(*l), (std::vector<std::string>{"weight", "bias"}));
  EXPECT_LT(max_abs_diff(l->forward(x), ops::linear(x, l->weight, l->bias)), 1e-15);
  EXPECT_THROW(l->merge_lora(), Error);
  l->remove_lora();  // a no-op without an adapter
}

TEST(LoraLinear, Errors) {
  nn::Linear l(4, 4);
  Generator g(1);
  EXPECT_THROW(l.add_lora(0, 8, 0.0, g, nullptr), Error);
  EXPECT_THROW(l.add_lora(2, 8, 0.1, g, nullptr), Error);  // dropout without a generator
  EXPECT_THROW(l.add_lora(2, 8, 1.0, g, nullptr), Error);
  l.add_lora(2, 8, 0.0, g, nullptr);
  EXPECT_THROW(l.add_lora(2, 8, 0.0, g, nullptr), Error);
}

TEST(LoraLinear, DropoutOnlyInTraining) {
  nn::Linear l(8, 4, true, DType::F64);
  Generator g(1), drop(2), w(3);
  {
    NoGradGuard ng;
    w.uniform_(l.weight, -1, 1);
  }
  l.add_lora(2, 4, 0.5, g, &drop);
  {
    NoGradGuard ng;
    w.uniform_(l.lora_B->weight, -1, 1);
  }
  NoGradGuard ng;
  const Tensor x = rand_tensor({3, 8}, 4);
  const Tensor plain = ops::linear(x, l.weight, l.bias) +
                       ops::linear(ops::linear(x, l.lora_A->weight), l.lora_B->weight) * 2.0;
  l.eval();
  EXPECT_LT(max_abs_diff(l.forward(x), plain), 1e-13) << "dropout ran in eval mode";
  l.train();
  EXPECT_GT(max_abs_diff(l.forward(x), plain), 1e-6) << "no dropout in training mode";
}

TEST(Lora, NameRule) {
  using nn::lora_name_matches;
  EXPECT_TRUE(lora_name_matches("c_attn", {"c_attn"}));
  EXPECT_TRUE(lora_name_matches("h.0.attn.c_attn", {"c_attn"}));
  EXPECT_TRUE(lora_name_matches("h.0.attn.c_attn", {"attn.c_attn"}));
  EXPECT_FALSE(lora_name_matches("c_attn", {"attn.c_attn"}));
  EXPECT_FALSE(lora_name_matches("model.layers.0.self_attn.xq_proj", {"q_proj"}));
  EXPECT_FALSE(lora_name_matches("h.0.attn.c_attn_x", {"c_attn"}));
  EXPECT_FALSE(lora_name_matches("h.0.attn", {"c_attn"}));
  EXPECT_TRUE(lora_name_matches("model.layers.1.self_attn.v_proj", {"q_proj", "v_proj"}));
  EXPECT_FALSE(lora_name_matches("", {"q_proj"}));
  EXPECT_FALSE(lora_name_matches("q_proj", {}));
}

TEST(Lora, DefaultTargets) {
  EXPECT_EQ(nn::default_lora_targets("llama"), (std::vector<std::string>{"q_proj", "v_proj"}));
  EXPECT_EQ(nn::default_lora_targets("gpt"), (std::vector<std::string>{"c_attn"}));
  EXPECT_EQ(nn::default_lora_targets("bert"), (std::vector<std::string>{"query", "value"}));
  EXPECT_THROW(nn::default_lora_targets("rnn"), Error);
}

TEST(Lora, ApplyMergeUnloadOnATree) {
  Net net;
  NoGradGuard ng;
  const Tensor x = rand_tensor({2, 6}, 30);
  const Tensor y0 = net.forward(x);
  nn::LoraConfig c;
  c.r = 2;
  c.alpha = 4;
  c.target_modules = {"c_attn", "fc"};
  EXPECT_EQ(nn::apply_lora(net, c, 7), (std::vector<std::string>{"attn.c_attn", "mlp.fc"}));
  EXPECT_LT(max_abs_diff(net.forward(x), y0), 1e-15) << "B = 0 must leave the output unchanged";
  Generator g(8);
  for (auto* l : {net.attn->lin.get(), net.mlp->lin.get()}) g.uniform_(l->lora_B->weight, -1, 1);
  const Tensor y1 = net.forward(x);
  EXPECT_GT(max_abs_diff(y1, y0), 1e-3);
  nn::merge_lora(net);
  EXPECT_LT(max_abs_diff(net.forward(x), y1), 1e-13);
  nn::unmerge_lora(net);
  EXPECT_LT(max_abs_diff(net.forward(x), y1), 1e-13);
  nn::merge_and_unload(net);
  EXPECT_FALSE(net.attn->lin->has_lora());
  EXPECT_EQ(names(net), (std::vector<std::string>{"attn.c_attn.weight", "attn.c_attn.bias",
                                                  "mlp.fc.weight", "head.weight", "head.bias"}));
  EXPECT_LT(max_abs_diff(net.forward(x), y1), 1e-13);
}

TEST(Lora, ApplyErrors) {
  Net net;
  nn::LoraConfig c;
  c.target_modules = {"nothing"};
  try {
    nn::apply_lora(net, c, 1);
    ADD_FAILURE() << "no error for targets that match nothing";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("attn.c_attn"), std::string::npos) << e.what();
  }
  c.target_modules = {};
  EXPECT_THROW(nn::apply_lora(net, c, 1), Error);
  c.target_modules = {"head"};
  c.r = 0;
  EXPECT_THROW(nn::apply_lora(net, c, 1), Error);
  c.r = 2;
  nn::apply_lora(net, c, 1);
  EXPECT_THROW(nn::apply_lora(net, c, 1), Error);  // double apply
  // An adapter's own lora_A / lora_B are never targets.
  c.target_modules = {"lora_A"};
  EXPECT_THROW(nn::apply_lora(net, c, 1), Error);
}

TEST(Lora, FreezeAndTrainableCount) {
  Net net;
  nn::freeze(net, {"attn"});
  for (auto& [n, p] : net.named_parameters())
    EXPECT_EQ(p.requires_grad(), n.rfind("attn.", 0) != 0) << n;
  nn::freeze(net, {"mlp.fc", "head.bias"});
  for (auto& [n, p] : net.named_parameters())
    EXPECT_EQ(p.requires_grad(),
              n == "attn.c_attn.weight" || n == "attn.c_attn.bias" || n == "head.weight")
        << n;
  nn::freeze(net, {"att"});  // a prefix matches whole dotted parts only
  for (auto& [n, p] : net.named_parameters()) EXPECT_TRUE(p.requires_grad()) << n;

  // all = 6*12 + 12 + 12*6 + 6*3 + 3 = 177; the adapter on c_attn: 2*6 + 12*2 = 36.
  nn::LoraConfig c;
  c.r = 2;
  c.target_modules = {"c_attn"};
  nn::apply_lora(net, c, 1);
  nn::mark_only_lora_trainable(net, {});
  const nn::ParamCount pc = nn::count_parameters(net);
  EXPECT_EQ(pc.trainable, 36);
  EXPECT_EQ(pc.all, 213);
  EXPECT_EQ(nn::trainable_parameters_line(net),
            "trainable params: 36 || all params: 213 || trainable%: 16.9014");
  nn::mark_only_lora_trainable(net, {"head"});
  EXPECT_EQ(nn::count_parameters(net).trainable, 36 + 21);
  EXPECT_TRUE(net.head->weight.requires_grad());
  EXPECT_FALSE(net.mlp->lin->weight.requires_grad());
}

TEST(Lora, ParameterLineCommas) {
  // 1,234,567-style grouping as Python's {:,d}.
  struct Big : nn::Module {
    Big() { register_module("fc", std::make_shared<nn::Linear>(1000, 1234, true)); }
  } big;
  EXPECT_EQ(nn::trainable_parameters_line(big),
            "trainable params: 1,235,234 || all params: 1,235,234 || trainable%: 100.0000");
}

TEST(Lora, CheckPlainLinears) {
  Net net(DType::F32);
  nn::check_plain_linears(net, "save");
  nn::LoraConfig c;
  c.target_modules = {"fc"};
  nn::apply_lora(net, c, 1);
  try {
    nn::check_plain_linears(net, "save");
    ADD_FAILURE() << "no error for an adapter";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("save: 'mlp.fc'"), std::string::npos) << e.what();
  }
  nn::merge_and_unload(net);
  nn::check_plain_linears(net, "save");
  EXPECT_THROW(net.mlp->lin->quantize_weight("q8_0"), Error);  // in = 12: not a multiple of 32
}

TEST(Lora, ApplySameSeedSameAdapters) {
  Net a, b, c;
  nn::LoraConfig cfg;
  cfg.target_modules = {"c_attn", "fc"};
  nn::apply_lora(a, cfg, 5);
  nn::apply_lora(b, cfg, 5);
  nn::apply_lora(c, cfg, 6);
  const auto pa = a.named_parameters(), pb = b.named_parameters(), pc = c.named_parameters();
  ASSERT_EQ(pa.size(), pb.size());
  bool any_differs = false;
  for (size_t i = 0; i < pa.size(); ++i) {
    EXPECT_EQ(pa[i].second.to_vector<double>(), pb[i].second.to_vector<double>()) << pa[i].first;
    any_differs =
        any_differs || pa[i].second.to_vector<double>() != pc[i].second.to_vector<double>();
  }
  EXPECT_TRUE(any_differs);
  // The two adapters draw different A's from the one stream.
  EXPECT_NE(a.attn->lin->lora_A->weight.to_vector<double>()[0],
            a.mlp->lin->lora_A->weight.to_vector<double>()[0]);
}
