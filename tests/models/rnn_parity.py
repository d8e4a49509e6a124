#!/usr/bin/python3
"""PyTorch reference for the RNNLM parity test (tests/models/test_rnn_parity.cpp).

Reads DIR/config.json (an llmkit RNNLM config), DIR/model.safetensors (weights by llmkit's names:
embedding.weight, rnn.weight_ih_l0 ..., head.weight) and DIR/inputs.safetensors (ids, targets,
i32), builds the same model from torch.nn.Embedding + torch.nn.LSTM / torch.nn.GRU
(batch_first=True) + a linear head, and writes DIR/reference.safetensors with the logits, the loss
and the gradient of every parameter ("grad.<name>"). float64 throughout, so the comparison
measures llmkit's own error.
"""
import json
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from gpt_parity import read_safetensors, write_safetensors  # noqa: E402


def main(d):
    cfg = json.load(open(f"{d}/config.json"))
    cfg = cfg.get("model", cfg)
    weights = read_safetensors(f"{d}/model.safetensors")
    inputs = read_safetensors(f"{d}/inputs.safetensors")
    cls = torch.nn.LSTM if cfg["cell"] == "lstm" else torch.nn.GRU
    rnn = cls(cfg["n_embd"], cfg["hidden"], cfg["n_layer"], batch_first=True).double()
    rnn.load_state_dict({k[len("rnn."):]: v.double() for k, v in weights.items()
                         if k.startswith("rnn.")})
    emb = weights["embedding.weight"].double().requires_grad_()
    head = emb if cfg["tie_embeddings"] else weights["head.weight"].double().requires_grad_()
    y, _ = rnn(emb[inputs["ids"].long()])
    logits = y @ head.t()
    loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                           inputs["targets"].reshape(-1).long(), ignore_index=-100)
    loss.backward()
    out = {"logits": logits.detach(), "loss": loss.detach().reshape(1),
           "grad.embedding.weight": emb.grad}
    if not cfg["tie_embeddings"]:
        out["grad.head.weight"] = head.grad
    for k, v in rnn.named_parameters():
        out["grad.rnn." + k] = v.grad
    write_safetensors(f"{d}/reference.safetensors", out)


if __name__ == "__main__":
    torch.set_num_threads(1)
    main(sys.argv[1])
