#!/usr/bin/python3
"""PyTorch reference for the BERT parity test (tests/models/test_bert_parity.cpp).

Reads DIR/config.json (the model object of a llmkit bert config), DIR/model.safetensors (weights
by Hugging Face's BertForPreTraining names, [out, in] like nn.Linear) and DIR/inputs.safetensors
(ids, token_type_ids, attention_mask, labels, nsp_labels; i32), builds the same model in plain
PyTorch (transformers is not installed; this follows modeling_bert.py's equations: post-LN
layers, exact erf GELU, tied decoder plus its own bias, tanh pooler on [CLS]), and writes
DIR/reference.safetensors with the MLM logits [B, T, V], the NSP logits [B, 2], the loss (MLM
cross-entropy over labels != -100 plus NSP cross-entropy) and every parameter's gradient
("grad.<param>"). float64 throughout so the comparison measures llmkit's error only.
"""
import json
import math
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from gpt_parity import read_safetensors, write_safetensors  # noqa: E402


def linear(x, p, name):
    return F.linear(x, p[name + ".weight"], p[name + ".bias"])


def layer_norm(x, p, name, eps):
    return F.layer_norm(x, x.shape[-1:], p[name + ".weight"], p[name + ".bias"], eps)


def forward(cfg, p, ids, token_types, attention_mask):
    B, T = ids.shape
    C, NH, eps = cfg["n_embd"], cfg["n_head"], cfg["norm_eps"]
    HS = C // NH
    e = "bert.embeddings."
    x = (p[e + "word_embeddings.weight"][ids] + p[e + "position_embeddings.weight"][:T]
         + p[e + "token_type_embeddings.weight"][token_types])
    x = layer_norm(x, p, e + "LayerNorm", eps)
    # Hugging Face's extended attention mask: 0 where attended, a large negative number elsewhere.
    bias = (1.0 - attention_mask[:, None, None, :].to(x.dtype)) * torch.finfo(x.dtype).min
    for i in range(cfg["n_layer"]):
        pre = f"bert.encoder.layer.{i}."

        def heads(name):
            return linear(x, p, pre + "attention.self." + name).view(B, T, NH, HS).transpose(1, 2)

        q, k, v = heads("query"), heads("key"), heads("value")
        att = (q @ k.transpose(-1, -2)) / math.sqrt(HS) + bias
        y = (att.softmax(-1) @ v).transpose(1, 2).reshape(B, T, C)
        x = layer_norm(x + linear(y, p, pre + "attention.output.dense"), p,
                       pre + "attention.output.LayerNorm", eps)
        h = F.gelu(linear(x, p, pre + "intermediate.dense"))  # exact (erf) GELU
        x = layer_norm(x + linear(h, p, pre + "output.dense"), p, pre + "output.LayerNorm", eps)
    t = F.gelu(linear(x, p, "cls.predictions.transform.dense"))
    t = layer_norm(t, p, "cls.predictions.transform.LayerNorm", eps)
    mlm = t @ p[e + "word_embeddings.weight"].t() + p["cls.predictions.bias"]
    pooled = torch.tanh(linear(x[:, 0], p, "bert.pooler.dense"))
    nsp = linear(pooled, p, "cls.seq_relationship")
    return mlm, nsp


def main(d):
    cfg = json.load(open(f"{d}/config.json"))
    cfg = cfg.get("model", cfg)
    params = {k: v.double().requires_grad_()
              for k, v in read_safetensors(f"{d}/model.safetensors").items()}
    inp = read_safetensors(f"{d}/inputs.safetensors")
    mlm, nsp = forward(cfg, params, inp["ids"].long(), inp["token_type_ids"].long(),
                       inp["attention_mask"])
    loss = (F.cross_entropy(mlm.reshape(-1, mlm.shape[-1]), inp["labels"].reshape(-1).long(),
                            ignore_index=-100)
            + F.cross_entropy(nsp, inp["nsp_labels"].long()))
    loss.backward()
    out = {"mlm_logits": mlm.detach(), "nsp_logits": nsp.detach(), "loss": loss.detach().reshape(1)}
    for k, v in params.items():
        out["grad." + k] = v.grad
    write_safetensors(f"{d}/reference.safetensors", out)


if __name__ == "__main__":
    torch.set_num_threads(1)
    main(sys.argv[1])
