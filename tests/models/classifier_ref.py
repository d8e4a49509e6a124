"""transformers reference for the task heads (tests/models/test_classifier.cpp).

  classifier_ref.py OUT   random tiny BertForSequenceClassification (3 labels, and 1 label:
      regression) and LlamaForSequenceClassification (3 labels) saved by save_pretrained
      (safetensors) in OUT/bert_cls, OUT/bert_reg, OUT/llama_cls, with their logits and losses on
      fixed right-padded inputs in OUT/ref.safetensors (ids, attention_mask, labels, targets,
      <name>.logits, <name>.loss).
Run with the project venv's python (transformers 4.46, torch).
"""
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402
from safetensors.torch import save_file  # noqa: E402
from transformers import (BertConfig, BertForSequenceClassification, LlamaConfig,  # noqa: E402
                          LlamaForSequenceClassification)

torch.manual_seed(0)
out = sys.argv[1]
labels = {0: "neg", 1: "neu", 2: "pos"}
bert_kw = dict(vocab_size=40, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
               intermediate_size=24, max_position_embeddings=16, hidden_dropout_prob=0.0,
               attention_probs_dropout_prob=0.0, pad_token_id=0)
models = {
    "bert_cls": BertForSequenceClassification(BertConfig(
        **bert_kw, num_labels=3, id2label=labels, label2id={v: k for k, v in labels.items()})),
    "bert_reg": BertForSequenceClassification(BertConfig(**bert_kw, num_labels=1)),
    "llama_cls": LlamaForSequenceClassification(LlamaConfig(
        vocab_size=40, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=16,
        pad_token_id=0, num_labels=3, id2label=labels,
        label2id={v: k for k, v in labels.items()})),
}
# Real tokens in 1..39 (0 is padding), right-padded.
lens = [7, 4, 6, 2]
ids = torch.zeros(4, 7, dtype=torch.long)
mask = torch.zeros(4, 7, dtype=torch.long)
g = torch.Generator().manual_seed(1)
for b, n in enumerate(lens):
    ids[b, :n] = torch.randint(1, 40, (n,), generator=g)
    mask[b, :n] = 1
ids[:, 0] = 2  # a [CLS]-like first token
lab = torch.tensor([0, 2, 1, 2])
tgt = torch.tensor([0.5, -1.0, 2.0, 0.25])
ref = {"ids": ids.int(), "attention_mask": mask.int(), "labels": lab.int(), "targets": tgt}
for name, m in models.items():
    for p in m.parameters():  # non-trivial heads and biases
        with torch.no_grad():
            p.add_(torch.randn_like(p) * 0.02)
    m.eval()
    if name == "bert_reg":
        m.config.problem_type = "regression"
    o = m(input_ids=ids, attention_mask=mask, labels=tgt if name == "bert_reg" else lab)
    ref[name + ".logits"] = o.logits.detach().float().contiguous()
    ref[name + ".loss"] = o.loss.detach().float().reshape(1)
    m.save_pretrained(os.path.join(out, name), safe_serialization=True)
save_file(ref, os.path.join(out, "ref.safetensors"))
