"""PEFT reference for tests/models/test_peft_parity.cpp (LoRA adapters, peft 0.13).

  make OUT [KIND...]
                  for each (or each named) tiny random Hugging Face model (llama:
                  LlamaForCausalLM, gpt2: GPT2LMHeadModel, bert: BertModel) writes OUT/<kind>/base (save_pretrained),
                  OUT/<kind>/peft_adapter (get_peft_model with PEFT's default target modules,
                  r 4, alpha 8, every lora_B and lora_A drawn at random, save_pretrained) and
                  OUT/<kind>/reference.safetensors: ids, the adapted model's output ("out":
                  logits, or BERT's last hidden state), the loss (causal LM: next-token
                  cross-entropy; BERT: sum(hidden * R) with R saved) and "grad.<file name>" of
                  every lora_A / lora_B; OUT/<kind>/trainable.txt holds
                  print_trainable_parameters()'s line for a fresh default adapter.
  check DIR...    for each DIR (OUT/<kind>): loads DIR/base with the adapter in DIR/ours_adapter
                  (PeftModel.from_pretrained) and writes DIR/ours_reference.safetensors: "out"
                  for DIR/reference's ids.
Float32, eval mode (no dropout). Not a test by itself; the C++ test compares.
"""
import contextlib
import io
import os
import sys

import torch
from peft import LoraConfig, PeftModel, get_peft_model
from safetensors.torch import load_file, save_file

KINDS = ("llama", "gpt2", "bert")
VOCAB = 60


def make_base(kind):
    from transformers import (BertConfig, BertModel, GPT2Config, GPT2LMHeadModel, LlamaConfig,
                              LlamaForCausalLM)
    torch.manual_seed(3)
    if kind == "llama":
        return LlamaForCausalLM(LlamaConfig(
            vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
            tie_word_embeddings=False, bos_token_id=1, eos_token_id=2))
    if kind == "gpt2":
        return GPT2LMHeadModel(GPT2Config(vocab_size=VOCAB, n_positions=64, n_embd=32,
                                          n_layer=2, n_head=4))
    return BertModel(BertConfig(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2,
                                num_attention_heads=4, intermediate_size=64,
                                max_position_embeddings=64), add_pooling_layer=True)


def output(model, kind, ids):
    out = model(input_ids=ids)
    return out.last_hidden_state if kind == "bert" else out.logits


def loss_of(out, kind, ids, r):
    if kind == "bert":
        return (out * r).sum()
    v = out.shape[-1]
    return torch.nn.functional.cross_entropy(out[:, :-1].reshape(-1, v), ids[:, 1:].reshape(-1))


def inputs():
    ids = torch.tensor([[(i * 7 + 3) % (VOCAB - 1) + 1 for i in range(12)],
                        [(i * 11 + 5) % (VOCAB - 1) + 1 for i in range(12)]], dtype=torch.int64)
    g = torch.Generator().manual_seed(5)
    r = torch.rand(2, 12, 32, generator=g) * 2 - 1
    return ids, r


def make(out_dir, kinds):
    ids, r = inputs()
    for kind in kinds:
        d = os.path.join(out_dir, kind)
        base = make_base(kind).float().eval()
        base.save_pretrained(os.path.join(d, "base"), safe_serialization=True)
        # (d) the line for a fresh default adapter
        fresh = get_peft_model(make_base(kind).float(), LoraConfig(r=4, lora_alpha=8))
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            fresh.print_trainable_parameters()
        with open(os.path.join(d, "trainable.txt"), "w") as f:
            f.write(buf.getvalue())
        # (a), (c): an adapter with random A and B
        model = get_peft_model(base, LoraConfig(r=4, lora_alpha=8)).eval()
        g = torch.Generator().manual_seed(11)
        with torch.no_grad():
            for n, p in model.named_parameters():
                if "lora_" in n:
                    p.copy_((torch.rand(p.shape, generator=g) * 2 - 1) * 0.3)
        model.save_pretrained(os.path.join(d, "peft_adapter"))
        out = output(model, kind, ids)
        loss = loss_of(out, kind, ids, r)
        loss.backward()
        ref = {"ids": ids.to(torch.int32), "R": r, "out": out.detach(),
               "loss": loss.detach().reshape(1)}
        for n, p in model.named_parameters():
            if "lora_" in n:
                ref["grad." + n.replace(".default", "")] = p.grad
            elif p.grad is not None:
                raise SystemExit(f"frozen parameter {n} got a gradient")
        save_file({k: v.contiguous() for k, v in ref.items()},
                  os.path.join(d, "reference.safetensors"))


def check(d):
    kind = os.path.basename(os.path.normpath(d))
    from transformers import AutoModel, AutoModelForCausalLM
    cls = AutoModel if kind == "bert" else AutoModelForCausalLM
    base = cls.from_pretrained(os.path.join(d, "base")).float().eval()
    model = PeftModel.from_pretrained(base, os.path.join(d, "ours_adapter")).eval()
    ids = load_file(os.path.join(d, "reference.safetensors"))["ids"].to(torch.int64)
    with torch.no_grad():
        out = output(model, kind, ids)
    save_file({"out": out.contiguous()}, os.path.join(d, "ours_reference.safetensors"))


if __name__ == "__main__":
    if len(sys.argv) < 3 or sys.argv[1] not in ("make", "check"):
        raise SystemExit(__doc__)
    if sys.argv[1] == "make":
        make(sys.argv[2], sys.argv[3:] or KINDS)
    else:
        for d in sys.argv[2:]:
            check(d)
