#!/usr/bin/env python3
"""llama.cpp's greedy decoding, the second reference of tests/models/test_llamacpp_parity.cpp.
Usage: llamacpp_reference.py MODEL.gguf IN.json OUT.json
IN.json: {"prompts": [[ids...], ...], "new_tokens": N}; the prompts are token ids (llmkit's own
tokenisation, so only the model is compared). OUT.json: {"tokens": [[ids...], ...],
"tokenized": [[ids...], ...]} where "tokenized" is llama.cpp's tokenisation of IN's "texts" (if
given; special tokens parsed, BOS added exactly when the GGUF's tokenizer.ggml.add_bos_token says
so), to compare the GGUF tokenizers too. Greedy = argmax of the last position's logits, one
token at a time, as llmkit's greedy sampler does.
With "logits": true in IN.json, OUT.json also has "logits": [[V floats], ...], the logits at the
last position of each prompt (before any generated token): tests/models/test_gguf_export.cpp
compares them with ours on the GGUF files llmkit writes."""
import json
import sys

import llama_cpp
import numpy as np


def last_logits(llm):
    """The logits of the last token evaluated (llama-cpp-python keeps no copy unless logits_all)."""
    return np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(llm.n_vocab(),))


def main():
    path, inp, out = sys.argv[1:4]
    spec = json.load(open(inp))
    n_new = int(spec["new_tokens"])
    longest = max(len(p) for p in spec["prompts"])
    # The KV cache in f32 (llama.cpp's default is f16, which rounds K and V to 11 bits and flips
    # near ties within 64 tokens): with it, llama.cpp's f32 path differs from ours only in the
    # order of float sums.
    llm = llama_cpp.Llama(model_path=path, n_ctx=longest + n_new + 8, n_threads=2,
                          n_threads_batch=2, verbose=False, logits_all=False,
                          type_k=llama_cpp.GGML_TYPE_F32, type_v=llama_cpp.GGML_TYPE_F32)
    results, logits = [], []
    for prompt in spec["prompts"]:
        llm.reset()
        llm.eval(prompt)
        if spec.get("logits"):
            logits.append([float(x) for x in last_logits(llm)])
        toks = []
        for _ in range(n_new):
            nxt = int(last_logits(llm).argmax())
            toks.append(nxt)
            llm.eval([nxt])
        results.append(toks)
    # add_bos=True is llama_tokenize's add_special: BOS only where the vocabulary asks for it.
    tokenized = [llm.tokenize(t.encode("utf-8"), add_bos=True, special=True)
                 for t in spec.get("texts", [])]
    result = {"tokens": results, "tokenized": tokenized}
    if spec.get("logits"):
        result["logits"] = logits
    json.dump(result, open(out, "w"))


if __name__ == "__main__":
    main()
