"""transformers reference for tests/models/test_llama_hf_parity.cpp (llama family).

  tiny OUT        saves tiny random Hugging Face models made by transformers (save_pretrained:
                  config.json + model.safetensors) in OUT/<name>/ with OUT/<name>/reference.safetensors
                  holding fixed input ids and transformers' fp32 logits. <name>: qwen2 (q/k/v bias),
                  llama3 (llama3 rope scaling, untied head, attention_bias), linear (linear rope
                  scaling, tied head).
  smollm2 GGUF OUT  dequantises the SmolLM2 GGUF with the `gguf` package itself, un-permutes q/k
                  (the inverse of convert_hf_to_gguf.py's permute), builds LlamaForCausalLM in fp32
                  with those weights, tokenises with transformers' GGUF tokenizer and writes
                  OUT/reference.safetensors: ids.N, logits.N and greedy.N (64 new tokens,
                  transformers' KV cache) for the prompts in PROMPTS.
Not a test by itself; the C++ test compares.
"""
import json
import os
import sys

import numpy as np
import torch

PROMPTS = [
    "The capital of France is",
    "한국의 수도는 서울이고, 가장 큰 항구 도시는",
    "def fibonacci(n):\n    if n < 2:\n        return n\n",
]
NEW_TOKENS = 64


def save(path, tensors):
    from safetensors.torch import save_file
    save_file({k: v.contiguous() for k, v in tensors.items()}, path)


def tiny(out):
    from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM
    common = dict(vocab_size=96, hidden_size=64, intermediate_size=112, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
                  rms_norm_eps=1e-6, bos_token_id=1, eos_token_id=2)
    cases = {
        "qwen2": (Qwen2ForCausalLM, Qwen2Config(rope_theta=1e6, tie_word_embeddings=True, **common)),
        "llama3": (LlamaForCausalLM, LlamaConfig(
            rope_theta=500000.0, tie_word_embeddings=False, attention_bias=True,
            rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                          "high_freq_factor": 4.0, "original_max_position_embeddings": 16},
            **common)),
        "linear": (LlamaForCausalLM, LlamaConfig(
            rope_theta=10000.0, tie_word_embeddings=True,
            rope_scaling={"type": "linear", "factor": 2.0}, **common)),
    }
    for name, (cls, cfg) in cases.items():
        torch.manual_seed(7)
        model = cls(cfg).float().eval()
        with torch.no_grad():
            for n, p in model.named_parameters():  # biases and norms away from 0 / 1
                if n.endswith("bias") or "norm" in n:
                    p.add_(torch.randn_like(p) * 0.1)
        d = os.path.join(out, name)
        model.save_pretrained(d, safe_serialization=True)
        ids = torch.tensor([[(i * 37 + 5) % 96 for i in range(40)]], dtype=torch.int64)
        with torch.no_grad():
            logits = model(ids).logits
        save(os.path.join(d, "reference.safetensors"),
             {"ids": ids.to(torch.int32), "logits": logits.float()})


def read_gguf(path):
    import gguf
    r = gguf.GGUFReader(path)
    meta = {}
    for k, f in r.fields.items():
        if k.startswith("llama.") or k in ("tokenizer.ggml.bos_token_id",
                                           "tokenizer.ggml.eos_token_id"):
            meta[k] = f.contents()
    tensors = {}
    for t in r.tensors:
        a = gguf.quants.dequantize(t.data, t.tensor_type)
        a = np.asarray(a, dtype=np.float32).reshape(list(reversed(t.shape.tolist())))
        tensors[t.name] = torch.from_numpy(a.copy())
    return meta, tensors


def unpermute(w, n_head):
    # convert_hf_to_gguf.py: w.reshape(n_head, 2, rows // n_head // 2, *rest).swapaxes(1, 2)
    rows = w.shape[0]
    return w.reshape(n_head, rows // n_head // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def greedy(model, ids):
    # Greedy decoding through transformers' KV cache (past_key_values), no eos stop. (Not
    # model.generate: with Debian's torch 1.13 on Python 3.11 it fails importing torch.distributed.)
    out = model(ids, use_cache=True)
    toks = []
    for _ in range(NEW_TOKENS):
        nxt = int(out.logits[0, -1].argmax())
        toks.append(nxt)
        out = model(torch.tensor([[nxt]]), past_key_values=out.past_key_values, use_cache=True)
    return torch.tensor(toks, dtype=torch.int32)


def gguf_llama(gguf_path):
    """(LlamaConfig, Hugging Face state dict) of a llama GGUF, dequantised by gguf-py."""
    from transformers import LlamaConfig
    meta, t = read_gguf(gguf_path)
    nh, nkv = int(meta["llama.attention.head_count"]), int(meta["llama.attention.head_count_kv"])
    tied = "output.weight" not in t
    cfg = LlamaConfig(
        vocab_size=t["token_embd.weight"].shape[0],
        hidden_size=int(meta["llama.embedding_length"]),
        intermediate_size=int(meta["llama.feed_forward_length"]),
        num_hidden_layers=int(meta["llama.block_count"]),
        num_attention_heads=nh, num_key_value_heads=nkv,
        max_position_embeddings=int(meta["llama.context_length"]),
        rms_norm_eps=float(meta["llama.attention.layer_norm_rms_epsilon"]),
        rope_theta=float(meta["llama.rope.freq_base"]),
        tie_word_embeddings=tied,
        bos_token_id=int(meta["tokenizer.ggml.bos_token_id"]),
        eos_token_id=int(meta["tokenizer.ggml.eos_token_id"]),
        torch_dtype="float32")
    sd = {"model.embed_tokens.weight": t["token_embd.weight"],
          "model.norm.weight": t["output_norm.weight"]}
    if not tied:
        sd["lm_head.weight"] = t["output.weight"]
    names = {"attn_norm": "input_layernorm", "ffn_norm": "post_attention_layernorm",
             "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj",
             "attn_v": "self_attn.v_proj", "attn_output": "self_attn.o_proj",
             "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj", "ffn_down": "mlp.down_proj"}
    for i in range(cfg.num_hidden_layers):
        for g, h in names.items():
            w = t[f"blk.{i}.{g}.weight"]
            if g == "attn_q":
                w = unpermute(w, nh)
            elif g == "attn_k":
                w = unpermute(w, nkv)
            sd[f"model.layers.{i}.{h}.weight"] = w
    return cfg, sd


def smollm2(gguf_path, out):
    from transformers import AutoTokenizer, LlamaForCausalLM
    cfg, sd = gguf_llama(gguf_path)
    from transformers.modeling_utils import no_init_weights
    with no_init_weights():  # every weight comes from the GGUF; skip 135M random draws
        model = LlamaForCausalLM(cfg).float().eval()
    model.tie_weights()
    missing, unexpected = model.load_state_dict(sd, strict=False)
    assert not unexpected and all("lm_head" in m for m in missing), (missing, unexpected)
    tok = AutoTokenizer.from_pretrained(os.path.dirname(gguf_path),
                                        gguf_file=os.path.basename(gguf_path))
    os.makedirs(out, exist_ok=True)
    ref = {}
    torch.set_num_threads(2)
    for n, p in enumerate(PROMPTS):
        ids = torch.tensor([tok(p, add_special_tokens=False).input_ids], dtype=torch.int64)
        with torch.no_grad():
            ref[f"logits.{n}"] = model(ids).logits.float()
            ref[f"greedy.{n}"] = greedy(model, ids)
        ref[f"ids.{n}"] = ids.to(torch.int32)
    save(os.path.join(out, "reference.safetensors"), ref)


if __name__ == "__main__":
    torch.manual_seed(0)
    if sys.argv[1] == "tiny":
        tiny(sys.argv[2])
    elif sys.argv[1] == "smollm2":
        smollm2(sys.argv[2], sys.argv[3])
    else:
        sys.exit("usage: llama_hf_reference.py tiny OUT | smollm2 GGUF OUT")
