"""transformers reference for the Hugging Face GPT-2 test (tests/models/test_hf_gpt2.cpp).

  hf_gpt2_ref.py tiny OUT    random tiny GPT2LMHeadModels saved by save_pretrained (safetensors):
      OUT/gpt2 (tied lm_head, the usual case) and OUT/gpt2_untied (tie_word_embeddings false),
      with their logits on fixed ids in OUT/tiny_ref.safetensors ("ids", "gpt2.logits",
      "gpt2_untied.logits").
  hf_gpt2_ref.py check OUT   loads OUT/ours_gpt2 and OUT/ours_gpt2_untied (llmkit's export) with
      GPT2LMHeadModel.from_pretrained, requires no missing or unexpected tensors, and compares
      the logits with tiny_ref (relative error printed; exit 1 above 1e-5).
Run with the project venv's python (transformers 4.46, torch).
"""
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402
from safetensors.torch import load_file, save_file  # noqa: E402

torch.set_num_threads(1)
NAMES = ("gpt2", "gpt2_untied")


def config(tied):
    from transformers import GPT2Config
    return GPT2Config(vocab_size=97, n_positions=24, n_embd=32, n_layer=2, n_head=4,
                      resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
                      tie_word_embeddings=tied)


def ids():
    return torch.tensor([[5, 17, 33, 45, 8, 3, 61, 72, 96, 0, 11, 12],
                         [50, 51, 52, 40, 3, 7, 7, 7, 1, 2, 90, 91]])


def logits(model):
    with torch.no_grad():
        return model(input_ids=ids()).logits.float().contiguous()


def tiny(out):
    from transformers import GPT2LMHeadModel

    g = torch.Generator().manual_seed(3)
    ref = {"ids": ids().to(torch.int32)}
    for name in NAMES:
        model = GPT2LMHeadModel(config(name == "gpt2")).eval()
        with torch.no_grad():  # every parameter random, norms around 1
            for pname, p in model.named_parameters():
                noise = torch.randn(p.shape, generator=g) * 0.1
                p.copy_(1.0 + noise if ".ln_" in pname and "weight" in pname else noise)
        model.save_pretrained(os.path.join(out, name), safe_serialization=True)
        ref[name + ".logits"] = logits(model)
    save_file(ref, os.path.join(out, "tiny_ref.safetensors"))


def check(out):
    from transformers import GPT2LMHeadModel

    ref = load_file(os.path.join(out, "tiny_ref.safetensors"))
    worst = 0.0
    for name in NAMES:
        model, info = GPT2LMHeadModel.from_pretrained(os.path.join(out, "ours_" + name),
                                                      output_loading_info=True)
        bad = {k: v for k, v in info.items() if v}
        if bad:
            print(f"ours_{name}: loading problems {bad}")
            return 1
        got, want = logits(model.eval()), ref[name + ".logits"]
        e = ((got - want).abs().max() / want.abs().max()).item()
        worst = max(worst, e)
        print(f"  transformers on llmkit's export: {name:12s} logits rel err {e:.2e}")
    return 0 if worst <= 1e-5 else 1


if __name__ == "__main__":
    if sys.argv[1] == "tiny":
        tiny(sys.argv[2])
        sys.exit(0)
    sys.exit(check(sys.argv[2]))
