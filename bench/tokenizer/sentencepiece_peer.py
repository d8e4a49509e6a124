"""SentencePiece (the PyPI wheel of scripts/requirements-bench.txt; run with .venv/bin/python) as
a peer: BPE training time at a vocabulary size, then encode throughput of the model it trained
(one thread; the corpus cut into ~64 kB texts as for the other peers). Usage: sentencepiece_peer.py CORPUS VOCAB_SIZE OUT_PREFIX"""
import json, sys, time
import sentencepiece as spm

corpus, vocab, prefix = sys.argv[1], int(sys.argv[2]), sys.argv[3]
t0 = time.perf_counter()
spm.SentencePieceTrainer.train(input=corpus, model_prefix=prefix, vocab_size=vocab,
                               model_type="bpe", byte_fallback=True, character_coverage=1.0,
                               num_threads=2, minloglevel=2, input_sentence_size=0,
                               max_sentence_length=1 << 20)
print(json.dumps({"name": f"SentencePiece {spm.__version__} train (bpe)", "seconds": time.perf_counter() - t0, "vocab": vocab}))
sp = spm.SentencePieceProcessor(model_file=prefix + ".model")
text = open(corpus, encoding="utf-8").read()
parts, pos = [], 0
while pos < len(text):
    end = text.find("\n", min(len(text), pos + 65536))
    end = len(text) if end < 0 else end + 1
    parts.append(text[pos:end]); pos = end
nbytes = len(text.encode("utf-8"))
best = None
for _ in range(3):
    t0 = time.perf_counter()
    n = sum(len(sp.encode(p)) for p in parts)
    dt = time.perf_counter() - t0
    best = dt if best is None else min(best, dt)
print(json.dumps({"name": f"SentencePiece {spm.__version__} 1 thread (own bpe model)", "mb_per_s": nbytes / best / 1e6, "tokens": n}))
