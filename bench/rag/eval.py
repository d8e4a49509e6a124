#!/usr/bin/python3
"""Evaluates llmkit's retrieval and RAG on held-out questions (bench/rag/questions.jsonl).

Retrieval: for every in-base question, `llmkit index search --json --mode M --k K` for M in bm25,
dense, hybrid; recall@1/5/10 and MRR@10, where a hit is relevant when its file is the question's
file and its text (whitespace collapsed) contains the question's evidence phrase; also the looser
"right file" recall. RAG: `llmkit rag --json` for every question, with retrieval and with
--no-retrieval: answer contains a fact, cites a relevant source, declines, hallucinates (an
out-of-base question answered instead of declined), per language. Calibration of --min-cosine:
the best source's cosine for in-base vs out-of-base questions and the answerable-vs-not accuracy
at thresholds 0.20..0.60. Index diagnostics (read-only SQLite): which evidence phrases no chunk
of their file contains (an extraction or chunking loss, not a ranking one) and chunks without
headings per source.

Not here: building the index (scripts/make-kb.sh), judging answers beyond fact substrings (a
correct answer phrased without any listed fact counts as wrong), any model-graded scoring.
Python standard library only; run with /usr/bin/python3. Progress goes to stderr, the markdown
report to stdout, everything per question to --out.
"""
import argparse
import json
import os
import re
import sqlite3
import statistics
import subprocess
import sys
import time

MODES = ("bm25", "dense", "hybrid")
NO_ANSWER = "i don't know from these sources"
# Looser refusals, reported separately: the model without sources is never told the exact phrase.
LOOSE_DECLINES = ("i don't know", "i do not know", "i'm not sure", "i am not sure", "i cannot answer",
                  "i can't answer", "not able to answer", "no information", "모르", "알 수 없")
THRESHOLDS = [round(0.20 + 0.05 * i, 2) for i in range(9)]  # 0.20 .. 0.60


def log(*parts):
    print(*parts, file=sys.stderr, flush=True)


def collapse(text):
    return re.sub(r"\s+", " ", text or "").strip()


def normalize_answer(text):
    # Curly quotes to straight ones so facts like "don't" match either spelling.
    text = text.replace("\u2019", "'").replace("\u2018", "'").replace("\u201c", '"')
    return collapse(text.replace("\u201d", '"')).lower()


def contains_fact(answer, facts):
    """True when the answer holds any one fact. An ASCII word fact ("yes", "hold") must match as a
    whole word (else "no" would match "know"); other facts (commands, Korean words that take
    particles such as 허가가) match as substrings."""
    a = normalize_answer(answer)
    for f in facts:
        f = f.lower()
        if re.fullmatch(r"[a-z0-9 ]+", f):
            if re.search(r"\b" + re.escape(f) + r"\b", a):
                return True
        elif f in a:
            return True
    return False


def declines(answer):
    return NO_ANSWER in normalize_answer(answer)


def declines_loosely(answer):
    a = normalize_answer(answer)
    return any(d in a for d in LOOSE_DECLINES)


def group_of(q):
    """dfaq/en, pyfaq/en, dfaq/ko, oob/en, oob/ko: the id's prefix and the language."""
    return q["id"].split("-")[0] + "/" + q["lang"]


def load_questions(path):
    out = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            q = json.loads(line)
            for key in ("id", "lang", "question", "file", "evidence", "facts", "in_base"):
                if key not in q:
                    raise SystemExit(f"eval: {path}:{n}: question has no '{key}'")
            out.append(q)
    return out


def take_per_group(questions, limit):
    if limit is None:
        return questions
    seen = {}
    out = []
    for q in questions:
        g = group_of(q)
        if seen.get(g, 0) < limit:
            seen[g] = seen.get(g, 0) + 1
            out.append(q)
    return out


def run_json(argv, timeout):
    """Runs a command; returns (stdout, error or None, seconds). Never raises."""
    t0 = time.time()
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                           encoding="utf-8", errors="replace")
    except subprocess.TimeoutExpired:
        return "", f"timed out after {timeout}s", time.time() - t0
    except OSError as e:
        return "", str(e), time.time() - t0
    dt = time.time() - t0
    if p.returncode != 0:
        tail = collapse(p.stderr)[-300:]
        return p.stdout, f"exit {p.returncode}: {tail}", dt
    return p.stdout, None, dt


def is_relevant(hit, q):
    return (os.path.basename(hit.get("path", "")) == q["file"]
            and q["evidence"] in collapse(hit.get("text", "")))


def right_file(hit, q):
    return os.path.basename(hit.get("path", "")) == q["file"]


def first_rank(flags):
    for i, f in enumerate(flags, 1):
        if f:
            return i
    return None


# ---------------------------------------------------------------------------------------------
# Retrieval


def run_retrieval(args, questions):
    """Every question (out-of-base ones too: their hybrid cosines feed the calibration) in every
    mode. Returns {id: {mode: record}}."""
    results = {}
    t0 = time.time()
    for i, q in enumerate(questions, 1):
        per_mode = {}
        for mode in MODES:
            out, err, dt = run_json([args.bin, "index", "search", "--db", args.db, "--json",
                                     "--mode", mode, "--k", str(args.k), "--query", q["question"]],
                                    args.timeout)
            hits = []
            if err is None:
                try:
                    hits = [json.loads(l) for l in out.splitlines() if l.strip()]
                except json.JSONDecodeError as e:
                    err = f"bad JSON from index search: {e}"
            rec = {"seconds": round(dt, 2), "error": err,
                   "top": [{"file": os.path.basename(h.get("path", "")),
                            "heading": h.get("heading", ""),
                            "cosine": h.get("cosine"),
                            "relevant": q["in_base"] and is_relevant(h, q)} for h in hits]}
            if q["in_base"]:
                rec["rank"] = first_rank([is_relevant(h, q) for h in hits])
                rec["file_rank"] = first_rank([right_file(h, q) for h in hits])
            per_mode[mode] = rec
        results[q["id"]] = per_mode
        errs = [m for m in MODES if per_mode[m]["error"]]
        log(f"retrieval {i}/{len(questions)} {q['id']}: "
            + " ".join(f"{m}={per_mode[m].get('rank', '-')}" for m in MODES)
            + (f"  ERROR in {errs}: {per_mode[errs[0]]['error']}" if errs else ""))
    log(f"retrieval: {time.time() - t0:.0f}s")
    return results


def retrieval_metrics(questions, results, k):
    rows = []
    groups = sorted({group_of(q) for q in questions if q["in_base"]}) + ["all in-base"]
    for mode in MODES:
        for g in groups:
            qs = [q for q in questions if q["in_base"] and q["id"] in results
                  and (g == "all in-base" or group_of(q) == g)]
            if not qs:
                continue
            recs = [results[q["id"]][mode] for q in qs]
            ranks = [r.get("rank") for r in recs]
            franks = [r.get("file_rank") for r in recs]

            def at(rs, n):
                return sum(1 for r in rs if r is not None and r <= n) / len(rs)

            rows.append({"mode": mode, "group": g, "n": len(qs),
                         "errors": sum(1 for r in recs if r["error"]),
                         "r@1": at(ranks, 1), "r@5": at(ranks, 5), "r@10": at(ranks, min(10, k)),
                         "mrr@10": sum(1 / r for r in ranks if r is not None and r <= 10) / len(qs),
                         "file_r@1": at(franks, 1), "file_r@10": at(franks, min(10, k))})
    return rows


# ---------------------------------------------------------------------------------------------
# RAG


def run_rag(args, questions):
    """Two runs per question: with retrieval (--k rag_k) and --no-retrieval. Returns
    {id: {"retrieval": record, "no_retrieval": record}}."""
    results = {}
    t0 = time.time()
    for i, q in enumerate(questions, 1):
        per_run = {}
        for run in ("retrieval", "no_retrieval"):
            argv = [args.bin, "rag", "--json", "--model", args.model, "--question", q["question"]]
            if run == "retrieval":
                argv += ["--db", args.db, "--k", str(args.rag_k)]
                if args.min_cosine is not None:
                    argv += ["--min-cosine", str(args.min_cosine)]
            else:
                argv += ["--no-retrieval"]
            if args.max_new_tokens is not None:
                argv += ["--max-new-tokens", str(args.max_new_tokens)]
            out, err, dt = run_json(argv, args.timeout)
            j = {}
            if err is None:
                try:
                    j = json.loads(out.strip().splitlines()[-1])
                except (json.JSONDecodeError, IndexError) as e:
                    err = f"bad JSON from rag: {e}"
            answer = j.get("answer", "")
            sources = j.get("sources", [])
            cited = set(j.get("citations", []))
            attributed = set(j.get("attributed", []))
            relevant = [s["number"] for s in sources if q["in_base"] and is_relevant(s, q)]
            rec = {"seconds": round(dt, 2), "error": err, "answer": answer,
                   "answerable": j.get("answerable"), "best_cosine": j.get("best_cosine"),
                   "citations": sorted(cited), "attributed": sorted(attributed),
                   "relevant_sources": relevant,
                   "sources": [{"number": s.get("number"), "file": os.path.basename(s.get("path", "")),
                                "heading": s.get("heading", ""), "cosine": s.get("cosine")}
                               for s in sources],
                   "declines": declines(answer), "declines_loosely": declines_loosely(answer)}
            if q["in_base"]:
                rec["fact"] = contains_fact(answer, q["facts"])
                rec["cites_relevant"] = bool(cited & set(relevant))
                rec["attributes_relevant"] = bool(attributed & set(relevant))
            per_run[run] = rec
        results[q["id"]] = per_run
        r, n = per_run["retrieval"], per_run["no_retrieval"]
        log(f"rag {i}/{len(questions)} {q['id']} ({r['seconds']:.0f}s+{n['seconds']:.0f}s): "
            f"fact={r.get('fact', '-')}/{n.get('fact', '-')} cites_rel={r.get('cites_relevant', '-')} "
            f"declines={r['declines']}/{n['declines']} cos={r['best_cosine']}"
            + (f"  ERROR {r['error'] or n['error']}" if r["error"] or n["error"] else ""))
    log(f"rag: {time.time() - t0:.0f}s")
    return results


def rag_metrics(questions, results):
    rows = []
    for run in ("retrieval", "no_retrieval"):
        for lang in ("en", "ko", "all"):
            qs = [q for q in questions if q["id"] in results and (lang == "all" or q["lang"] == lang)]
            if not qs:
                continue
            inb = [results[q["id"]][run] for q in qs if q["in_base"]]
            oob = [results[q["id"]][run] for q in qs if not q["in_base"]]

            def frac(recs, key):
                return sum(1 for r in recs if r.get(key)) / len(recs) if recs else None

            rows.append({"run": run, "lang": lang, "n_in": len(inb), "n_oob": len(oob),
                         "errors": sum(1 for r in inb + oob if r["error"]),
                         "fact": frac(inb, "fact"), "cites_relevant": frac(inb, "cites_relevant"),
                         "attributes_relevant": frac(inb, "attributes_relevant"),
                         "cites_any": (sum(1 for r in inb if r["citations"]) / len(inb)) if inb else None,
                         "declines_in": frac(inb, "declines"),
                         "declines_oob": frac(oob, "declines"),
                         "hallucinates": (sum(1 for r in oob if not r["declines"]) / len(oob)) if oob else None,
                         "declines_loosely_oob": frac(oob, "declines_loosely"),
                         "mean_seconds": statistics.mean(r["seconds"] for r in inb + oob)})
    return rows


# ---------------------------------------------------------------------------------------------
# Calibration of --min-cosine


def best_cosines(questions, retrieval, rag, rag_k):
    """The best source's cosine per question: from `rag --json` when it ran (exactly what the
    threshold sees), else the largest cosine among the top rag_k hybrid search hits (the same
    search rag makes)."""
    out = {}
    for q in questions:
        c = None
        r = rag.get(q["id"], {}).get("retrieval")
        if r and r["error"] is None and r["best_cosine"] is not None:
            c = r["best_cosine"]
        elif q["id"] in retrieval and retrieval[q["id"]]["hybrid"]["error"] is None:
            cs = [h["cosine"] for h in retrieval[q["id"]]["hybrid"]["top"][:rag_k]
                  if h["cosine"] is not None]
            c = max(cs) if cs else None
        if c is not None:
            out[q["id"]] = c
    return out


def calibration(questions, cos):
    def pct(xs, p):
        xs = sorted(xs)
        return xs[min(len(xs) - 1, int(round(p * (len(xs) - 1))))]

    dist = []
    for name, pred in (("in-base en", lambda q: q["in_base"] and q["lang"] == "en"),
                       ("in-base ko", lambda q: q["in_base"] and q["lang"] == "ko"),
                       ("out-of-base en", lambda q: not q["in_base"] and q["lang"] == "en"),
                       ("out-of-base ko", lambda q: not q["in_base"] and q["lang"] == "ko")):
        xs = [cos[q["id"]] for q in questions if pred(q) and q["id"] in cos]
        if xs:
            dist.append({"group": name, "n": len(xs), "min": min(xs), "p10": pct(xs, 0.1),
                         "p25": pct(xs, 0.25), "median": pct(xs, 0.5), "p75": pct(xs, 0.75),
                         "p90": pct(xs, 0.9), "max": max(xs)})
    sweep = []
    scored = [q for q in questions if q["id"] in cos]
    for t in THRESHOLDS:
        row = {"threshold": t}
        for lang in ("all", "en", "ko"):
            qs = [q for q in scored if lang == "all" or q["lang"] == lang]
            if not qs:
                continue
            ok = sum(1 for q in qs if (cos[q["id"]] >= t) == q["in_base"])
            row[f"accuracy_{lang}"] = ok / len(qs)
        inb = [q for q in scored if q["in_base"]]
        oob = [q for q in scored if not q["in_base"]]
        row["in_base_kept"] = sum(1 for q in inb if cos[q["id"]] >= t) / len(inb) if inb else None
        row["oob_declined"] = sum(1 for q in oob if cos[q["id"]] < t) / len(oob) if oob else None
        sweep.append(row)
    return dist, sweep


# ---------------------------------------------------------------------------------------------
# Index diagnostics (read-only; the schema is llmkit/retrieval/store.cpp's)


def index_diagnostics(db_dir, questions):
    try:
        con = sqlite3.connect(f"file:{os.path.join(db_dir, 'llmkit.db')}?mode=ro", uri=True)
        rows = con.execute("SELECT d.path, d.source, c.heading, c.text FROM chunks c "
                           "JOIN documents d ON d.id = c.doc").fetchall()
        con.close()
    except sqlite3.Error as e:
        return {"error": str(e)}
    by_file = {}
    by_source = {}
    for path, source, heading, text in rows:
        by_file.setdefault(os.path.basename(path), []).append(collapse(text))
        s = by_source.setdefault(source, {"chunks": 0, "no_heading": 0, "chars": 0})
        s["chunks"] += 1
        s["no_heading"] += 0 if heading else 1
        s["chars"] += len(text)
    unreachable = []
    for q in questions:
        if not q["in_base"]:
            continue
        texts = by_file.get(q["file"])
        if texts is None:
            unreachable.append({"id": q["id"], "why": f"no document named {q['file']}"})
        elif not any(q["evidence"] in t for t in texts):
            unreachable.append({"id": q["id"], "why": "no chunk of the file holds the evidence",
                                "evidence": q["evidence"]})
    return {"chunks": len(rows), "sources": by_source, "unreachable": unreachable}


# ---------------------------------------------------------------------------------------------
# Report


def f3(x):
    return "-" if x is None else f"{x:.3f}"


def pc(x):
    return "-" if x is None else f"{100 * x:.0f}%"


def markdown(args, questions, ret_rows, rag_rows, dist, sweep, diag, retrieval, rag):
    out = []
    groups = {}
    for q in questions:
        groups[group_of(q)] = groups.get(group_of(q), 0) + 1
    out.append(f"Questions: {len(questions)} ("
               + ", ".join(f"{g} {n}" for g, n in sorted(groups.items())) + ")\n")
    if diag:
        out.append("### Index\n")
        if "error" in diag:
            out.append(f"index diagnostics failed: {diag['error']}\n")
        else:
            out.append(f"{diag['chunks']} chunks\n")
            out.append("| source | chunks | without heading | mean chars |")
            out.append("|---|---:|---:|---:|")
            for s, v in sorted(diag["sources"].items()):
                out.append(f"| {s} | {v['chunks']} | {pc(v['no_heading'] / v['chunks'])} | "
                           f"{v['chars'] / v['chunks']:.0f} |")
            if diag["unreachable"]:
                out.append("\nEvidence held by no chunk of its file (caps recall; extraction or "
                           "chunking): " + ", ".join(u["id"] for u in diag["unreachable"]))
            out.append("")
    if ret_rows:
        out.append(f"### Retrieval (index search --k {args.k})\n")
        out.append("| mode | group | n | R@1 | R@5 | R@10 | MRR@10 | file R@1 | file R@10 | errors |")
        out.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        for r in ret_rows:
            out.append(f"| {r['mode']} | {r['group']} | {r['n']} | {f3(r['r@1'])} | {f3(r['r@5'])} | "
                       f"{f3(r['r@10'])} | {f3(r['mrr@10'])} | {f3(r['file_r@1'])} | "
                       f"{f3(r['file_r@10'])} | {r['errors']} |")
        misses = [q for q in questions if q["in_base"] and q["id"] in retrieval
                  and retrieval[q["id"]]["hybrid"].get("rank") is None]
        if misses:
            out.append("\nHybrid misses (no relevant hit in the top k; top hit shown):\n")
            for q in misses:
                top = retrieval[q["id"]]["hybrid"]["top"]
                t = f"{top[0]['file']} § {top[0]['heading']}" if top else "(no hits)"
                out.append(f"- {q['id']} ({q['file']}): {t}")
        out.append("")
    if rag_rows:
        out.append(f"### RAG (rag --k {args.rag_k}; model {os.path.basename(args.model)})\n")
        out.append("| run | lang | in-base | fact | cites relevant | cites any | attributed relevant "
                   "| declines (in-base) | out-of-base | declines | hallucinates | declines (loose) "
                   "| s/answer | errors |")
        out.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for r in rag_rows:
            out.append(f"| {r['run']} | {r['lang']} | {r['n_in']} | {pc(r['fact'])} | "
                       f"{pc(r['cites_relevant'])} | {pc(r['cites_any'])} | "
                       f"{pc(r['attributes_relevant'])} | {pc(r['declines_in'])} | "
                       f"{r['n_oob']} | {pc(r['declines_oob'])} | {pc(r['hallucinates'])} | "
                       f"{pc(r['declines_loosely_oob'])} | {r['mean_seconds']:.1f} | {r['errors']} |")
        out.append("")
    if dist:
        src = "rag --json" if rag else "hybrid search top " + str(args.rag_k)
        out.append(f"### Calibration of --min-cosine (best source cosine, from {src})\n")
        out.append("| group | n | min | p10 | p25 | median | p75 | p90 | max |")
        out.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        for d in dist:
            out.append(f"| {d['group']} | {d['n']} | " + " | ".join(
                f3(d[k]) for k in ("min", "p10", "p25", "median", "p75", "p90", "max")) + " |")
        out.append("\n| threshold | accuracy | accuracy en | accuracy ko | in-base kept | "
                   "out-of-base declined |")
        out.append("|---:|---:|---:|---:|---:|---:|")
        for s in sweep:
            out.append(f"| {s['threshold']:.2f} | {pc(s.get('accuracy_all'))} | "
                       f"{pc(s.get('accuracy_en'))} | {pc(s.get('accuracy_ko'))} | "
                       f"{pc(s['in_base_kept'])} | {pc(s['oob_declined'])} |")
        out.append("")
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--db", required=True, help="the index directory (scripts/make-kb.sh)")
    ap.add_argument("--model", help="instruction-tuned GGUF for rag (needed unless --only retrieval)")
    ap.add_argument("--bin", default="build/llmkit")
    ap.add_argument("--questions", default="bench/rag/questions.jsonl")
    ap.add_argument("--k", type=int, default=10, help="search depth for retrieval metrics")
    ap.add_argument("--rag-k", type=int, default=4, help="sources given to rag")
    ap.add_argument("--min-cosine", type=float, help="passed to rag (default: rag's own)")
    ap.add_argument("--max-new-tokens", type=int, help="passed to rag (default: rag's own)")
    ap.add_argument("--limit", type=int, help="at most N questions per group (dfaq/en, pyfaq/en, "
                    "dfaq/ko, oob/en, oob/ko)")
    ap.add_argument("--only", choices=("retrieval", "rag"))
    ap.add_argument("--timeout", type=int, default=600, help="seconds per command")
    ap.add_argument("--out", default="rag-eval.json", help="per-question results and metrics")
    args = ap.parse_args()
    if args.only != "retrieval" and not args.model:
        ap.error("--model is needed for the rag part (or give --only retrieval)")
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

    questions = take_per_group(load_questions(args.questions), args.limit)
    log(f"eval: {len(questions)} questions")
    diag = index_diagnostics(args.db, questions)
    retrieval = run_retrieval(args, questions) if args.only != "rag" else {}
    rag = run_rag(args, questions) if args.only != "retrieval" else {}
    ret_rows = retrieval_metrics(questions, retrieval, args.k) if retrieval else []
    rag_rows = rag_metrics(questions, rag) if rag else []
    cos = best_cosines(questions, retrieval, rag, args.rag_k)
    dist, sweep = calibration(questions, cos) if cos else ([], [])

    print(markdown(args, questions, ret_rows, rag_rows, dist, sweep, diag, retrieval, rag))
    report = {"args": vars(args), "index": diag, "retrieval_metrics": ret_rows,
              "rag_metrics": rag_rows, "cosine_distribution": dist, "threshold_sweep": sweep,
              "questions": [dict(q, retrieval=retrieval.get(q["id"]), rag=rag.get(q["id"]),
                                 best_cosine=cos.get(q["id"])) for q in questions]}
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(report, f, ensure_ascii=False, indent=1)
    log(f"eval: wrote {args.out}")


if __name__ == "__main__":
    main()
