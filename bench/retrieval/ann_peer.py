#!/usr/bin/env python3
"""The peer of ann_bench: FAISS's own IndexHNSWFlat from the faiss-cpu wheel (PyPI, pinned in
scripts/requirements-bench.txt), same measurements and same JSON lines, so that run_ann.sh can
put the two side by side. Inner product on unit vectors, one OpenMP thread for the build and
the queries, queries one at a time (each search() call from Python also pays the wrapper's
call overhead, a few microseconds). Recall@k is against faiss.IndexFlatIP (exact).

Usage: ann_peer.py --base B.fvecs --query Q.fvecs [--m 32 --ef-construction 128 --ef 16,32,...]
"""
import argparse
import json
import resource
import time

import faiss
import numpy as np


def read_fvecs(path, limit=0):
    raw = np.fromfile(path, dtype=np.int32)
    if raw.size == 0:
        raise SystemExit(f"{path}: no vectors")
    dim = int(raw[0])
    if dim <= 0 or raw.size % (dim + 1) != 0:
        raise SystemExit(f"{path}: not an .fvecs file of dim {dim}")
    rows = raw.reshape(-1, dim + 1)
    if not (rows[:, 0] == dim).all():
        raise SystemExit(f"{path}: records of different dims")
    if limit > 0:
        rows = rows[:limit]
    return np.ascontiguousarray(rows[:, 1:].view(np.float32))


def normalise(x):
    # In float64, then rounded to float32, as ann_bench does (its sum's order differs: an ulp).
    x64 = x.astype(np.float64)
    norms = np.sqrt((x64 * x64).sum(axis=1, keepdims=True))
    norms[norms == 0] = 1
    return np.ascontiguousarray((x64 / norms).astype(np.float32))


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def json_line(**fields):
    print("JSON " + json.dumps(dict(impl="faiss-cpu " + faiss.__version__, **fields),
                               sort_keys=True), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--base", required=True)
    ap.add_argument("--query", required=True)
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--m", type=int, default=32)
    ap.add_argument("--ef-construction", type=int, default=128)
    ap.add_argument("--ef", default="16,32,64,128,256")
    ap.add_argument("-k", type=int, default=10)
    ap.add_argument("--name", default="")
    args = ap.parse_args()
    faiss.omp_set_num_threads(1)
    name = args.name or args.base

    base = normalise(read_fvecs(args.base, args.limit))
    queries = normalise(read_fvecs(args.query))
    if base.shape[1] != queries.shape[1]:
        raise SystemExit(f"base dim {base.shape[1]}, query dim {queries.shape[1]}")
    n, dim = base.shape
    nq, k = queries.shape[0], args.k
    rss_data = peak_rss_mb()

    index = faiss.IndexHNSWFlat(dim, args.m, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = args.ef_construction
    t0 = time.perf_counter()
    index.add(base)
    build_s = time.perf_counter() - t0
    rss_build = peak_rss_mb()
    index_mb = faiss.serialize_index(index).nbytes / 1048576.0

    exact = faiss.IndexFlatIP(dim)
    exact.add(base)
    t0 = time.perf_counter()
    truth = np.vstack([exact.search(queries[i:i + 1], k)[1] for i in range(nq)])
    exact_qps = nq / (time.perf_counter() - t0)

    print(f"faiss-cpu {faiss.__version__} (PyPI wheel, HNSW M {args.m}, efC "
          f"{args.ef_construction}), {name}: {n} x {dim}, {nq} queries, k {k}")
    print(f"build {build_s:.2f} s (1 thread), peak RSS {rss_build:.0f} MB ({rss_data:.0f} MB "
          f"before the build), index {index_mb:.1f} MB; exact search {exact_qps:.1f} queries/s")
    json_line(what="build", dataset=name, n=n, dim=dim, queries=nq, m=args.m,
              ef_construction=args.ef_construction, build_s=build_s, build_threads=1,
              peak_rss_mb=rss_build, rss_before_build_mb=rss_data, index_mb=index_mb,
              exact_qps=exact_qps)

    print(f"{'efSearch':>8} {'recall@' + str(k):>10} {'queries/s':>12} {'us/query':>12}")
    for ef in [int(e) for e in args.ef.split(",")]:
        index.hnsw.efSearch = max(ef, k)  # as AnnIndex: ef is raised to k
        found = np.empty((nq, k), dtype=np.int64)
        t0 = time.perf_counter()
        for i in range(nq):
            found[i] = index.search(queries[i:i + 1], k)[1][0]
        s = time.perf_counter() - t0
        recall = np.mean([len(set(found[i]) & set(truth[i])) / k for i in range(nq)])
        print(f"{ef:>8} {recall:>10.4f} {nq / s:>12.1f} {1e6 * s / nq:>12.1f}", flush=True)
        json_line(what="search", dataset=name, k=k, ef_search=ef, recall=float(recall),
                  qps=nq / s)


if __name__ == "__main__":
    main()
