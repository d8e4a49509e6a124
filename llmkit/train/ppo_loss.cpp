// The arithmetic of PPO (ppo.h): GAE over one response and the two clipped losses of a
// mini-batch with the figures TRL logs about them, as TRL's PPO trainer computes them (its
// masked means over the response tokens). The loop that feeds them is ppo.cpp.
#include "llmkit/train/ppo.h"

#include <vector>

#include "llmkit/core/autograd.h"
#include "llmkit/ops/elementwise.h"
#include "llmkit/ops/reduce.h"

namespace llmkit::train {

void gae(std::span<const float> rewards, std::span<const float> values, double gamma, double lam,
         std::span<float> advantages, std::span<float> returns) {
  const size_t T = rewards.size();
  LLMKIT_CHECK(values.size() == T && advantages.size() == T && returns.size() == T,
               "gae: rewards, values, advantages and returns must have one length, got ", T, ", ",
               values.size(), ", ", advantages.size(), ", ", returns.size());
  // Backwards: A_t = delta_t + gamma lam A_{t+1}, accumulated in double.
  double last = 0;
  for (size_t i = T; i-- > 0;) {
    const double next = i + 1 < T ? values[i + 1] : 0.0;
    const double delta = rewards[i] + gamma * next - values[i];
    last = delta + gamma * lam * last;
    advantages[i] = static_cast<float>(last);
    returns[i] = static_cast<float>(last + values[i]);
  }
}

PpoLoss ppo_loss(const Tensor& logp, const Tensor& values, const Tensor& old_logp,
                 const Tensor& old_values, const Tensor& advantages, const Tensor& returns,
                 const Tensor& mask, double cliprange, double cliprange_value) {
  const Shape& s = logp.shape();
  for (const Tensor* t : {&values, &old_logp, &old_values, &advantages, &returns, &mask})
    LLMKIT_CHECK(t->shape() == s, "ppo_loss: every input must have logp's shape ", shape_str(s),
                 ", got ", shape_str(t->shape()));
  const std::vector<float> m = mask.contiguous().to_vector<float>();
  double n = 0;
  for (float x : m) n += x;
  LLMKIT_CHECK(n > 0, "ppo_loss: the mask selects no token");
  const double inv_n = 1.0 / n;

  const Tensor diff = logp - old_logp;  // log r
  const Tensor ratio = ops::exp(diff);
  const Tensor neg_adv = -advantages;
  const Tensor pg1 = neg_adv * ratio;
  const Tensor pg2 = neg_adv * ops::clamp(ratio, 1.0 - cliprange, 1.0 + cliprange);
  PpoLoss out;
  out.policy_loss = ops::sum(ops::maximum(pg1, pg2) * mask) * inv_n;
  // clamp(v, old_v - cv, old_v + cv) as old_v + clamp(v - old_v, -cv, cv): the same values and
  // gradient, with scalar bounds.
  const Tensor v_clipped =
      old_values + ops::clamp(values - old_values, -cliprange_value, cliprange_value);
  const Tensor e1 = values - returns, e2 = v_clipped - returns;
  const Tensor vf1 = e1 * e1, vf2 = e2 * e2;
  out.value_loss = ops::sum(ops::maximum(vf1, vf2) * mask) * (0.5 * inv_n);

  // The logged figures, from the values (no graph).
  NoGradGuard ng;
  const auto vec = [](const Tensor& t) { return t.detach().contiguous().to_vector<float>(); };
  const std::vector<float> d = vec(diff), p1 = vec(pg1), p2 = vec(pg2), v1 = vec(vf1),
                           v2 = vec(vf2);
  double clipped = 0, vclipped = 0, kl = 0;
  for (size_t i = 0; i < m.size(); ++i) {
    if (m[i] == 0) continue;
    clipped += p2[i] > p1[i] ? m[i] : 0;
    vclipped += v2[i] > v1[i] ? m[i] : 0;
    kl += 0.5 * double(d[i]) * d[i] * m[i];
  }
  out.clipfrac = clipped * inv_n;
  out.value_clipfrac = vclipped * inv_n;
  out.approxkl = kl * inv_n;
  return out;
}

}  // namespace llmkit::train
