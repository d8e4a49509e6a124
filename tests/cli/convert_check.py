"""Checks a directory written by `llmkit convert --format hf` from the SmolLM2 GGUF with
transformers itself (tests/cli/test_cli_convert.cpp runs it):
  AutoModelForCausalLM.from_pretrained(DIR) and AutoTokenizer.from_pretrained(DIR) load it; every
  weight equals the GGUF dequantised and un-permuted by the gguf package in Python
  (tests/models/llama_hf_reference.py), exactly, so its logits are those the parity test
  (tests/models/test_llama_hf_parity.cpp) checks ours against; its tokenizer's ids equal `llmkit tokenizer encode` on the same tokenizer.json and transformers'
  own GGUF tokenizer.
usage: convert_check.py DIR GGUF LLMKIT_BIN     prints one line per check; exit 1 on a mismatch
"""
import os
import subprocess
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "models"))
import llama_hf_reference as ref  # noqa: E402

TEXTS = ["The capital of France is", "한국어 문장도 토큰으로 나눕니다.", "for i in range(10):\n\tprint(i)  # 🙂"]


def main(d, gguf_path, llmkit):
    from transformers import AutoModelForCausalLM, AutoTokenizer
    torch.set_num_threads(2)
    model = AutoModelForCausalLM.from_pretrained(d, torch_dtype=torch.float32).eval()
    tok = AutoTokenizer.from_pretrained(d)
    gtok = AutoTokenizer.from_pretrained(os.path.dirname(gguf_path),
                                         gguf_file=os.path.basename(gguf_path))
    _, want = ref.gguf_llama(gguf_path)
    have = model.state_dict()
    worst, missing = 0.0, [n for n in want if n not in have]
    for n, w in want.items():
        if n in have:
            worst = max(worst, float((have[n] - w).abs().max()))
    ok = worst == 0.0 and not missing
    print(f"weights vs gguf-py dequantised + un-permuted: max abs diff {worst}, missing {missing}")
    for text in TEXTS:
        ids = tok(text, add_special_tokens=False).input_ids
        gids = gtok(text, add_special_tokens=False).input_ids
        ours = subprocess.run([llmkit, "tokenizer", "encode", "--tokenizer",
                               os.path.join(d, "tokenizer.json"), "--text", text],
                              capture_output=True, text=True, check=True).stdout.split()
        ours = [int(x) for x in ours]
        same = ids == gids == ours
        ok &= same
        print(f"tokens {'equal' if same else 'DIFFER'}: {ids} {gids} {ours} ({text[:20]!r})")
    with torch.no_grad():
        logits = model(torch.tensor([tok(TEXTS[0], add_special_tokens=False).input_ids])).logits
    ok &= bool(torch.isfinite(logits).all())
    print("next token after the first text:", repr(tok.decode([int(logits[0, -1].argmax())])))
    print("OK" if ok else "MISMATCH")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
