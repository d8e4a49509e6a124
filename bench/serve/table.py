"""The tables of bench/serve/run.sh from what it wrote under DIR (bench/out/serve): load.py's
JSON per server, side by side, with llmkit's batching factor (aggregate tok/s at C over C = 1)
and the ratio llmkit / llama.cpp; and the wrk runs (wrk-*.txt) summarised.
Usage: table.py DIR"""
import json
import os
import re
import sys


def load(path):
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def fmt(x, nd=1):
    return "-" if x is None else f"{x:,.{nd}f}"


def load_tables(d):
    runs = [r for r in (load(os.path.join(d, n)) for n in
                        ("llmkit.json", "llmkit-64.json", "llamacpp.json")) if r]
    print(f"Streaming chat, max_tokens {runs[0]['max_tokens']}, temperature 0, "
          f"{runs[0]['seconds_per_point']:.0f} s per point; tok/s = content chunks received "
          f"per second of the window (one token each)\n")
    print("| server | C | tok/s | tok/s 2nd half | TTFT p50 ms | TTFT p99 ms | per-token p50 ms | per-token p99 ms "
          "| requests done | errors | open at end (no token yet) | RSS peak MiB |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|")
    for r in runs:
        for p in r["points"]:
            errs = ", ".join(f"{k}: {v}" for k, v in sorted(p["errors"].items())) or "0"
            print(f"| {r['label']} | {p['concurrency']} | {fmt(p['tok_s'])} | "
                  f"{fmt(p.get('tok_s_2nd_half'))} | {fmt(p['ttft_p50_ms'], 0)} | {fmt(p['ttft_p99_ms'], 0)} | "
                  f"{fmt(p['tpot_p50_ms'])} | {fmt(p['tpot_p99_ms'])} | {p['requests_ok']} | "
                  f"{errs} | {p['open_at_end']} ({p['open_without_first_token']}) | "
                  f"{p['rss_peak_mib']:.0f} |")
    print()
    by = {r["label"]: {p["concurrency"]: p for p in r["points"]} for r in runs}
    lk = next((v for k, v in by.items() if k.startswith("llmkit") and 1 in v), None)
    lk64 = next((v for k, v in by.items() if k == "llmkit --slots 64"), None)
    lc = by.get("llama_cpp.server")
    if lk:
        base = lk[1]["tok_s"]
        for key, what in (("tok_s", "whole window"), ("tok_s_2nd_half", "second half")):
            base = lk[1].get(key)
            if not base:
                continue
            parts = [f"C={c}: {lk[c][key] / base:.2f}x" for c in sorted(lk) if c > 1]
            if lk64 and 64 in lk64:
                parts.append(f"C=64 with --slots 64: {lk64[64][key] / base:.2f}x")
            print(f"llmkit batching factor (tok/s at C / at C=1, {what}): " + ", ".join(parts))
        if lc and 1 in lc and lc[1]["tok_s"]:
            b = lc[1]["tok_s"]
            print("llama_cpp.server, the same ratio: " +
                  ", ".join(f"C={c}: {lc[c]['tok_s'] / b:.2f}x" for c in sorted(lc) if c > 1))
        if lc:
            parts = [f"C={c}: {lk[c]['tok_s'] / lc[c]['tok_s']:.2f}x" for c in sorted(lk)
                     if c in lc and lc[c]["tok_s"]]
            if lk64 and 64 in lk64 and 64 in lc and lc[64]["tok_s"]:
                parts.append(f"C=64 with --slots 64: {lk64[64]['tok_s'] / lc[64]['tok_s']:.2f}x")
            print("tok/s llmkit / llama_cpp.server: " + ", ".join(parts))
        for r in runs:
            p = [q for q in r["points"] if q.get("completed_usage_tokens")]
            if p:
                u = sum(q["completed_usage_tokens"] for q in p)
                c = sum(q["completed_chunk_tokens"] for q in p)
                print(f"{r['label']}: completed requests' usage.completion_tokens {u}, "
                      f"content chunks {c}")
        print()


def wrk_tables(d):
    files = sorted(f for f in os.listdir(d) if f.startswith("wrk-") and f.endswith(".txt"))
    if not files:
        return
    print("| wrk run | connections | requests | req/s | latency p50 | latency p99 | "
          "non-2xx | socket errors | statuses |")
    print("|---|---:|---:|---:|---:|---:|---:|---|---|")
    for f in files:
        text = open(os.path.join(d, f)).read()
        for block in text.split("== wrk ")[1:]:
            c = re.search(r"-c(\d+)", block).group(1)
            g = lambda pat, default="-": (re.search(pat, block) or [None, default])[1]
            reqs = g(r"(\d+) requests in")
            rps = g(r"Requests/sec:\s+([\d.]+)")
            p50 = g(r"\n\s+50%\s+(\S+)")
            p99 = g(r"\n\s+99%\s+(\S+)")
            non2xx = g(r"Non-2xx or 3xx responses: (\d+)", "0")
            sock = g(r"Socket errors: ([^\n]+)", "0")
            st = g(r"statuses: ([^\n]*)", "")
            print(f"| {f[4:-4]} | {c} | {reqs} | {rps} | {p50} | {p99} | {non2xx} | {sock} | "
                  f"{st} |")
    print()


def main():
    d = sys.argv[1]
    load_tables(d)
    wrk_tables(d)


if __name__ == "__main__":
    main()
