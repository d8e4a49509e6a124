#!/usr/bin/env python3
"""Writes the seed inputs of the fuzz corpora (tests/fuzz/corpus/<target>/seed-*): small valid
files of each format, plus near-misses. Deterministic; no dependencies but the standard library.
The tokenizer.json seeds come from `llmkit tokenizer train` (pass --llmkit BUILD/llmkit), the
config seeds from configs/*.json. After fuzzing, the corpora are minimised with libFuzzer's
-merge=1 (see docs/fuzzing.md); the seeds are kept alongside."""
import argparse
import json
import os
import shutil
import struct
import subprocess
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def put(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def safetensors(tensors, metadata=None, pad=True):
    """tensors: list of (name, dtype, shape, raw bytes) in data order."""
    header, offset = {}, 0
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
    if metadata is not None:
        header["__metadata__"] = metadata
    h = json.dumps(header, separators=(",", ":")).encode()
    if pad:
        h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + b"".join(t[3] for t in tensors)


def seeds_safetensors():
    f32 = struct.pack("<6f", 1, 2, 3, 4, 5, 6)
    put("safetensors", "f32", safetensors([("w", "F32", [2, 3], f32)]))
    put("safetensors", "many", safetensors([
        ("a.weight", "F32", [2, 2], struct.pack("<4f", 1, -1, 0.5, 2)),
        ("b.bias", "F16", [3], struct.pack("<3H", 0x3C00, 0xC000, 0x7C00)),
        ("c", "BF16", [1, 2], struct.pack("<2H", 0x3F80, 0x7FC0)),
        ("d", "I64", [2], struct.pack("<2q", -5, 1 << 40)),
        ("e", "I32", [1], struct.pack("<i", 7)),
        ("f", "U8", [3], b"\x00\x7f\xff"),
        ("g", "F64", [], struct.pack("<d", 3.25)),
    ], metadata={"format": "pt", "step": "10"}))
    put("safetensors", "empty-tensor", safetensors([("z", "F32", [0, 4], b"")]))
    put("safetensors", "no-tensors", safetensors([], metadata={}))
    put("safetensors", "unpadded", safetensors(
        [("u8", "U8", [1], b"\x01"), ("f", "F32", [1], struct.pack("<f", 1))], pad=False))
    put("safetensors", "truncated", safetensors([("w", "F32", [2, 3], f32)])[:-4])


def shard(ids, vocab, width=None, version=1, magic=b"LLMKTOKS", count=None):
    width = width or (2 if vocab <= 65536 else 4)
    head = magic + struct.pack("<IIQI", version, width, len(ids) if count is None else count, vocab)
    head += b"\0" * (64 - len(head))
    fmt = "<%d%s" % (len(ids), "H" if width == 2 else "I")
    return head + struct.pack(fmt, *ids)


def seeds_shards():
    put("token_shard", "u16", shard([0, 1, 2, 3, 255, 1000], 1024))
    put("token_shard", "u32", shard([0, 70000, 5], 100000))
    put("token_shard", "empty", shard([], 50))
    put("token_shard", "id-too-big", shard([0, 60], 50))
    put("token_shard", "count-too-big", shard([1, 2], 50, count=3))
    put("token_shard", "bad-version", shard([1], 50, version=2))


def seeds_configs():
    os.makedirs(os.path.join(HERE, "corpus", "config_json"), exist_ok=True)
    for name in sorted(os.listdir(os.path.join(ROOT, "configs"))):
        if name.endswith(".json"):
            shutil.copy(os.path.join(ROOT, "configs", name),
                        os.path.join(HERE, "corpus", "config_json", "seed-" + name))
    put("config_json", "model-dir-config.json", json.dumps(
        {"arch": "gpt", "n_layer": 1, "n_head": 1, "n_embd": 8, "block_size": 8, "vocab_size": 10}))
    put("config_json", "trainer-state.json", json.dumps(
        {"step": 3, "train": {"objective": "clm", "steps": 10, "batch_size": 2}}))
    put("config_json", "wrong-types.json", '{"model": {"arch": 5, "n_layer": "two"}, '
        '"train": {"steps": -1, "lr": "fast"}}')


def seeds_pairs():
    put("pairs_tsv", "simple.tsv", "Hello.\t안녕하세요.\nThank you.\t감사합니다.\n")
    put("pairs_tsv", "escapes.tsv", "a\\tb\\nc\\\\d\tx\\ry\n\nsecond\tline\r\n")
    put("pairs_tsv", "bad-escape.tsv", "bad \\q escape\ttarget\n")
    put("pairs_tsv", "no-tab.tsv", "just one side\n")
    put("pairs_tsv", "two-tabs.tsv", "a\tb\tc\n")


def seeds_chat():
    put("chat_transcript", "plain.txt", "User: hello\nAssistant: hi there\nUser: how are you?\n")
    put("chat_transcript", "preamble.txt",
        "You are a helpful model.\r\nBe brief.\n\nUser: 안녕\r\nAssistant:네\nmore\n\n  x\n")
    put("chat_transcript", "stops.txt",
        "Assistant: a\nUser:\nUser: b\n\nAssistant: c\nUsers: d\n User: e\n끝.")
    put("chat_transcript", "bad-utf8.txt", b"User: \xc3(\nAssistant: \xf0\x9f\x98\n")


def seeds_tokenizers(llmkit):
    text = ("The quick brown fox jumps over the lazy dog. 안녕하세요, 세계! 12345 "
            "naïve café \U0001F600\n") * 20
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "text.txt")
        with open(src, "w") as f:
            f.write(text)
        for name, args in [("bpe", ["--vocab-size", "300"]),
                           ("bpe-specials", ["--vocab-size", "290", "--special-tokens",
                                             "<|endoftext|>,<pad>,<mask>"]),
                           ("char", ["--model", "char", "--vocab-size", "100"]),
                           ("jamo", ["--vocab-size", "280", "--jamo"])]:
            out = os.path.join(tmp, name + ".json")
            subprocess.run([llmkit, "tokenizer", "train", "--input", src, "--out", out,
                            "--threads", "1"] + args, check=True, capture_output=True)
            with open(out, "rb") as f:
                put("tokenizer_json", name + ".json", f.read())
    put("tokenizer_json", "not-json.json", "{\"model\": {\"type\": \"BPE\", ")


def gguf_file(kvs, tensors, version=3, alignment=32):
    """kvs: list of (key, type, packed value bytes); tensors: (name, ne, ggml type, raw bytes)."""
    def s(x):
        x = x.encode() if isinstance(x, str) else x
        return struct.pack("<Q", len(x)) + x
    out = b"GGUF" + struct.pack("<IQQ", version, len(tensors), len(kvs))
    for key, t, val in kvs:
        out += s(key) + struct.pack("<I", t) + val
    offset, data = 0, b""
    for name, ne, t, raw in tensors:
        out += s(name) + struct.pack("<I", len(ne)) + struct.pack("<%dQ" % len(ne), *ne)
        out += struct.pack("<IQ", t, offset)
        pad = -len(raw) % alignment
        data += raw + b"\0" * pad
        offset += len(raw) + pad
    out += b"\0" * (-len(out) % alignment)
    return out + data


def seeds_gguf():
    s = lambda x: struct.pack("<Q", len(x.encode())) + x.encode()
    kvs = [("general.architecture", 8, s("llama")),
           ("llama.block_count", 4, struct.pack("<I", 2)),
           ("llama.rope.freq_base", 6, struct.pack("<f", 10000.0)),
           ("tokenizer.ggml.add_bos_token", 7, b"\x01"),
           ("tokenizer.ggml.tokens", 9, struct.pack("<IQ", 8, 3) + s("a") + s("\u0120b") + s("")),
           ("tokenizer.ggml.token_type", 9, struct.pack("<IQ3i", 5, 3, 1, 1, 3)),
           ("big", 10, struct.pack("<Q", 1 << 63)),
           ("f64", 12, struct.pack("<d", -0.5))]
    f32 = struct.pack("<6f", 1, 2, 3, 4, 5, 6)
    q4_0 = struct.pack("<H", 0x3C00) + bytes(range(16))
    q8_0 = struct.pack("<H", 0x3800) + bytes((k * 7) & 0xFF for k in range(32))
    q4_k = struct.pack("<HH", 0x3C00, 0x3800) + bytes(range(12)) + bytes(range(128))
    put("gguf", "tiny.gguf", gguf_file(kvs, [("w", [3, 2], 0, f32), ("q", [32], 2, q4_0),
                                              ("q8", [32, 1], 8, q8_0), ("k", [256], 12, q4_k)]))
    put("gguf", "v2.gguf", gguf_file(kvs[:2], [("w", [3, 2], 0, f32)], version=2))
    put("gguf", "align64.gguf", gguf_file([("general.alignment", 4, struct.pack("<I", 64))],
                                          [("w", [6], 0, f32), ("v", [2], 1, b"\0<\0\xbc")],
                                          alignment=64))
    put("gguf", "no-tensors.gguf", gguf_file(kvs, []))
    put("gguf", "version1.gguf", gguf_file([], [], version=1))
    put("gguf", "truncated.gguf", gguf_file(kvs, [("w", [3, 2], 0, f32)])[:-5])
    put("gguf", "q3k-unsupported.gguf", gguf_file([], [("q", [256], 11, bytes(110))]))


def seeds_hf_pipelines():
    """Small tokenizer.json files for each Hugging Face pipeline family (hf_pipeline.h)."""
    sp = "\u2581"
    def tok(i, content, special=True, lstrip=False, rstrip=False, single_word=False):
        return {"id": i, "content": content, "single_word": single_word, "lstrip": lstrip,
                "rstrip": rstrip, "normalized": not special, "special": special}
    added = [tok(0, "[UNK]"), tok(1, "[CLS]", lstrip=True), tok(2, "[SEP]", rstrip=True),
             tok(3, "hi", special=False, single_word=True)]
    template = {"type": "TemplateProcessing",
                "single": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}},
                           {"Sequence": {"id": "A", "type_id": 0}},
                           {"SpecialToken": {"id": "[SEP]", "type_id": 0}}],
                "pair": [{"Sequence": {"id": "A", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}}],
                "special_tokens": {"[CLS]": {"id": "[CLS]", "ids": [1], "tokens": ["[CLS]"]},
                                   "[SEP]": {"id": "[SEP]", "ids": [2], "tokens": ["[SEP]"]}}}
    words = ["[UNK]", "[CLS]", "[SEP]", "hi", "a", "b", "##a", "##b", "ab", "##ab", "\uc548", "!"]
    put("tokenizer_json", "hf-wordpiece.json", json.dumps({
        "added_tokens": added,
        "normalizer": {"type": "BertNormalizer", "clean_text": True, "handle_chinese_chars": True,
                       "lowercase": True, "strip_accents": None},
        "pre_tokenizer": {"type": "BertPreTokenizer"}, "post_processor": template,
        "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": True},
        "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
                  "max_input_chars_per_word": 8,
                  "vocab": {w: i for i, w in enumerate(words)}}}))
    pieces = ["[UNK]", "[CLS]", "[SEP]", "hi", sp, sp + "a", "a", "b", "ab", sp + "ab",
              "<0x41>", "<0xC3>", "<0xA9>"]
    put("tokenizer_json", "hf-unigram.json", json.dumps({
        "added_tokens": added,
        "normalizer": {"type": "Sequence", "normalizers": [
            {"type": "NFKC"}, {"type": "Replace", "pattern": {"Regex": " {2,}"}, "content": " "}]},
        "pre_tokenizer": {"type": "Metaspace", "replacement": sp, "prepend_scheme": "first",
                          "split": True},
        "post_processor": template,
        "decoder": {"type": "Metaspace", "replacement": sp, "prepend_scheme": "first"},
        "model": {"type": "Unigram", "unk_id": 0, "byte_fallback": True,
                  "vocab": [[p, -float(i)] for i, p in enumerate(pieces)]}}))
    put("tokenizer_json", "hf-spm-bpe.json", json.dumps({
        "added_tokens": added[:3],
        "normalizer": {"type": "Sequence", "normalizers": [
            {"type": "Prepend", "prepend": sp},
            {"type": "Replace", "pattern": {"String": " "}, "content": sp}]},
        "pre_tokenizer": None, "post_processor": template,
        "decoder": {"type": "Sequence", "decoders": [
            {"type": "Replace", "pattern": {"String": sp}, "content": " "},
            {"type": "ByteFallback"}, {"type": "Fuse"},
            {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
        "model": {"type": "BPE", "unk_token": "[UNK]", "byte_fallback": True, "fuse_unk": True,
                  "dropout": None, "vocab": {p: i for i, p in enumerate(pieces)},
                  "merges": [[sp, "a"], ["a", "b"], [sp, "ab"]]}}))
    put("tokenizer_json", "hf-split-digits.json", json.dumps({
        "added_tokens": added,
        "normalizer": {"type": "Sequence", "normalizers": [
            {"type": "Strip", "strip_left": True, "strip_right": False}, {"type": "Lowercase"}]},
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": "\\p{N}{1,3}"}, "behavior": "Isolated",
             "invert": False},
            {"type": "Digits", "individual_digits": False},
            {"type": "Split", "pattern": {"String": "b"}, "behavior": "MergedWithNext",
             "invert": True},
            {"type": "WhitespaceSplit"}, {"type": "Punctuation", "behavior": "Contiguous"}]},
        "post_processor": {"type": "BertProcessing", "sep": ["[SEP]", 2], "cls": ["[CLS]", 1]},
        "decoder": {"type": "BPEDecoder", "suffix": "</w>"},
        "model": {"type": "BPE", "unk_token": "[UNK]", "end_of_word_suffix": "</w>",
                  "continuing_subword_prefix": "##",
                  "vocab": {w: i for i, w in enumerate(
                      ["[UNK]", "[CLS]", "[SEP]", "hi", "a", "b</w>", "##b</w>", "ab</w>",
                       "1", "##2</w>", "!</w>"])},
                  "merges": ["a ##b</w>"]}}))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--llmkit", help="the llmkit binary (for the tokenizer.json seeds)")
    a = ap.parse_args()
    seeds_safetensors()
    seeds_shards()
    seeds_configs()
    seeds_pairs()
    seeds_chat()
    seeds_gguf()
    seeds_hf_pipelines()
    if a.llmkit:
        seeds_tokenizers(a.llmkit)


if __name__ == "__main__":
    main()
