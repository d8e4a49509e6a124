#!/usr/bin/env python3
"""The markdown tables of bench/quant_vs_llamacpp/run.sh from its records.jsonl: speed of llmkit
and llama.cpp per model and weight type with the ratios (llmkit / llama.cpp: tokens/s, higher is
better for llmkit; load seconds and RSS, lower is better for llmkit), decode as a fraction of the
measured read bandwidth, and prefill against PyTorch on the f32 files.
Usage: table.py RECORDS.jsonl BW_BEFORE_JSON BW_AFTER_JSON LOAD_BEFORE LOAD_AFTER MACHINE PP TG"""
import json
import sys

MIB = 1 << 20


def fmt_rate(mean, sd):
    return f"{mean:.1f} ± {sd:.1f}"


def ratio(a, b):
    return f"{a / b:.2f}" if a and b else "-"


def main():
    path, bw_before, bw_after, load_before, load_after, machine, pp, tg = sys.argv[1:9]
    rows = [json.loads(l) for l in open(path) if l.strip()]
    bw_b, bw_a = json.loads(bw_before), json.loads(bw_after)
    # The machine's capability: the better of the two measurements (each the best of its passes).
    bw = max(bw_b["read_gbps"], bw_a["read_gbps"])
    peer = next((r["peer"] for r in rows if r.get("peer")), None)
    ours_key_pp, ours_key_tg = f"pp{pp}", f"tg{tg}"
    threads = next((r["ours"]["threads"] for r in rows if r.get("ours")), "?")
    quantizers = sorted({r["quantizer"] for r in rows if r["quantizer"] != "none"})

    print(f"### llmkit vs llama.cpp: pp{pp} / tg{tg}, {threads} threads\n")
    print(f"Machine: {machine}; load average {load_before} before, {load_after} after.")
    if peer:
        print(f"Peer: {peer['peer']} (built from its PyPI sdist), ggml {peer['ggml']}; "
              f"`{peer['system_info']}`; its defaults otherwise (f16 KV cache, no flash "
              f"attention), n_batch = n_ubatch = {pp}.")
    print(f"Files quantised by: {', '.join(quantizers) or '-'} (the f32 files: common.sh).")
    print(f"Read bandwidth (bench_bandwidth, {bw_b['threads']} threads, 1 GiB sum, best pass): "
          f"{bw_b['read_gbps']:.1f} GB/s before, {bw_a['read_gbps']:.1f} GB/s after; "
          f"fractions below use {bw:.1f} GB/s.")
    reps = next((r["ours"]["repetitions"] for r in rows if r.get("ours")), "?")
    print(f"Tokens/s as mean ± sd over {reps} runs after a warm-up. Ratios are llmkit / "
          f"llama.cpp. Decode % of bandwidth = weight bytes read per token x tg / bandwidth "
          f"(llmkit: Engine::weight_bytes; llama.cpp: llama_model_size). RSS: llmkit's whole "
          f"process; llama.cpp's minus the Python interpreter's before the model was loaded.\n")
    print(f"| model | type | file MiB | pp{pp} llmkit | pp{pp} llama.cpp | pp ratio | "
          f"tg{tg} llmkit | tg{tg} llama.cpp | tg ratio | decode % of BW, llmkit / llama.cpp | "
          f"load s, llmkit / llama.cpp | peak RSS MiB, llmkit / llama.cpp |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        o, p = r.get("ours") or {}, r.get("peer") or {}
        opp, ptp = o.get(ours_key_pp), p.get("pp")
        otg, ptg = o.get(ours_key_tg), p.get("tg")
        frac_o = f"{100 * o['weights_bytes'] * otg / (bw * 1e9):.0f}%" if otg else "-"
        frac_p = f"{100 * p['model_size_bytes'] * ptg / (bw * 1e9):.0f}%" if ptg else "-"
        load = (f"{o['load_s']:.3f} / {p['load_s']:.3f}" if o and p else "-")
        rss = (f"{o['peak_rss_bytes'] / MIB:.0f} / "
               f"{(p['peak_rss_bytes'] - p['baseline_rss_bytes']) / MIB:.0f}" if o and p else "-")
        print(f"| {r['set']} | {r['type']} | {r['file_bytes'] / MIB:.1f} | "
              f"{fmt_rate(opp, o[ours_key_pp + '_sd']) if opp else 'failed'} | "
              f"{fmt_rate(ptp, p['pp_sd']) if ptp else 'failed'} | {ratio(opp, ptp)} | "
              f"{fmt_rate(otg, o[ours_key_tg + '_sd']) if otg else 'failed'} | "
              f"{fmt_rate(ptg, p['tg_sd']) if ptg else 'failed'} | {ratio(otg, ptg)} | "
              f"{frac_o} / {frac_p} | {load} | {rss} |")
    print("\nllmkit's engine on each file (`Engine::describe`):\n")
    for r in rows:
        if r.get("ours"):
            print(f"- {r['set']} {r['type']}: {r['ours']['describe']}")

    torch_rows = [r for r in rows if r.get("torch1") or r.get("torch2")]
    if torch_rows:
        print(f"\n### Prefill (pp{pp}) vs PyTorch, f32, {threads} threads\n")
        print("PyTorch: the same llama shapes written in plain PyTorch (torch_prefill.py), random "
              "weights, logits of the last position only; 1.13 = Debian's (no fused attention, "
              "OpenBLAS SkylakeX, tcmalloc), 2.x = .venv-bench's (F.scaled_dot_product_attention, "
              "tcmalloc).\n")
        names = []
        for key in ("torch1", "torch2"):
            t = next((r[key] for r in torch_rows if r.get(key)), None)
            if t:
                names.append((key, f"{t['peer']} ({t['attention']})"))
        print("| model | llmkit | " + " | ".join(f"{n} | ratio" for _, n in names) + " |")
        print("|---|---:|" + "---:|---:|" * len(names))
        for r in torch_rows:
            o = r.get("ours") or {}
            opp = o.get(ours_key_pp)
            cells = []
            for key, _ in names:
                t = r.get(key) or {}
                cells.append(f"{fmt_rate(t['pp'], t['pp_sd']) if t else '-'} | "
                             f"{ratio(opp, t.get('pp'))}")
            print(f"| {r['set']} | {fmt_rate(opp, o[ours_key_pp + '_sd']) if opp else 'failed'} | "
                  + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
