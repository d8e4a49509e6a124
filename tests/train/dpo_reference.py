"""DPO reference for tests/train/test_dpo_parity.cpp: TRL's sigmoid DPO loss computed directly in
PyTorch, as trl 0.12's DPOTrainer does it (concatenated_forward: the logits at t score the label at
t + 1, log_softmax gathered and summed over the answer's tokens; dpo_loss with loss_type "sigmoid",
label_smoothing 0), on a tiny random LlamaForCausalLM (transformers) with a PEFT LoRA adapter
(random A and B) as the policy and the base model (adapter disabled) as the reference.

  make OUT   writes OUT/base (save_pretrained), OUT/adapter (PEFT save_pretrained) and
             OUT/reference.safetensors: ids [2B, T] (chosen rows then rejected), labels [2B, T]
             (-100 on prompt and padding), policy_logps / ref_logps [2B], loss [1],
             chosen_rewards / rejected_rewards [B], and grad.<PEFT file name> of every lora tensor.
Float32, eval mode. Not a test by itself; the C++ test compares.
"""
import os
import sys

import torch
import torch.nn.functional as F
from peft import LoraConfig, get_peft_model
from safetensors.torch import save_file
from transformers import LlamaConfig, LlamaForCausalLM

VOCAB, BETA = 60, 0.1


def batch():
    # Three pairs: prompts of 3..5 tokens, answers of 2..6 tokens, right-padded with 0.
    g = torch.Generator().manual_seed(7)
    rows, labels = [], []
    pairs = []
    for b in range(3):
        prompt = torch.randint(1, VOCAB, (3 + b,), generator=g).tolist()
        chosen = torch.randint(1, VOCAB, (2 + 2 * b,), generator=g).tolist()
        rejected = torch.randint(1, VOCAB, (4 + b % 2,), generator=g).tolist()
        pairs.append((prompt, chosen, rejected))
    for k in range(2):
        for prompt, chosen, rejected in pairs:
            answer = chosen if k == 0 else rejected
            rows.append(prompt + answer)
            labels.append([-100] * len(prompt) + answer)
    t = max(len(r) for r in rows)
    ids = torch.tensor([r + [0] * (t - len(r)) for r in rows])
    lab = torch.tensor([l + [-100] * (t - len(l)) for l in labels])
    return ids, lab


def logps(logits, labels):
    # trl 0.12 DPOTrainer.get_batch_logps / concatenated_forward
    labels = labels[:, 1:].clone()
    logits = logits[:, :-1, :]
    mask = labels != -100
    labels[labels == -100] = 0
    per_token = torch.gather(logits.log_softmax(-1), 2, labels.unsqueeze(2)).squeeze(2)
    return (per_token * mask).sum(-1)


def make(out):
    torch.manual_seed(3)
    base = LlamaForCausalLM(LlamaConfig(
        vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
        tie_word_embeddings=False, bos_token_id=1, eos_token_id=2)).float().eval()
    base.save_pretrained(os.path.join(out, "base"), safe_serialization=True)
    model = get_peft_model(base, LoraConfig(r=4, lora_alpha=8)).eval()
    g = torch.Generator().manual_seed(11)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "lora_" in n:
                p.copy_((torch.rand(p.shape, generator=g) * 2 - 1) * 0.3)
    model.save_pretrained(os.path.join(out, "adapter"))
    ids, labels = batch()
    with torch.no_grad(), model.disable_adapter():
        ref = logps(model(input_ids=ids).logits, labels)
    pol = logps(model(input_ids=ids).logits, labels)
    n = ids.shape[0] // 2
    pc, pr, rc, rr = pol[:n], pol[n:], ref[:n], ref[n:]
    # trl 0.12 DPOTrainer.dpo_loss, loss_type "sigmoid", label_smoothing 0
    logits = (pc - pr) - (rc - rr)
    losses = -F.logsigmoid(BETA * logits)
    loss = losses.mean()
    loss.backward()
    out_t = {"ids": ids.to(torch.int32), "labels": labels.to(torch.int32),
             "policy_logps": pol.detach(), "ref_logps": ref, "loss": loss.detach().reshape(1),
             "chosen_rewards": (BETA * (pc - rc)).detach(),
             "rejected_rewards": (BETA * (pr - rr)).detach()}
    for name, p in model.named_parameters():
        if "lora_" in name:
            out_t["grad." + name.replace(".default", "")] = p.grad
    save_file({k: v.contiguous() for k, v in out_t.items()},
              os.path.join(out, "reference.safetensors"))


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] != "make":
        raise SystemExit(__doc__)
    make(sys.argv[2])
