#!/usr/bin/env python3
"""Benchmark peers of ssp's BM25 index: bm25s (method="lucene") and rank_bm25.

Usage: bench_search_peers.py build CORPUS OUTDIR
       bench_search_peers.py query OUTDIR QUERIES SSP_HITS [RANK_BM25_CORPUS_LIMIT]
The query phase runs in a fresh process so that its resident memory holds the
loaded index, not the corpus. Prints one JSON object per engine.
"""
import json, os, resource, sys, time


def rss_kb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1


def read_corpus(path):
    texts = []
    with open(path) as f:
        for line in f:
            texts.append(json.loads(line)["contents"])
    return texts


def build(corpus, outdir):
    import bm25s
    texts = read_corpus(corpus)
    t = time.time()
    tokens = bm25s.tokenize(texts, stopwords="en", show_progress=False)
    model = bm25s.BM25(method="lucene", k1=0.9, b=0.4)
    model.index(tokens, show_progress=False)
    secs = time.time() - t
    model.save(os.path.join(outdir, "bm25s_idx"))
    print(json.dumps({"engine": "bm25s", "phase": "build", "docs": len(texts), "build_s": secs,
                      "docs_per_s": len(texts) / secs, "peak_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))


def overlap(a, b):
    tot = 0.0
    for x, y in zip(a, b):
        if y:
            tot += len(set(x) & set(y)) / len(y)
    return tot / max(1, len(a))


def query(outdir, qfile, hitsfile, rank_limit):
    import bm25s
    import numpy as np
    queries = [l.strip() for l in open(qfile) if l.strip()]
    ours = [[int(x) for x in l.split()] for l in open(hitsfile)]
    base = rss_kb()
    model = bm25s.BM25.load(os.path.join(outdir, "bm25s_idx"))
    qtok = [q.lower().split() for q in queries]  # query words are already tokens
    # Warm-up, then one thread and all threads.
    model.retrieve(qtok[:50], k=10, n_threads=1, show_progress=False)
    t = time.time()
    docs, _ = model.retrieve(qtok, k=10, n_threads=1, show_progress=False)
    single = time.time() - t
    t = time.time()
    model.retrieve(qtok, k=10, n_threads=os.cpu_count(), show_progress=False)
    multi = time.time() - t
    theirs = [list(map(int, r)) for r in docs]
    index_bytes = sum(os.path.getsize(os.path.join(dp, f)) for dp, _, fs in os.walk(os.path.join(outdir, "bm25s_idx")) for f in fs)
    print(json.dumps({"engine": "bm25s", "phase": "query", "queries": len(queries),
                      "qps_single": len(queries) / single, "qps_all_cores": len(queries) / multi,
                      "overlap_at_10_with_ssp": overlap(ours, theirs), "rss_kb": rss_kb(), "rss_before_load_kb": base,
                      "index_bytes": index_bytes}))
    if rank_limit:
        from rank_bm25 import BM25Okapi
        n = int(rank_limit)
        texts = []
        with open(os.environ["BENCH_CORPUS"]) as f:
            for i, line in enumerate(f):
                if i >= n:
                    break
                texts.append(json.loads(line)["contents"])
        stop = {"the", "of", "and", "a", "to", "in", "is", "it", "that", "this"}
        tok = [[w for w in t.lower().replace('"', ' ').split() if w not in stop] for t in texts]
        base = rss_kb()
        t = time.time()
        rb = BM25Okapi(tok, k1=0.9, b=0.4)
        build_s = time.time() - t
        rss_index = rss_kb() - base
        nq = min(100, len(queries))
        t = time.time()
        for q in qtok[:nq]:
            s = rb.get_scores(q)
            np.argpartition(-s, 10)[:10]
        secs = time.time() - t
        print(json.dumps({"engine": "rank_bm25", "phase": "query", "docs": n, "queries": nq, "build_s": build_s,
                          "qps_single": nq / secs, "index_rss_delta_kb": rss_index}))


if __name__ == "__main__":
    if sys.argv[1] == "build":
        build(sys.argv[2], sys.argv[3])
    else:
        query(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5] if len(sys.argv) > 5 else None)
