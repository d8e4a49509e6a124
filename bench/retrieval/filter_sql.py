#!/usr/bin/python3
"""Times the SQL a vector-index search runs before its ANN search, on a large synthetic index:
the chunk ids that pass a filter (Store::filter) and the chunk count (Store::chunk_count), in
the form llmkit uses and in the form it replaced (one "ORDER BY c.id" join that SQLite answers
by walking the chunks table, text and vector pages included).

  filter_sql.py DIR [--chunks 116000] [--docs 2000] [--dim 384] [--repeat 5]

DIR is an empty index made by `llmkit index create --db DIR --model EMBEDDER` (so the schema is
llmkit's own); the script fills it with synthetic documents (half lang=en, half ko) and chunks of
550 characters and a random vector each, then prints the median milliseconds of each query.
Python standard library only; run with /usr/bin/python3. Times include Python's fetching of the
rows, the same for both forms.
"""
import argparse
import os
import sqlite3
import statistics
import sys
import time

QUERIES = [
    ("all chunk ids, old: chunks joined to documents, ORDER BY c.id",
     "SELECT c.id FROM chunks c JOIN documents d ON d.id = c.doc ORDER BY c.id", True),
    ("all chunk ids, now: documents, then chunks(doc), sorted after",
     "SELECT c.id FROM documents d CROSS JOIN chunks c ON c.doc = d.id", False),
    ("lang=ko ids, old", "SELECT c.id FROM chunks c JOIN documents d ON d.id = c.doc "
     "WHERE d.lang = 'ko' ORDER BY c.id", True),
    ("lang=ko ids, now", "SELECT c.id FROM documents d CROSS JOIN chunks c ON c.doc = d.id "
     "WHERE d.lang = 'ko'", False),
    ("chunk count, now (covering index)", "SELECT count(*) FROM chunks", True),
]


def fill(con, n_chunks, n_docs, dim):
    if con.execute("SELECT count(*) FROM chunks").fetchone()[0] > 0:
        raise SystemExit("filter_sql: the index is not empty (give a fresh `index create` DIR)")
    per_doc = -(-n_chunks // n_docs)
    blob = os.urandom(4 * dim)
    text = "x" * 550
    with con:
        for d in range(n_docs):
            cur = con.execute(
                "INSERT INTO documents(key, path, source, title, lang, date, format, hash) "
                "VALUES (?, ?, 'synthetic', 't', ?, '2026-01-01', 'text', 'h')",
                (f"doc{d}", f"/synthetic/doc{d}.txt", "en" if d % 2 else "ko"))
            doc = cur.lastrowid
            rows = min(per_doc, n_chunks - d * per_doc)
            con.executemany(
                "INSERT INTO chunks(doc, seq, heading, first_line, last_line, begin_byte, end_byte, "
                "text, vector) VALUES (?, ?, '', 1, 1, 0, 550, ?, ?)",
                ((doc, i, text, blob) for i in range(max(rows, 0))))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("db", help="an empty index directory (llmkit index create)")
    ap.add_argument("--chunks", type=int, default=116000)
    ap.add_argument("--docs", type=int, default=2000)
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    path = os.path.join(args.db, "llmkit.db")
    if not os.path.exists(path):
        raise SystemExit(f"filter_sql: {path} missing (llmkit index create --db {args.db} ...)")
    con = sqlite3.connect(path)
    fill(con, args.chunks, args.docs, args.dim)
    print(f"{args.chunks} chunks in {args.docs} documents, SQLite {sqlite3.sqlite_version}",
          file=sys.stderr)
    print("| query | ms (median) | rows | plan |")
    print("|---|---:|---:|---|")
    for name, sql, ordered in QUERIES:
        con.execute(sql).fetchall()  # warm the page cache
        times = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            rows = [r[0] for r in con.execute(sql)]
            if not ordered:
                rows.sort()
            times.append((time.perf_counter() - t0) * 1000)
        plan = "; ".join(r[-1] for r in con.execute("EXPLAIN QUERY PLAN " + sql))
        print(f"| {name} | {statistics.median(times):.2f} | {len(rows)} | {plan} |")


if __name__ == "__main__":
    main()
