#!/usr/bin/env python3
"""llama.cpp's perplexity of a GGUF on a text file, computed by the method of llama-perplexity and
`llmkit perplexity` (llmkit/infer/perplexity.h), here through llama-cpp-python: the text tokenised
by llama.cpp with the model's special tokens (BOS first when the model adds one), chunks of CTX
tokens each evaluated from an empty cache with every position's logits, the first token of a
chunk replaced by BOS when the model adds one, and -log p of the next token summed over positions
CTX/2 .. CTX-2 of each chunk (log-softmax in float64).
Usage: llamacpp_perplexity.py MODEL.gguf TEXT CTX CHUNKS THREADS -> one JSON line on stdout
(CHUNKS 0: every whole chunk)"""
import json
import sys
import time

import llama_cpp
import numpy as np


def add_bos(llm):
    """Whether the model's vocabulary asks for a BOS token (llama_vocab_get_add_bos)."""
    try:
        return bool(llama_cpp.llama_vocab_get_add_bos(llama_cpp.llama_model_get_vocab(llm.model)))
    except AttributeError:
        return bool(llama_cpp.llama_add_bos_token(llm.model))


def main():
    path, text_path, ctx, chunks, threads = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:6])
    llm = llama_cpp.Llama(model_path=path, n_ctx=ctx, n_batch=ctx, n_ubatch=ctx,
                          n_threads=threads, n_threads_batch=threads, logits_all=True,
                          verbose=False)
    bos = add_bos(llm)
    text = open(text_path, "rb").read()
    tokens = llm.tokenize(text, add_bos=True, special=False)  # add_bos: as the vocab says
    n_chunks = len(tokens) // ctx
    if chunks > 0:
        n_chunks = min(n_chunks, chunks)
    if n_chunks < 1:
        sys.exit(f"llamacpp_perplexity: {len(tokens)} tokens, fewer than one chunk of {ctx}")
    first = ctx // 2
    nll, count = 0.0, 0
    t0 = time.perf_counter()
    for c in range(n_chunks):
        chunk = tokens[c * ctx:(c + 1) * ctx]
        if bos:
            chunk[0] = llm.token_bos()
        llm.reset()
        llm.eval(chunk)
        logits = np.asarray(llm.scores[first:ctx - 1], dtype=np.float64)  # rows first..ctx-2
        m = logits.max(axis=1, keepdims=True)
        lse = m[:, 0] + np.log(np.exp(logits - m).sum(axis=1))
        targets = np.asarray(chunk[first + 1:ctx])
        nll += float((lse - logits[np.arange(len(targets)), targets]).sum())
        count += len(targets)
    loss = nll / count
    print(json.dumps({"perplexity": float(np.exp(loss)), "loss": loss, "tokens_scored": count,
                      "chunks": n_chunks, "context": ctx, "tokens": len(tokens), "add_bos": bos,
                      "seconds": time.perf_counter() - t0,
                      "peer": f"llama.cpp via llama-cpp-python {llama_cpp.__version__}"}))


if __name__ == "__main__":
    main()
