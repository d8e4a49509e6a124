#!/usr/bin/python3
"""PyTorch reference for the T5 / BART parity test (tests/models/test_t5_parity.cpp).

Reads DIR/config.json (llmkit's T5 config), DIR/model.safetensors (weights by Hugging Face's T5
names, [out, in] like nn.Linear) and DIR/inputs.safetensors (src, labels, i32), runs the
encoder-decoder written here in plain torch from the equations of Hugging Face's
modeling_t5.py (transformers is not installed), and writes DIR/reference.safetensors with the
logits, the loss and the gradient of every parameter ("grad.<name>"). float64 throughout, so the
comparison measures llmkit's own float32 error.
"""
import json
import math
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from gpt_parity import read_safetensors, write_safetensors  # noqa: E402


def relative_position_bucket(relative_position, bidirectional, num_buckets, max_distance):
    """transformers' T5Attention._relative_position_bucket."""
    buckets = 0
    if bidirectional:
        num_buckets //= 2
        buckets += (relative_position > 0).to(torch.long) * num_buckets
        relative_position = torch.abs(relative_position)
    else:
        relative_position = -torch.min(relative_position, torch.zeros_like(relative_position))
    max_exact = num_buckets // 2
    is_small = relative_position < max_exact
    large = max_exact + (torch.log(relative_position.float() / max_exact)
                         / math.log(max_distance / max_exact)
                         * (num_buckets - max_exact)).to(torch.long)
    large = torch.min(large, torch.full_like(large, num_buckets - 1))
    return buckets + torch.where(is_small, relative_position, large)


def position_bias(cfg, table, Tq, Tk, bidirectional):
    ctx = torch.arange(Tq)[:, None]
    mem = torch.arange(Tk)[None, :]
    b = relative_position_bucket(mem - ctx, bidirectional, cfg["num_buckets"], cfg["max_distance"])
    return table[b].permute(2, 0, 1).unsqueeze(0)  # [1, NH, Tq, Tk]


def linear(p, name, x):
    return F.linear(x, p[name + ".weight"], p.get(name + ".bias"))


def norm(cfg, p, name, x):
    if cfg["norm"] == "layernorm":
        return F.layer_norm(x, x.shape[-1:], p[name + ".weight"], p.get(name + ".bias"),
                            cfg["norm_eps"])
    var = x.pow(2).mean(-1, keepdim=True)  # T5LayerNorm: no mean subtraction, no bias
    return p[name + ".weight"] * x * torch.rsqrt(var + cfg["norm_eps"])


def attention(cfg, p, name, x, kv, bias, key_mask, causal):
    B, Tq, _ = x.shape
    Tk = kv.shape[1]
    NH, HS = cfg["n_head"], cfg["d_kv"]
    q = linear(p, name + ".q", x).view(B, Tq, NH, HS).transpose(1, 2)
    k = linear(p, name + ".k", kv).view(B, Tk, NH, HS).transpose(1, 2)
    v = linear(p, name + ".v", kv).view(B, Tk, NH, HS).transpose(1, 2)
    scores = q @ k.transpose(-1, -2)
    if cfg["arch"] != "t5":  # T5 has no 1/sqrt(d): it is folded into q's init
        scores = scores / math.sqrt(HS)
    if bias is not None:
        scores = scores + bias
    if key_mask is not None:
        scores = scores.masked_fill(~key_mask[:, None, None, :], float("-inf"))
    if causal:
        scores = scores.masked_fill(~torch.ones(Tq, Tk, dtype=torch.bool).tril(), float("-inf"))
    y = (scores.softmax(-1) @ v).transpose(1, 2).reshape(B, Tq, NH * HS)
    return linear(p, name + ".o", y)


def ffn(cfg, p, name, x):
    if cfg["activation"] == "gated-gelu":
        h = F.gelu(linear(p, name + ".wi_0", x), approximate="tanh") * linear(p, name + ".wi_1", x)
    elif cfg["activation"] == "gelu":
        h = F.gelu(linear(p, name + ".wi", x))
    else:
        h = F.relu(linear(p, name + ".wi", x))
    return linear(p, name + ".wo", h)


def embed(cfg, p, stack, ids):
    x = p["shared.weight"][ids.long()]
    if cfg["pos_encoding"] == "learned":
        x = x + p[stack + ".embed_positions.weight"][: ids.shape[1]]
    return x


def forward(cfg, p, src, dec):
    relative = cfg["pos_encoding"] == "relative"
    mask = src != cfg["pad_id"]
    x = embed(cfg, p, "encoder", src)
    Ts, Tt = src.shape[1], dec.shape[1]
    rel = "layer.0.SelfAttention.relative_attention_bias.weight"
    bias = position_bias(cfg, p["encoder.block.0." + rel], Ts, Ts, True) if relative else None
    for i in range(cfg["n_layer"]):
        b = f"encoder.block.{i}."
        x = x + attention(cfg, p, b + "layer.0.SelfAttention", norm(cfg, p, b + "layer.0.layer_norm", x),
                          norm(cfg, p, b + "layer.0.layer_norm", x), bias, mask, False)
        x = x + ffn(cfg, p, b + "layer.1.DenseReluDense", norm(cfg, p, b + "layer.1.layer_norm", x))
    enc = norm(cfg, p, "encoder.final_layer_norm", x)
    y = embed(cfg, p, "decoder", dec)
    bias = position_bias(cfg, p["decoder.block.0." + rel], Tt, Tt, False) if relative else None
    for i in range(cfg["n_decoder_layer"]):
        b = f"decoder.block.{i}."
        h = norm(cfg, p, b + "layer.0.layer_norm", y)
        y = y + attention(cfg, p, b + "layer.0.SelfAttention", h, h, bias, None, True)
        h = norm(cfg, p, b + "layer.1.layer_norm", y)
        y = y + attention(cfg, p, b + "layer.1.EncDecAttention", h, enc, None, mask, False)
        y = y + ffn(cfg, p, b + "layer.2.DenseReluDense", norm(cfg, p, b + "layer.2.layer_norm", y))
    y = norm(cfg, p, "decoder.final_layer_norm", y)
    if cfg["tie_embeddings"]:
        if cfg["arch"] == "t5":
            y = y * cfg["n_embd"] ** -0.5
        return y @ p["shared.weight"].t()
    return y @ p["lm_head.weight"].t()


def shift_right(cfg, labels):
    dec = torch.full_like(labels, cfg["decoder_start_id"])
    dec[:, 1:] = labels[:, :-1]
    return dec.masked_fill(dec == -100, cfg["pad_id"])


def main(d):
    cfg = json.load(open(f"{d}/config.json"))
    cfg = cfg.get("model", cfg)
    params = {k: v.double().requires_grad_()
              for k, v in read_safetensors(f"{d}/model.safetensors").items()}
    inputs = read_safetensors(f"{d}/inputs.safetensors")
    labels = inputs["labels"].long()
    logits = forward(cfg, params, inputs["src"], shift_right(cfg, labels))
    loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1),
                           ignore_index=-100)
    loss.backward()
    out = {"logits": logits.detach(), "loss": loss.detach().reshape(1)}
    for k, v in params.items():
        out["grad." + k] = v.grad if v.grad is not None else torch.zeros_like(v)
    write_safetensors(f"{d}/reference.safetensors", out)


if __name__ == "__main__":
    torch.set_num_threads(1)
    main(sys.argv[1])
