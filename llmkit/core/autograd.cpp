// The backward engine and gradient accumulation. See autograd.h for the contract.
#include "llmkit/core/autograd.h"

#include <algorithm>
#include <unordered_set>

#include "llmkit/core/strided.h"

namespace llmkit {

void detail::add_into(const Tensor& dst, const Tensor& src) {
  LLMKIT_CHECK(dst.shape() == src.shape() && dst.dtype() == src.dtype(),
               "gradient accumulation: ", src.str(), " into ", dst.str());
  bool serial = false;
  for (int64_t s : dst.strides()) serial |= (s == 0);
  auto run = [&](auto* d, const auto* s) {
    detail::for_each_row(dst.shape(), dst.strides(), src.strides(), serial,
                         [&](int64_t od, int64_t os, int64_t n, int64_t sd, int64_t ss) {
                           if (sd == 1 && ss == 1) {
                             for (int64_t i = 0; i < n; ++i) d[od + i] += s[os + i];
                           } else {
                             for (int64_t i = 0; i < n; ++i) d[od + i * sd] += s[os + i * ss];
                           }
                         });
  };
  if (dst.dtype() == DType::F32)
    run(dst.data<float>(), src.data<float>());
  else if (dst.dtype() == DType::F64)
    run(dst.data<double>(), src.data<double>());
  else
    fail("gradient accumulation: unsupported dtype ", dtype_name(dst.dtype()));
}

namespace {
thread_local bool g_grad_enabled = true;

// The autograd half of t, made on first use.
const std::shared_ptr<AutogradMeta>& autograd_meta(TensorImpl* t) {
  if (!t->autograd) {
    t->autograd = std::make_shared<AutogradMeta>();
    t->autograd->shape = t->shape;
    t->autograd->dtype = t->dtype;
  }
  return t->autograd;
}

}  // namespace

bool grad_enabled() {
  return g_grad_enabled;
}
NoGradGuard::NoGradGuard() : prev_(g_grad_enabled) {
  g_grad_enabled = false;
}
NoGradGuard::~NoGradGuard() {
  g_grad_enabled = prev_;
}

bool needs_graph(std::initializer_list<const Tensor*> inputs) {
  if (!g_grad_enabled) return false;
  for (const Tensor* t : inputs)
    if (t != nullptr && t->defined() && t->requires_grad()) return true;
  return false;
}

Tensor Node::grad(size_t i) {
  LLMKIT_CHECK(needs_grad(i), name, " backward: input ", i, " needs no gradient");
  AutogradMeta* in = inputs[i].get();
  if (!in->grad) in->grad = Tensor::zeros(in->shape, in->dtype).impl_ptr();
  return Tensor(in->grad);
}

Tensor Node::grad_buffer(size_t i, bool* fresh) {
  LLMKIT_CHECK(needs_grad(i), name, " backward: input ", i, " needs no gradient");
  AutogradMeta* in = inputs[i].get();
  *fresh = !in->grad;
  if (!in->grad) in->grad = Tensor::empty(in->shape, in->dtype).impl_ptr();
  return Tensor(in->grad);
}

void Node::accumulate(size_t i, const Tensor& g) {
  if (!needs_grad(i)) return;
  AutogradMeta* in = inputs[i].get();
  LLMKIT_CHECK(g.shape() == in->shape, name, " backward: gradient ", g.str(),
               " for input of shape ", shape_str(in->shape));
  if (!in->grad) {  // first contribution: a copy, no zero fill
    Tensor fresh = Tensor::empty(in->shape, in->dtype);
    fresh.copy_(g);
    in->grad = fresh.impl_ptr();
    return;
  }
  detail::add_into(Tensor(in->grad), g);
}

static void record_impl(const Tensor& out, const char* name,
                        std::vector<std::shared_ptr<AutogradMeta>> ins,
                        std::function<void(Node&, const Tensor&)> fn) {
  auto node = std::make_shared<Node>();
  node->name = name;
  node->inputs = std::move(ins);
  node->backward = std::move(fn);
  autograd_meta(out.impl())->grad_fn = std::move(node);
  out.impl()->requires_grad = true;
}

void record(const Tensor& out, const char* name, std::initializer_list<const Tensor*> inputs,
            std::function<void(Node&, const Tensor&)> fn) {
  std::vector<std::shared_ptr<AutogradMeta>> ins;
  for (const Tensor* t : inputs)
    ins.push_back(t != nullptr && t->defined() && t->requires_grad() ? autograd_meta(t->impl())
                                                                     : nullptr);
  record_impl(out, name, std::move(ins), std::move(fn));
}

void record(const Tensor& out, const char* name, const std::vector<Tensor>& inputs,
            std::function<void(Node&, const Tensor&)> fn) {
  std::vector<std::shared_ptr<AutogradMeta>> ins;
  for (const Tensor& t : inputs)
    ins.push_back(t.defined() && t.requires_grad() ? autograd_meta(t.impl()) : nullptr);
  record_impl(out, name, std::move(ins), std::move(fn));
}

// --- Tensor's autograd methods ---

Tensor& Tensor::requires_grad_(bool on) {
  LLMKIT_CHECK(!on || dtype() == DType::F32 || dtype() == DType::F64,
               "requires_grad_: only f32 and f64 tensors can require grad, not ", str());
  LLMKIT_CHECK(is_leaf() || on, "requires_grad_(false) on a non-leaf tensor; use detach()");
  if (on) autograd_meta(impl());
  impl()->requires_grad = on;
  return *this;
}

Tensor Tensor::grad() const {
  const auto& m = impl()->autograd;
  return m && m->grad ? Tensor(m->grad) : Tensor();
}

void Tensor::zero_grad() const {
  if (impl()->autograd) impl()->autograd->grad.reset();
}

Tensor Tensor::detach() const {
  auto d = std::make_shared<TensorImpl>(*impl());
  d->requires_grad = false;
  d->autograd.reset();
  return Tensor(std::move(d));
}

const char* Tensor::grad_fn_name() const {
  const auto& m = impl()->autograd;
  return m && m->grad_fn ? m->grad_fn->name : "";
}

void Tensor::backward(const Tensor& grad) const {
  LLMKIT_CHECK(requires_grad(), "backward: tensor ", str(),
               " does not require grad (no input had requires_grad_())");
  Tensor seed = grad;
  if (!seed.defined()) {
    LLMKIT_CHECK(numel() == 1, "backward: tensor ", str(),
                 " is not a scalar; pass a gradient of the same shape");
    seed = Tensor::ones(shape(), dtype());
  }
  LLMKIT_CHECK(seed.shape() == shape(), "backward: gradient ", seed.str(), " for tensor ", str());

  // Reverse topological order by iterative depth-first search over the graph. The graph holds
  // autograd halves only, so `order` keeps no tensor data alive; its entries are dropped as
  // their nodes run.
  std::vector<std::shared_ptr<AutogradMeta>> order;
  std::unordered_set<AutogradMeta*> seen;
  const std::shared_ptr<AutogradMeta> self = autograd_meta(impl());
  std::vector<std::pair<std::shared_ptr<AutogradMeta>, size_t>> stack{{self, 0}};
  seen.insert(self.get());
  while (!stack.empty()) {
    auto& [t, next] = stack.back();
    Node* n = t->grad_fn.get();
    if (n != nullptr && next < n->inputs.size()) {
      std::shared_ptr<AutogradMeta> in = n->inputs[next++];
      if (in != nullptr && seen.insert(in.get()).second) stack.push_back({std::move(in), 0});
      continue;
    }
    order.push_back(std::move(t));
    stack.pop_back();
  }

  Node root;
  root.name = "backward";
  root.inputs = {self};
  root.accumulate(0, seed);
  for (auto it = order.rbegin(); it != order.rend(); ++it) {
    AutogradMeta* t = it->get();
    Node* n = t->grad_fn.get();
    if (n != nullptr) {
      LLMKIT_CHECK(n->backward != nullptr, "backward: the graph through ", n->name,
                   " was already freed by an earlier backward()");
      if (t->grad) {
        Tensor dout(t->grad);
        n->backward(*n, dout);
      }
      n->backward = nullptr;  // frees the tensors the op saved
      n->inputs.clear();
      t->grad.reset();  // a non-leaf's gradient is consumed
    }                   // else a leaf: keeps its .grad
    it->reset();
  }
}

}  // namespace llmkit
