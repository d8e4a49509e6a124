"""The Python peers of bench/tokenizer/run.sh (native wheels from scripts/requirements-bench.txt,
nothing downloaded at run time), timed the way bench_tokenizer times llmkit: the corpus cut into
~64 kB texts, encoded one after the other (1 thread) or as one batch (all threads).
  peers.py encode CORPUS GPT2_DIR      tiktoken r50k_base (built from GPT2_DIR's encoder.json +
                                       vocab.bpe) and HF tokenizers (ByteLevel BPE, same files)
  peers.py train CORPUS VOCAB OUT.json HF tokenizers' BpeTrainer (byte-level, min frequency 0)
Prints one JSON line per measurement. Run with the project venv: .venv/bin/python."""
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "tests", "fixtures", "tokenizer"))


def chunks(text):
    out, pos = [], 0
    while pos < len(text):
        end = text.find("\n", min(len(text), pos + 65536))
        end = len(text) if end < 0 else end + 1
        out.append(text[pos:end])
        pos = end
    return out


def time_it(fn, min_seconds=2.0):
    fn()  # warm-up
    runs, t0 = 0, time.perf_counter()
    while True:
        result = fn()
        runs += 1
        elapsed = time.perf_counter() - t0
        if elapsed >= min_seconds and runs >= 2:
            return elapsed / runs, result


def encode(corpus, gpt2_dir):
    import r50k
    import tiktoken
    import tokenizers
    from tokenizers import Tokenizer, models, pre_tokenizers

    threads = int(os.environ.get("THREADS", "2"))
    text = open(corpus, encoding="utf-8").read()
    nbytes = len(text.encode("utf-8"))
    parts = chunks(text)

    def report(name, measured):
        seconds, tokens = measured
        print(json.dumps({"name": name, "mb_per_s": round(nbytes / seconds / 1e6, 2), "tokens": tokens}),
              flush=True)

    enc = r50k.r50k_base(gpt2_dir)
    tk = f"tiktoken {tiktoken.__version__}"
    report(f"{tk} 1 thread", time_it(lambda: sum(len(enc.encode_ordinary(p)) for p in parts)))
    report(f"{tk} batch, {threads} threads", time_it(
        lambda: sum(len(ids) for ids in enc.encode_ordinary_batch(parts, num_threads=threads))))

    tok = Tokenizer(models.BPE.from_file(os.path.join(gpt2_dir, "encoder.json"),
                                         os.path.join(gpt2_dir, "vocab.bpe")))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    hf = f"HF tokenizers {tokenizers.__version__}"
    report(f"{hf} 1 thread", time_it(lambda: sum(len(tok.encode(p).ids) for p in parts)))
    report(f"{hf} batch, {os.environ.get('RAYON_NUM_THREADS', 'all')} threads",
           time_it(lambda: sum(len(e.ids) for e in tok.encode_batch(parts))))


def train(corpus, vocab, out):
    import tokenizers
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    trainer = trainers.BpeTrainer(vocab_size=vocab, min_frequency=0, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    t0 = time.perf_counter()
    tok.train([corpus], trainer)
    seconds = time.perf_counter() - t0
    tok.save(out)
    print(json.dumps({"name": f"HF tokenizers {tokenizers.__version__} train", "seconds": round(seconds, 3),
                      "vocab": tok.get_vocab_size()}), flush=True)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "encode":
        encode(sys.argv[2], sys.argv[3])
    elif len(sys.argv) == 5 and sys.argv[1] == "train":
        train(sys.argv[2], int(sys.argv[3]), sys.argv[4])
    else:
        sys.exit("usage: peers.py encode CORPUS GPT2_DIR | train CORPUS VOCAB OUT.json")
