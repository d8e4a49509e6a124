#!/usr/bin/env python3
"""The sentence-transformers side of bench/embed: sentences/s of SentenceTransformer.encode on a
file of sentences (one a line), CPU, at THREADS torch threads, batch BATCH, max_seq_length
MAX_LEN, after a warm-up batch (the first call pays for lazy initialisation). encode() sorts by
length and pads per batch, as llmkit does, and the model's Normalize module makes unit vectors.
Also writes every vector to VECTORS.npy, for the agreement check.
Usage: st_peer.py MODEL_DIR SENTENCES THREADS BATCH MAX_LEN VECTORS.npy REPS -> one JSON line"""
import json
import sys
import time

import numpy as np
import torch

model_dir, path, threads, batch, max_len, vec_out, reps = sys.argv[1:8]
threads, batch, max_len, reps = int(threads), int(batch), int(max_len), int(reps)
torch.set_num_threads(threads)
torch.set_num_interop_threads(1)
from sentence_transformers import SentenceTransformer  # noqa: E402  (after the thread setting)
import sentence_transformers  # noqa: E402

with open(path, encoding="utf-8") as f:
    sentences = [line.rstrip("\n") for line in f]
t0 = time.perf_counter()
model = SentenceTransformer(model_dir, device="cpu")
model.max_seq_length = max_len
load = time.perf_counter() - t0
model.encode(sentences[:batch], batch_size=batch)  # warm-up
best = None
for _ in range(reps):
    t0 = time.perf_counter()
    vectors = model.encode(sentences, batch_size=batch, convert_to_numpy=True)
    run = time.perf_counter() - t0
    best = run if best is None else min(best, run)
np.save(vec_out, vectors.astype(np.float32))
print(json.dumps({"peer": f"sentence-transformers {sentence_transformers.__version__}, "
                          f"torch {torch.__version__}",
                  "load_s": load, "run_s": best, "sentences_per_s": len(sentences) / best}))
