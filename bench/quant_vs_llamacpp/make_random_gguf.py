#!/usr/bin/env python3
"""Writes a random-initialised llama-layout model as an f32 GGUF, for speed comparisons at sizes
no released checkpoint has (6 x 384, the GPT-2-size 12 x 768): weights N(0, 0.02), norms 1, the
output head tied to the embedding (as SmolLM2 and GPT-2 tie it). The tokenizer and every other
metadata key come from DONOR.gguf (SmolLM2's: vocabulary 49152), so llama.cpp and llmkit both
load the file as an ordinary model. Speed does not depend on the weights' values; these files are
for bench/quant_vs_llamacpp only, never for quality figures.
Usage: make_random_gguf.py DONOR.gguf N_LAYER N_EMBD N_HEAD FFN OUT.gguf [SEED]"""
import os
import sys

import gguf
import numpy as np


def main():
    donor, n_layer, n_embd, n_head, ffn, out = sys.argv[1:7]
    n_layer, n_embd, n_head, ffn = int(n_layer), int(n_embd), int(n_head), int(ffn)
    seed = int(sys.argv[7]) if len(sys.argv) > 7 else 0
    r = gguf.GGUFReader(donor)
    arch = r.fields["general.architecture"].contents()
    assert arch == "llama", f"{donor}: want a llama donor, got {arch}"
    vocab = len(r.fields["tokenizer.ggml.tokens"].contents())
    ours = {
        "llama.block_count": n_layer,
        "llama.embedding_length": n_embd,
        "llama.feed_forward_length": ffn,
        "llama.attention.head_count": n_head,
        "llama.attention.head_count_kv": n_head,
        "llama.rope.dimension_count": n_embd // n_head,
        "llama.context_length": 2048,
        "llama.vocab_size": vocab,
    }
    w = gguf.GGUFWriter(out + ".tmp", "llama")
    for key, field in r.fields.items():
        if key.startswith("GGUF.") or key == "general.architecture" or key in ours:
            continue
        if key == "general.file_type":
            w.add_file_type(gguf.LlamaFileType.ALL_F32)
            continue
        if key == "general.name":
            w.add_name(f"random llama {n_layer}x{n_embd}")
            continue
        vtype = field.types[0]
        sub = field.types[-1] if vtype == gguf.GGUFValueType.ARRAY else None
        w.add_key_value(key, field.contents(), vtype, sub_type=sub)
    for key, value in ours.items():
        w.add_uint32(key, value)
    rng = np.random.default_rng(seed)

    def normal(*shape):  # numpy shape = reversed ggml ne: [out, in] like nn.Linear
        return (rng.standard_normal(shape, dtype=np.float32) * 0.02).astype(np.float32)

    w.add_tensor("token_embd.weight", normal(vocab, n_embd))
    for i in range(n_layer):
        b = f"blk.{i}."
        w.add_tensor(b + "attn_norm.weight", np.ones(n_embd, np.float32))
        for name in ("attn_q", "attn_k", "attn_v", "attn_output"):
            w.add_tensor(b + name + ".weight", normal(n_embd, n_embd))
        w.add_tensor(b + "ffn_norm.weight", np.ones(n_embd, np.float32))
        w.add_tensor(b + "ffn_gate.weight", normal(ffn, n_embd))
        w.add_tensor(b + "ffn_up.weight", normal(ffn, n_embd))
        w.add_tensor(b + "ffn_down.weight", normal(n_embd, ffn))
    w.add_tensor("output_norm.weight", np.ones(n_embd, np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    os.replace(out + ".tmp", out)


if __name__ == "__main__":
    main()
