#!/usr/bin/env python3
"""The llama.cpp side of bench/quant_vs_llamacpp, measured the way llama-bench measures and the
way `llmkit bench` does: pp = one eval of PP random (seeded) token ids from an empty KV cache, in
one batch (n_batch = PP); tg = TG one-token evals from an empty cache; one warm-up run of each,
then REPS timed runs, tokens/s as mean and sample standard deviation. llama.cpp through
llama-cpp-python (built from its PyPI sdist by scripts/install-deps.sh), its defaults otherwise
(f16 KV cache, no flash attention). Also: load time (path to a ready context), the model's tensor
bytes (llama_model_size) and the process's peak RSS, with the RSS of the interpreter and the
imported modules before the model was loaded, so the model's own share can be read off.
Usage: llamacpp_bench.py MODEL.gguf THREADS PP TG REPS   -> one JSON line on stdout"""
import json
import random
import resource
import os
import statistics
import sys
import time

import llama_cpp

# ggml_build(): shared with the f32 SmolLM2 bench's peer.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "infer_vs_llamacpp"))
from llamacpp_peer import ggml_build  # noqa: E402


def system_info():
    """llama.cpp's own line of the CPU features it was built with (AVX512, VNNI, OPENMP ...)."""
    try:
        return llama_cpp.llama_print_system_info().decode().strip()
    except (AttributeError, OSError):
        return "?"


def rss_peak_bytes():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def rate(samples):
    return statistics.mean(samples), (statistics.stdev(samples) if len(samples) > 1 else 0.0)


def main():
    path, threads, pp, tg, reps = sys.argv[1], *map(int, sys.argv[2:6])
    baseline = rss_peak_bytes()
    t0 = time.perf_counter()
    llm = llama_cpp.Llama(model_path=path, n_ctx=max(pp + tg, 16), n_threads=threads,
                          n_threads_batch=threads, n_batch=max(pp, 1), n_ubatch=max(pp, 1),
                          verbose=False, use_mmap=True)
    load_s = time.perf_counter() - t0
    rng = random.Random(1234)
    ids = [rng.randrange(llm.n_vocab()) for _ in range(max(pp, tg))]

    def time_pp():
        llm.reset()
        t = time.perf_counter()
        llm.eval(ids[:pp])
        return time.perf_counter() - t

    def time_tg(n):
        llm.reset()
        t = time.perf_counter()
        for i in range(n):
            llm.eval([ids[i]])
        return time.perf_counter() - t

    out = {"peer": f"llama.cpp via llama-cpp-python {llama_cpp.__version__}",
           "ggml": ggml_build(), "system_info": system_info(), "model": path, "load_s": load_s,
           "threads": threads, "repetitions": reps,
           "model_size_bytes": int(llama_cpp.llama_model_size(llm.model))}
    if pp > 0:
        time_pp()  # warm-up
        out["pp"], out["pp_sd"] = rate([pp / time_pp() for _ in range(reps)])
    if tg > 0:
        time_tg(1)
        out["tg"], out["tg_sd"] = rate([tg / time_tg(tg) for _ in range(reps)])
    out["peak_rss_bytes"] = rss_peak_bytes()
    out["baseline_rss_bytes"] = baseline
    print(json.dumps(out))


if __name__ == "__main__":
    main()
