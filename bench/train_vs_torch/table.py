"""Formats bench/train_vs_torch results. `table.py row NAME JSON` prints a table row;
`table.py ratio OURS_JSON TORCH_JSON` prints the llmkit / PyTorch ratios, naming the peer
(its version and attention path, from its JSON)."""
import json
import sys

if sys.argv[1] == "row":
    d = json.loads(sys.argv[3])
    print("| %-36s | %9.0f | %9.1f | %8.0f | %9.0f | %8.1f |" % (
        sys.argv[2], d["tokens_per_sec"], d["ms_per_step"], d["peak_rss_mb"],
        d["prefill_tokens_per_sec"], d["decode_tokens_per_sec"]))
else:
    o, b = json.loads(sys.argv[2]), json.loads(sys.argv[3])
    print("ratio llmkit / %s (%s attention): training %.2fx, peak memory %.2fx, prefill %.2fx, "
          "decode %.2fx" % (b["impl"], b.get("attention", "explicit"),
                            o["tokens_per_sec"] / b["tokens_per_sec"],
                            o["peak_rss_mb"] / b["peak_rss_mb"],
                            o["prefill_tokens_per_sec"] / b["prefill_tokens_per_sec"],
                            o["decode_tokens_per_sec"] / b["decode_tokens_per_sec"]))
