#!/usr/bin/env python3
"""The llama.cpp side of bench/infer_vs_llamacpp: load time, prefill (pp) and decode (tg)
tokens/s of a GGUF through llama-cpp-python (llama.cpp built from its PyPI sdist by
scripts/install-deps.sh). Greedy decoding, like llama-bench's tg: one token at a time.
Usage: llamacpp_peer.py MODEL.gguf THREADS PP TG [KV]   -> one JSON line on stdout
KV: the KV cache type, f16 (llama.cpp's default) or f32 (llmkit's, and the parity test's)."""
import ctypes
import json
import sys
import time

import llama_cpp
import numpy as np


def last_logits(llm):
    """The logits of the last token evaluated (llama-cpp-python keeps no copy unless logits_all)."""
    return np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(llm.n_vocab(),))


def ggml_build():
    """ggml's version and the commit it was built from, as the library reports them."""
    lib = llama_cpp.llama_cpp._lib
    out = []
    for name in ("ggml_version", "ggml_commit"):
        try:
            f = getattr(lib, name)
            f.restype = ctypes.c_char_p
            out.append(f().decode())
        except (AttributeError, OSError):
            out.append("?")
    return " ".join(out)


def main():
    path, threads, pp, tg = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    kv = sys.argv[5] if len(sys.argv) > 5 else "f16"
    kv_type = {"f16": llama_cpp.GGML_TYPE_F16, "f32": llama_cpp.GGML_TYPE_F32}[kv]
    t0 = time.perf_counter()
    llm = llama_cpp.Llama(model_path=path, n_ctx=pp + tg + 8, n_threads=threads,
                          n_threads_batch=threads, n_batch=pp, verbose=False, use_mmap=True,
                          type_k=kv_type, type_v=kv_type)
    load_s = time.perf_counter() - t0
    # Prefill: pp tokens of ordinary text ids (cycled from the tokenized prompt).
    seed = llm.tokenize(b"The quick brown fox jumps over the lazy dog. " * 8, add_bos=False)
    tokens = [seed[i % len(seed)] for i in range(pp)]
    best_pp = 0.0
    for _ in range(2):
        llm.reset()
        t0 = time.perf_counter()
        llm.eval(tokens)
        best_pp = max(best_pp, pp / (time.perf_counter() - t0))
    # Decode: tg tokens after a short prompt, one eval per token (greedy argmax).
    llm.reset()
    llm.eval(tokens[:16])
    t0 = time.perf_counter()
    nxt = int(last_logits(llm).argmax())
    for _ in range(tg):
        llm.eval([nxt])
        nxt = int(last_logits(llm).argmax())
    tg_s = tg / (time.perf_counter() - t0)
    print(json.dumps({"peer": f"llama.cpp via llama-cpp-python {llama_cpp.__version__}",
                      "ggml": ggml_build(), "kv": kv,
                      "load_s": load_s, "pp": best_pp, "tg": tg_s, "pp_tokens": pp,
                      "tg_tokens": tg, "threads": threads}))


if __name__ == "__main__":
    main()
