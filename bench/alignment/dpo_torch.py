"""The PyTorch + PEFT side of bench/alignment/dpo_vs_torch.sh: the same DPO training step as
`llmkit dpo --plain --method lora` (TRL's sigmoid loss, the reference log-probabilities computed
once before training, LoRA r 8 / alpha 16 on q_proj and v_proj, AdamW), on the same GGUF model
dequantised to f32 by transformers, timed per step after warm-up. Prints one JSON line:
ms_per_step, peak_mb, steps, tokens (per step, mean). Not TRL itself (TRL needs PyTorch 2): its
loss is written out here as in tests/train/dpo_reference.py.
Usage: dpo_torch.py GGUF PAIRS.jsonl STEPS BATCH MAX_LEN MAX_PROMPT THREADS"""
import json
import os
import resource
import sys
import time

import torch
import torch.nn.functional as F
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM, AutoTokenizer

gguf, pairs_path, steps, batch, max_len, max_prompt, threads = sys.argv[1:8]
steps, batch, max_len, max_prompt, threads = map(int, (steps, batch, max_len, max_prompt, threads))
torch.set_num_threads(threads)
torch.manual_seed(0)
d, f = os.path.split(os.path.abspath(gguf))
tok = AutoTokenizer.from_pretrained(d, gguf_file=f)
model = AutoModelForCausalLM.from_pretrained(d, gguf_file=f, torch_dtype=torch.float32)
# SmolLM2 ties the LM head to the embeddings; transformers' GGUF loader leaves lm_head fresh.
model.lm_head.weight = model.model.embed_tokens.weight
model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0,
                                         target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"))
model.train()
eos = tok.eos_token_id


def row(prompt, answer):
    """--plain: the prompt's tokens (prompt_limit from the end), the answer's and eos (learned)."""
    if prompt and not prompt[-1].isspace() and answer and not answer[0].isspace():
        answer = " " + answer
    p = tok.encode(prompt, add_special_tokens=False)[-max_prompt:]
    a = tok.encode(answer, add_special_tokens=False) + [eos]
    ids = (p + a)[:max_len]
    labels = ([-100] * len(p) + a)[:max_len]
    return ids, labels


pairs = [json.loads(l) for l in open(pairs_path, encoding="utf-8")]
rows = [(row(p["prompt"], p["chosen"]), row(p["prompt"], p["rejected"])) for p in pairs]


def batch_of(i):
    sel = [rows[(i * batch + j) % len(rows)] for j in range(batch)]
    flat = [c for c, _ in sel] + [r for _, r in sel]  # chosen rows, then rejected (TRL)
    T = max(len(ids) for ids, _ in flat)
    ids = torch.tensor([x + [0] * (T - len(x)) for x, _ in flat])
    labels = torch.tensor([y + [-100] * (T - len(y)) for _, y in flat])
    mask = (torch.arange(T)[None, :] < torch.tensor([len(x) for x, _ in flat])[:, None]).long()
    return ids, labels, mask, sum(len(x) for x, _ in flat)


def logps(ids, labels, mask):
    logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1]
    lab = labels[:, 1:]
    keep = lab != -100
    per = torch.gather(logits.log_softmax(-1), 2, lab.clamp(min=0).unsqueeze(2)).squeeze(2)
    return (per * keep).sum(-1)


total = steps + 2
with torch.no_grad(), model.disable_adapter():  # the reference, once (precompute_ref_log_probs)
    refs = [logps(*batch_of(i)[:3]) for i in range(total)]
opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=5e-4,
                        weight_decay=0.0)
times, toks = [], []
for i in range(total):
    ids, labels, mask, n = batch_of(i)
    t0 = time.perf_counter()
    lp = logps(ids, labels, mask)
    ref = refs[i]
    logits = 0.1 * ((lp[:batch] - ref[:batch]) - (lp[batch:] - ref[batch:]))
    loss = -F.logsigmoid(logits).mean()
    opt.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    if i >= 2:
        times.append(time.perf_counter() - t0)
        toks.append(n)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"ms_per_step": 1000 * sum(times) / len(times), "peak_mb": peak,
                  "steps": len(times), "tokens": sum(toks) / len(toks)}))
