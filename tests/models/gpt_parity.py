#!/usr/bin/python3
"""PyTorch reference for the GPT parity test (tests/models/test_gpt_parity.cpp).

Reads DIR/config.json (the model object of a llmkit config), DIR/model.safetensors (weights by
llmkit's GPT-2 names, [out, in] like nn.Linear) and DIR/inputs.safetensors (ids, targets, i32),
builds the same model in PyTorch, and writes DIR/reference.safetensors holding the logits, the
loss and the gradient of every parameter (names "grad.<param>"). Written for this test from the
model's equations; float64 throughout so the comparison measures llmkit's error only.
"""
import json
import math
import struct
import sys

import torch
import torch.nn.functional as F

DTYPES = {"F32": torch.float32, "F64": torch.float64, "I32": torch.int32, "U8": torch.uint8}
NAMES = {v: k for k, v in DTYPES.items()}


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    body = data[8 + n:]
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        b, end = e["data_offsets"]
        t = torch.frombuffer(bytearray(body[b:end]), dtype=DTYPES[e["dtype"]])
        out[name] = t.reshape(e["shape"]).clone()
    return out


def write_safetensors(path, tensors):
    header, blobs, offset = {}, [], 0
    for name, t in tensors.items():
        raw = t.detach().contiguous().numpy().tobytes()
        header[name] = {"dtype": NAMES[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def norm(cfg, x, p, name):
    if cfg["norm"] == "layernorm":
        return F.layer_norm(x, x.shape[-1:], p[name + ".weight"], p.get(name + ".bias"),
                            cfg["norm_eps"])
    rms = torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + cfg["norm_eps"])
    return x * rms * p[name + ".weight"]


def rope(x, theta):  # x [B, H, T, D], rotate_half layout
    T, D = x.shape[-2], x.shape[-1]
    inv = theta ** (-torch.arange(0, D, 2, dtype=torch.float64) / D)
    ang = torch.arange(T, dtype=torch.float64)[:, None] * inv[None, :]
    cos, sin = torch.cat([ang.cos()] * 2, -1), torch.cat([ang.sin()] * 2, -1)
    x1, x2 = x[..., : D // 2], x[..., D // 2:]
    return x * cos + torch.cat([-x2, x1], -1) * sin


def linear(x, p, name):
    return F.linear(x, p[name + ".weight"], p.get(name + ".bias"))


def forward(cfg, p, ids):
    B, T = ids.shape
    C, NH = cfg["n_embd"], cfg["n_head"]
    NKV, HS = cfg["n_kv_head"], C // NH
    hf = cfg.get("arch") == "llama"  # Hugging Face llama names, separate projections
    emb = "model.embed_tokens.weight" if hf else "wte.weight"
    x = p[emb][ids.long()]
    if cfg["pos_encoding"] == "learned":
        x = x + p["wpe.weight"][:T]
    for i in range(cfg["n_layer"]):
        pre = f"model.layers.{i}." if hf else f"h.{i}."
        h = norm(cfg, x, p, pre + ("input_layernorm" if hf else "ln_1"))
        if hf:
            q = linear(h, p, pre + "self_attn.q_proj").view(B, T, NH, HS).transpose(1, 2)
            k = linear(h, p, pre + "self_attn.k_proj").view(B, T, NKV, HS).transpose(1, 2)
            v = linear(h, p, pre + "self_attn.v_proj").view(B, T, NKV, HS).transpose(1, 2)
        else:
            qkv = linear(h, p, pre + "attn.c_attn").view(B, T, NH + 2 * NKV, HS)
            q = qkv[:, :, :NH].transpose(1, 2)
            k = qkv[:, :, NH:NH + NKV].transpose(1, 2)
            v = qkv[:, :, NH + NKV:].transpose(1, 2)
        if cfg["pos_encoding"] == "rope":
            q, k = rope(q, cfg["rope_theta"]), rope(k, cfg["rope_theta"])
        k = k.repeat_interleave(NH // NKV, dim=1)
        v = v.repeat_interleave(NH // NKV, dim=1)
        att = (q @ k.transpose(-1, -2)) / math.sqrt(HS)
        mask = torch.ones(T, T, dtype=torch.bool).tril()
        att = att.masked_fill(~mask, float("-inf")).softmax(-1)
        y = (att @ v).transpose(1, 2).reshape(B, T, C)
        x = x + linear(y, p, pre + ("self_attn.o_proj" if hf else "attn.c_proj"))
        h = norm(cfg, x, p, pre + ("post_attention_layernorm" if hf else "ln_2"))
        if hf:
            up = linear(h, p, pre + "mlp.up_proj")
            if cfg["activation"] == "gelu":
                h = F.gelu(up, approximate="tanh")
            else:
                h = F.silu(linear(h, p, pre + "mlp.gate_proj")) * up
            x = x + linear(h, p, pre + "mlp.down_proj")
            continue
        h = linear(h, p, pre + "mlp.c_fc")
        if cfg["activation"] == "gelu":
            h = F.gelu(h, approximate="tanh")
        else:
            gate, up = h.chunk(2, -1)
            h = F.silu(gate) * up
        x = x + linear(h, p, pre + "mlp.c_proj")
    x = norm(cfg, x, p, "model.norm" if hf else "ln_f")
    w = p[emb] if cfg["tie_embeddings"] else p["lm_head.weight"]
    return x @ w.t()


def main(d):
    cfg = json.load(open(f"{d}/config.json"))
    cfg = cfg.get("model", cfg)
    params = {k: v.double().requires_grad_() for k, v in read_safetensors(f"{d}/model.safetensors").items()}
    inputs = read_safetensors(f"{d}/inputs.safetensors")
    logits = forward(cfg, params, inputs["ids"])
    loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), inputs["targets"].reshape(-1).long(),
                           ignore_index=-100)
    loss.backward()
    out = {"logits": logits.detach(), "loss": loss.detach().reshape(1)}
    for k, v in params.items():
        out["grad." + k] = v.grad
    write_safetensors(f"{d}/reference.safetensors", out)


if __name__ == "__main__":
    torch.set_num_threads(1)
    main(sys.argv[1])
