#!/usr/bin/env python3
"""The PyTorch side of the prefill comparison in bench/quant_vs_llamacpp: a llama-layout decoder
(RMSNorm, rotary positions, grouped-query attention, SwiGLU, tied head) in f32, written here in
plain PyTorch (no transformers: the bench venv with PyTorch 2.x has none), random weights (speed
does not depend on them), one forward of PP random token ids under no_grad, logits for the last
position only (what llmkit's and llama.cpp's prefill compute). Attention:
F.scaled_dot_product_attention where the running torch has it (>= 2.0), else the explicit
softmax(q k^T) v. One warm-up run, then REPS timed runs: tokens/s mean and sample sd.
Usage: torch_prefill.py N_LAYER N_EMBD N_HEAD N_KV_HEAD FFN VOCAB PP REPS THREADS -> JSON line"""
import json
import resource
import statistics
import sys
import time

import torch
import torch.nn.functional as F

SDPA = hasattr(F, "scaled_dot_product_attention")


def rms_norm(x, w, eps=1e-5):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def rope(x, cos, sin):  # x [B, H, T, D]; rotate-half form, as Hugging Face's llama
    d = x.shape[-1] // 2
    x1, x2 = x[..., :d], x[..., d:]
    return x * cos + torch.cat((-x2, x1), dim=-1) * sin


def main():
    n_layer, n_embd, n_head, n_kv, ffn, vocab, pp, reps, threads = map(int, sys.argv[1:10])
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    hd = n_embd // n_head
    g = lambda *s: torch.randn(*s) * 0.02
    emb = g(vocab, n_embd)
    layers = [dict(ln1=torch.ones(n_embd), q=g(n_embd, n_embd), k=g(n_kv * hd, n_embd),
                   v=g(n_kv * hd, n_embd), o=g(n_embd, n_embd), ln2=torch.ones(n_embd),
                   gate=g(ffn, n_embd), up=g(ffn, n_embd), down=g(n_embd, ffn))
              for _ in range(n_layer)]
    ln_f = torch.ones(n_embd)
    inv = 1.0 / (10000 ** (torch.arange(0, hd, 2).float() / hd))
    ang = torch.outer(torch.arange(pp).float(), inv)
    cos = torch.cat((ang, ang), -1).cos()
    sin = torch.cat((ang, ang), -1).sin()
    mask = torch.full((pp, pp), float("-inf")).triu(1)
    ids = torch.randint(0, vocab, (1, pp), generator=torch.Generator().manual_seed(1234))

    def forward():
        x = emb[ids]  # [1, T, C]
        for L in layers:
            h = rms_norm(x, L["ln1"])
            q = F.linear(h, L["q"]).view(1, pp, n_head, hd).transpose(1, 2)
            k = F.linear(h, L["k"]).view(1, pp, n_kv, hd).transpose(1, 2)
            v = F.linear(h, L["v"]).view(1, pp, n_kv, hd).transpose(1, 2)
            q, k = rope(q, cos, sin), rope(k, cos, sin)
            if n_kv != n_head:
                k = k.repeat_interleave(n_head // n_kv, dim=1)
                v = v.repeat_interleave(n_head // n_kv, dim=1)
            if SDPA:
                y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            else:
                y = torch.softmax(q @ k.transpose(-1, -2) / hd ** 0.5 + mask, -1) @ v
            x = x + F.linear(y.transpose(1, 2).reshape(1, pp, n_embd), L["o"])
            h = rms_norm(x, L["ln2"])
            x = x + F.linear(F.silu(F.linear(h, L["gate"])) * F.linear(h, L["up"]), L["down"])
        return F.linear(rms_norm(x[:, -1], ln_f), emb)

    rates = []
    with torch.no_grad():
        forward()
        for _ in range(reps):
            t0 = time.perf_counter()
            forward()
            rates.append(pp / (time.perf_counter() - t0))
    print(json.dumps({"peer": f"PyTorch {torch.__version__}",
                      "attention": "sdpa" if SDPA else "explicit", "threads": threads,
                      "pp": statistics.mean(rates),
                      "pp_sd": statistics.stdev(rates) if len(rates) > 1 else 0.0,
                      "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))


if __name__ == "__main__":
    main()
