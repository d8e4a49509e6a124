"""The PyTorch side of bench/train_vs_torch: trains the GPT of a llmkit config (GPT-2 layout) on
random tokens with AdamW, like bench/train_gpt.cpp does for llmkit, and prints one JSON line:
tokens/s and ms/step (median of the timed steps), peak RSS, prefill and decode tokens/s.
Attention: F.scaled_dot_product_attention (fused; PyTorch >= 2.0) when the running torch has it,
else the explicit softmax(q k^T) v of nanoGPT's fallback path (Debian's PyTorch 1.13). The JSON
says which ("attention").  Run it with the interpreter of the torch to measure:
/usr/bin/python3 (Debian's 1.13) or .venv-bench/bin/python (PyPI's 2.x).
Usage: torch_gpt.py CONFIG.json STEPS BATCH [THREADS [DECODE]]   (DECODE: tokens decoded after a
half-context prefill, default 64, at most half a context, as bench_train_gpt)"""
import json
import math
import resource
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

SDPA = hasattr(F, "scaled_dot_product_attention")


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        C = c["n_embd"]
        self.nh = c["n_head"]
        self.ln_1 = nn.LayerNorm(C)
        self.c_attn = nn.Linear(C, 3 * C)
        self.c_proj = nn.Linear(C, C)
        self.ln_2 = nn.LayerNorm(C)
        self.c_fc = nn.Linear(C, 4 * C)
        self.mlp_proj = nn.Linear(4 * C, C)
        T = c["block_size"]
        self.register_buffer("mask", torch.ones(T, T, dtype=torch.bool).tril())

    def attn(self, x, cache=None):
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(C, dim=2)
        q, k, v = (t.view(B, T, self.nh, C // self.nh).transpose(1, 2) for t in (q, k, v))
        if cache is not None:
            if "k" in cache:
                k = torch.cat([cache["k"], k], 2)
                v = torch.cat([cache["v"], v], 2)
            cache["k"], cache["v"] = k, v
        Tk = k.shape[2]
        if SDPA:
            # Causal prefill (T == Tk) and one-token decode (T == 1) need no explicit mask.
            mask = None if T in (1, Tk) else self.mask[Tk - T:Tk, :Tk]
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=(T == Tk and T > 1))
            return self.c_proj(y.transpose(1, 2).reshape(B, T, C))
        att = (q @ k.transpose(-2, -1)) / math.sqrt(k.shape[-1])
        att = att.masked_fill(~self.mask[Tk - T:Tk, :Tk], float("-inf")).softmax(-1)
        return self.c_proj((att @ v).transpose(1, 2).reshape(B, T, C))

    def forward(self, x, cache=None):
        x = x + self.attn(self.ln_1(x), cache)
        return x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate="tanh"))


class GPT(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.wte = nn.Embedding(c["vocab_size"], c["n_embd"])
        self.wpe = nn.Embedding(c["block_size"], c["n_embd"])
        self.h = nn.ModuleList([Block(c) for _ in range(c["n_layer"])])
        self.ln_f = nn.LayerNorm(c["n_embd"])

    def forward(self, ids, caches=None, pos0=0):
        T = ids.shape[1]
        x = self.wte(ids) + self.wpe(torch.arange(pos0, pos0 + T))
        for i, b in enumerate(self.h):
            x = b(x, None if caches is None else caches[i])
        return self.ln_f(x) @ self.wte.weight.t()


def main():
    cfg = json.load(open(sys.argv[1]))["model"]
    steps, batch = int(sys.argv[2]), int(sys.argv[3])
    torch.set_num_threads(int(sys.argv[4]) if len(sys.argv) > 4 else 2)
    torch.manual_seed(0)
    model = GPT(cfg)
    for p in model.parameters():  # GPT-2's init, as llmkit's
        if p.dim() >= 2:
            nn.init.normal_(p, 0.0, 0.02)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    other = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1},
                             {"params": other, "weight_decay": 0.0}], lr=3e-4, betas=(0.9, 0.95))
    T, V = cfg["block_size"], cfg["vocab_size"]
    times = []
    for step in range(steps + 2):  # two warm-up steps, not timed
        x = torch.randint(0, V, (batch, T + 1))
        t0 = time.perf_counter()
        logits = model(x[:, :-1])
        loss = F.cross_entropy(logits.view(-1, V), x[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if step >= 2:
            times.append(time.perf_counter() - t0)
    times.sort()
    ms = times[len(times) // 2] * 1000
    # Inference: prefill a prompt of T/2 tokens, then decode DECODE tokens with a KV cache.
    with torch.no_grad():
        model.eval()
        prompt = torch.randint(0, V, (1, T // 2))
        caches = [dict() for _ in model.h]
        t0 = time.perf_counter()
        logits = model(prompt, caches)
        prefill = (T // 2) / (time.perf_counter() - t0)
        n = min(int(sys.argv[5]) if len(sys.argv) > 5 else 64, T // 2 - 1)
        t0 = time.perf_counter()
        for i in range(n):
            nxt = logits[:, -1].argmax(-1, keepdim=True)
            logits = model(nxt, caches, pos0=T // 2 + i)
        decode = n / (time.perf_counter() - t0)
    print(json.dumps({"impl": "pytorch " + torch.__version__, "ms_per_step": ms,
                      "attention": "sdpa" if SDPA else "explicit", "threads": torch.get_num_threads(),
                      "tokens_per_sec": batch * T / (ms / 1000),
                      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      "prefill_tokens_per_sec": prefill, "decode_tokens_per_sec": decode,
                      "final_loss": loss.item()}))


if __name__ == "__main__":
    main()
