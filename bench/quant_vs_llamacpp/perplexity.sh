#!/usr/bin/env bash
# The quality cost of each weight type: `llmkit perplexity` of SmolLM2-135M-Instruct at f32 / f16 /
# q8_0 / q6_k / q4_k / q4_1 / q4_0 on a fixed English text and a Korean one, like llama.cpp's
# quantisation tables, with llama.cpp's perplexity of the same file by the same method
# (llamacpp_perplexity.py) beside it. Texts: the Debian FAQ 11.1 in English and in Korean, as
# plain text from the Debian packages debian-faq and debian-faq-ko (scripts/install-deps.sh
# --bench). The model files are run.sh's (common.sh); "f32" is the Q4_1 download dequantised, so
# every row measures re-quantisation of those values, not of the original bf16 weights (and q4_1
# gives back exactly those values). llmkit evaluates a chunk as one prefill, whose products run
# f32 activations against the dequantised weights (kernels/cpu/qmatmul.h, M >= 16), so its figures
# show the weights' rounding alone; llama.cpp's quantised kernels also round the activations to
# 8 bits, which adds a little.
# Writes $QV_OUT/perplexity.jsonl and $QV_OUT/perplexity.md and prints the table.
# Usage: bench/quant_vs_llamacpp/perplexity.sh [BUILD_DIR]
#   env: THREADS=2 CONTEXT=512 CHUNKS=20 (0: whole text)
#        PPL_TYPES="f32 f16 q8_0 q6_k q4_k q4_1 q4_0"
#        PEER=1 (0: llmkit only) QUANTIZER VENV
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${1:-build}
CONTEXT=${CONTEXT:-512}
CHUNKS=${CHUNKS:-20}
PPL_TYPES=${PPL_TYPES:-f32 f16 q8_0 q6_k q4_k q4_1 q4_0}
PEER=${PEER:-1}
source bench/quant_vs_llamacpp/common.sh
"$llmkit" perplexity --help >/dev/null 2>&1 || die "$llmkit has no perplexity command"
faq=/usr/share/doc/debian/FAQ
mkdir -p "$QV_OUT/texts"
for lang in en ko; do
  [[ -f $faq/debian-faq.$lang.txt.gz ]] ||
    die "$faq/debian-faq.$lang.txt.gz missing (apt-get install debian-faq debian-faq-ko)"
  zcat "$faq/debian-faq.$lang.txt.gz" >"$QV_OUT/texts/debian-faq.$lang.txt"
done
json_or_null() { local l; l=$(tail -n 1) && [[ $l == \{* ]] && echo "$l" || echo null; }
rec=$QV_OUT/perplexity.jsonl
: >"$rec"
load_before=$(loadavg)
for type in $PPL_TYPES; do
  f=$(file_of smollm2 "$type") || { echo "no smollm2 $type file; skipped" >&2; continue; }
  for lang in en ko; do
    text=$QV_OUT/texts/debian-faq.$lang.txt
    echo "== $type $lang ($(loadavg))" >&2
    ours=$("$llmkit" perplexity --model "$f" --data "$text" --context "$CONTEXT" \
      --chunks "$CHUNKS" --threads "$THREADS" 2>/dev/null | json_or_null) || ours=null
    peer=null
    if [[ $PEER == 1 ]]; then
      peer=$("$py" $here/llamacpp_perplexity.py "$f" "$text" "$CONTEXT" "$CHUNKS" "$THREADS" |
        json_or_null) || peer=null
    fi
    echo "{\"type\": \"$type\", \"lang\": \"$lang\", \"file_bytes\": $(stat -c %s "$f"),"\
      "\"quantizer\": \"$([[ $type == f32 ]] && echo none || echo "$QUANTIZER")\","\
      "\"ours\": $ours, \"peer\": $peer}" >>"$rec"
  done
done
ppl_table=$QV_OUT/perplexity.md
/usr/bin/python3 - "$rec" "$load_before" "$(loadavg)" "$CONTEXT" <<'PY' | tee "$ppl_table"
import json
import sys

rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
by = {(r["type"], r["lang"]): r for r in rows}
types = list(dict.fromkeys(r["type"] for r in rows))
get = lambda t, l, side, k: ((by.get((t, l)) or {}).get(side) or {}).get(k)
q = sorted({r["quantizer"] for r in rows if r["quantizer"] != "none"})
en = next((r for r in rows if r["lang"] == "en" and r.get("ours")), None)
ko = next((r for r in rows if r["lang"] == "ko" and r.get("ours")), None)
print(f"### SmolLM2-135M-Instruct perplexity per weight type (context {sys.argv[4]})\n")
print("Text: the Debian FAQ 11.1 (debian-faq / debian-faq-ko), "
      + (f"{en['ours']['tokens_scored']} tokens scored in English, " if en else "")
      + (f"{ko['ours']['tokens_scored']} in Korean, " if ko else "")
      + f"llama.cpp's method (second half of each chunk). Quantised by {', '.join(q) or '-'} from "
      f"the f32 copy of the Q4_1 download. Load average {sys.argv[2]} before, {sys.argv[3]} after. "
      "Δ = perplexity / f32's perplexity - 1 (llmkit). llmkit's prefill multiplies f32 "
      "activations by the dequantised weights, so its column shows the weights' rounding alone; "
      "llama.cpp's quantised kernels also round the activations to 8 bits.\n")
print("| type | file MiB | English, llmkit | English, llama.cpp | Δ English | Korean, llmkit | "
      "Korean, llama.cpp | Δ Korean |")
print("|---|---:|---:|---:|---:|---:|---:|---:|")
fmt = lambda v: f"{v:.4f}" if v is not None else "-"
for t in types:
    cells = []
    for lang in ("en", "ko"):
        o, p, base = get(t, lang, "ours", "perplexity"), get(t, lang, "peer", "perplexity"), \
            get("f32", lang, "ours", "perplexity")
        d = f"{100 * (o / base - 1):+.2f}%" if o and base else "-"
        cells += [fmt(o), fmt(p), d]
    size = next(r["file_bytes"] for r in rows if r["type"] == t) / (1 << 20)
    print(f"| {t} | {size:.1f} | " + " | ".join(cells) + " |")
PY
