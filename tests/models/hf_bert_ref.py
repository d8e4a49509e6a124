"""transformers / sentence-transformers references for the Hugging Face BERT tests
(tests/models/test_hf_bert.cpp, tests/models/test_hf_bert_minilm.cpp, tests/infer/test_embed.cpp).

  hf_bert_ref.py minilm MODEL_DIR OUT   all-MiniLM-L6-v2 on the sentences below: OUT/texts.json,
      OUT/minilm_ref.safetensors with ids / attention_mask (i32 [N, T], the tokenizer's,
      truncated to max_seq_length 256 and padded), hidden (BertModel's last hidden states
      [N, T, C] of the padded batch) and st (SentenceTransformer(MODEL_DIR).encode: [N, C]).
  hf_bert_ref.py tiny OUT               random tiny BertModel and BertForPreTraining saved by
      save_pretrained (safetensors) in OUT/bert_model, OUT/bert_pt, with their outputs on
      fixed inputs in OUT/tiny_ref.safetensors.
  hf_bert_ref.py check OUT              loads OUT/ours_bert_model and OUT/ours_bert_pt (written by
      llmkit) with from_pretrained, requires no missing or unexpected tensors, and compares
      their outputs with tiny_ref (max relative error printed; exit 1 above 1e-5).
  hf_bert_ref.py bench MODEL_DIR N      sentence-transformers' encode speed (sentences/s) on N
      sentences, printed as the last line.
Run with the project venv's python (transformers 4.46, sentence-transformers 3.3, torch).
"""
import json
import os
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402
from safetensors.torch import load_file, save_file  # noqa: E402

torch.set_num_threads(max(1, int(os.environ.get("LLMKIT_THREADS", "2"))))

LONG_EN = ("The quick brown fox jumps over the lazy dog while the farmer, who had been watching "
           "from the porch since early morning, wondered aloud whether the weather would hold "
           "until the harvest was finally brought in from the northern fields. ")
LONG_KO = ("오늘 아침 일찍 일어나서 창문을 열었더니 차가운 바람이 방 안으로 들어왔고, 나는 따뜻한 "
           "차를 한 잔 마시면서 하루 동안 해야 할 일들을 천천히 정리해 보았다. ")

SENTENCES = [
    "This is an example sentence.",
    "Each sentence is converted to a vector.",
    "A man is eating food.",
    "A man is eating a piece of bread.",
    "The girl is carrying a baby.",
    "A man is riding a horse.",
    "Two men pushed carts through the woods.",
    "The new movie is awesome!",
    "Hello",
    "",
    "Numbers like 3.14159, dates like 2026-12-02 and e-mail: someone@example.com.",
    "naïve café résumé — ÜBER straße",
    "안녕하세요, 만나서 반갑습니다.",
    "오늘 날씨가 정말 좋네요.",
    "한국어 문장도 임베딩으로 바꿀 수 있을까요?",
    "서울은 대한민국의 수도이다.",
    "나는 어제 도서관에서 책을 세 권 빌렸다.",
    "Mixed 한국어 and English in one sentence 😀.",
    LONG_EN * 8,   # ~330 word pieces: cut at 256
    LONG_KO * 12,  # far past 256 word pieces
    "   leading and trailing spaces   ",
]


def minilm(model_dir, out):
    from sentence_transformers import SentenceTransformer
    from transformers import AutoTokenizer, BertModel

    with open(os.path.join(out, "texts.json"), "w", encoding="utf-8") as f:
        json.dump(SENTENCES, f, ensure_ascii=False)
    st = SentenceTransformer(model_dir, device="cpu")
    max_len = st.max_seq_length
    assert max_len == 256, max_len
    emb = st.encode(SENTENCES, batch_size=8, convert_to_tensor=True)
    tok = AutoTokenizer.from_pretrained(model_dir)
    # What sentence-transformers' Transformer module does (it strips each text first).
    batch = tok([s.strip() for s in SENTENCES], padding=True, truncation="longest_first",
                max_length=max_len, return_tensors="pt")
    model = BertModel.from_pretrained(model_dir).eval()
    with torch.no_grad():
        hidden = model(input_ids=batch["input_ids"],
                       attention_mask=batch["attention_mask"]).last_hidden_state
    save_file({"ids": batch["input_ids"].to(torch.int32).contiguous(),
               "attention_mask": batch["attention_mask"].to(torch.int32).contiguous(),
               "hidden": hidden.float().contiguous(),
               "st": emb.float().contiguous()},
              os.path.join(out, "minilm_ref.safetensors"))
    lens = batch["attention_mask"].sum(1).tolist()
    print(f"minilm reference: {len(SENTENCES)} texts, token counts {lens}")


def randomize(model, seed):
    """Every parameter random (LayerNorm weights around 1), so a swapped or dropped tensor
    shows in the outputs."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=g) * 0.1
            p.copy_(1.0 + noise if "LayerNorm.weight" in name else noise)
    return model


def tiny_config():
    from transformers import BertConfig
    return BertConfig(vocab_size=101, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                      intermediate_size=48, max_position_embeddings=24, type_vocab_size=2,
                      hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, pad_token_id=0)


def tiny_inputs():
    ids = torch.tensor([[2, 17, 33, 45, 8, 3, 61, 72, 99, 3],
                        [2, 50, 51, 52, 3, 40, 3, 0, 0, 0]])
    types = torch.tensor([[0, 0, 0, 0, 0, 0, 1, 1, 1, 1],
                          [0, 0, 0, 0, 0, 1, 1, 0, 0, 0]])
    mask = (ids != 0).long()
    return ids, types, mask


def tiny_outputs(bert_model, bert_pt):
    ids, types, mask = tiny_inputs()
    with torch.no_grad():
        m = bert_model(input_ids=ids, token_type_ids=types, attention_mask=mask)
        p = bert_pt(input_ids=ids, token_type_ids=types, attention_mask=mask)
    return {"model.hidden": m.last_hidden_state, "model.pooled": m.pooler_output,
            "pt.hidden": p.hidden_states[-1] if p.hidden_states else None,
            "pt.mlm": p.prediction_logits, "pt.nsp": p.seq_relationship_logits}


def tiny(out):
    from transformers import BertForPreTraining, BertModel

    torch.manual_seed(0)
    bert_model = randomize(BertModel(tiny_config()), 1).eval()
    bert_pt = randomize(BertForPreTraining(tiny_config()), 2).eval()
    bert_pt.tie_weights()
    bert_model.save_pretrained(os.path.join(out, "bert_model"), safe_serialization=True)
    bert_pt.save_pretrained(os.path.join(out, "bert_pt"), safe_serialization=True)
    ids, types, mask = tiny_inputs()
    ref = {k: v.float().contiguous() for k, v in tiny_outputs(bert_model, bert_pt).items()
           if v is not None}
    ref.update({"ids": ids.to(torch.int32), "token_type_ids": types.to(torch.int32),
                "attention_mask": mask.to(torch.int32)})
    save_file(ref, os.path.join(out, "tiny_ref.safetensors"))


def rel(a, b):
    return ((a - b).abs().max() / b.abs().max().clamp_min(1e-30)).item()


def check(out):
    from transformers import BertForPreTraining, BertModel

    ref = load_file(os.path.join(out, "tiny_ref.safetensors"))
    worst = 0.0
    loaded = {}
    for name, cls in (("ours_bert_model", BertModel), ("ours_bert_pt", BertForPreTraining)):
        model, info = cls.from_pretrained(os.path.join(out, name), output_loading_info=True)
        bad = {k: v for k, v in info.items() if v}
        if bad:
            print(f"{name}: loading problems {bad}")
            return 1
        loaded[name] = model.eval()
    got = tiny_outputs(loaded["ours_bert_model"], loaded["ours_bert_pt"])
    for k in ("model.hidden", "model.pooled", "pt.mlm", "pt.nsp"):
        e = rel(got[k].float(), ref[k])
        worst = max(worst, e)
        print(f"  transformers on llmkit's export: {k:14s} rel err {e:.2e}")
    return 0 if worst <= 1e-5 else 1


def bench(model_dir, n):
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(model_dir, device="cpu")
    texts = [SENTENCES[i % 18] for i in range(n)]  # the short ones
    st.encode(texts[:32])
    t = time.perf_counter()
    st.encode(texts, batch_size=32)
    dt = time.perf_counter() - t
    print(json.dumps({"sentences": n, "seconds": dt, "sentences_per_s": n / dt,
                      "torch_threads": torch.get_num_threads()}))


def main():
    mode = sys.argv[1]
    if mode == "minilm":
        minilm(sys.argv[2], sys.argv[3])
    elif mode == "tiny":
        tiny(sys.argv[2])
    elif mode == "check":
        return check(sys.argv[2])
    elif mode == "bench":
        bench(sys.argv[2], int(sys.argv[3]))
    else:
        print(f"unknown mode {mode}")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
