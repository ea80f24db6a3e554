#!/usr/bin/env python3
"""FAISS peer of ssp's vector index (scripts/bench_vector.sh runs it).

Usage: bench_vector_peer.py flat-build  DATA OUT
       bench_vector_peer.py flat-query  DATA OUT SINGLE_QUERIES
       bench_vector_peer.py hnsw-build  DATA OUT M EF_CONSTRUCTION
       bench_vector_peer.py hnsw-query  DATA OUT EF,EF,...
DATA holds base.f32 and queries.f32 (raw float32, written by benchvector
gen) and info.json. Builds write their index to OUT and the queries run in a
fresh process, so that peak RSS is the loaded index plus the interpreter.
flat-query also writes DATA/truth.i32: the exact float32 top-10 that every
recall figure is measured against. Prints one JSON object.
"""
import json, os, sys, time

import faiss
import numpy as np


def hwm_kb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return -1


def load(data, name):
    info = json.load(open(os.path.join(data, "info.json")))
    a = np.fromfile(os.path.join(data, name), dtype=np.float32)
    return a.reshape(-1, info["dim"])


def emit(obj):
    obj.update(engine="faiss", faiss_version=faiss.__version__, threads=faiss.omp_get_max_threads())
    print(json.dumps(obj))


def add_in_chunks(index, data):
    # Streams base.f32 through a memory map so that only the index holds a
    # full copy of the vectors.
    info = json.load(open(os.path.join(data, "info.json")))
    base = np.memmap(os.path.join(data, "base.f32"), dtype=np.float32, mode="r").reshape(-1, info["dim"])
    for lo in range(0, base.shape[0], 50000):
        index.add(np.ascontiguousarray(base[lo:lo + 50000]))


def flat_build(data, out):
    info = json.load(open(os.path.join(data, "info.json")))
    t = time.time()
    index = faiss.IndexFlatIP(info["dim"])
    add_in_chunks(index, data)
    secs = time.time() - t
    faiss.write_index(index, os.path.join(out, "faiss-flat.index"))
    emit({"phase": "build", "index": "IndexFlatIP", "dtype": "float32", "n": index.ntotal, "build_s": secs,
          "peak_rss_kb": hwm_kb()})


def flat_query(data, out, single):
    index = faiss.read_index(os.path.join(out, "faiss-flat.index"))
    qs = load(data, "queries.f32")
    index.search(qs[:4], 10)
    ns = min(single, len(qs))
    t = time.time()
    for i in range(ns):
        index.search(qs[i:i + 1], 10)
    b1 = ns / (time.time() - t)
    t = time.time()
    ids = []
    for lo in range(0, len(qs), 64):
        _, I = index.search(qs[lo:lo + 64], 10)
        ids.append(I)
    b64 = len(qs) / (time.time() - t)
    np.concatenate(ids).astype(np.int32).tofile(os.path.join(data, "truth.i32"))
    rss = hwm_kb()
    emit({"phase": "flat", "index": "IndexFlatIP", "dtype": "float32", "n": index.ntotal, "qps_batch1": b1,
          "qps_batch64": b64, "peak_rss_kb": rss})
    # The same with one OpenMP thread: on a machine shared with other work,
    # OpenMP's barriers can cost more than the second core brings.
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    t = time.time()
    for i in range(ns):
        index.search(qs[i:i + 1], 10)
    b1 = ns / (time.time() - t)
    t = time.time()
    for lo in range(0, len(qs), 64):
        index.search(qs[lo:lo + 64], 10)
    b64 = len(qs) / (time.time() - t)
    faiss.omp_set_num_threads(threads)
    emit({"phase": "flat_1thread", "index": "IndexFlatIP", "dtype": "float32", "n": index.ntotal, "qps_batch1": b1,
          "qps_batch64": b64, "peak_rss_kb": rss})


def hnsw_build(data, out, m, efc):
    info = json.load(open(os.path.join(data, "info.json")))
    t = time.time()
    index = faiss.IndexHNSWFlat(info["dim"], m, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = efc
    add_in_chunks(index, data)
    secs = time.time() - t
    faiss.write_index(index, os.path.join(out, "faiss-hnsw.index"))
    emit({"phase": "hnsw_build", "index": "IndexHNSWFlat", "dtype": "float32", "n": index.ntotal, "m": m,
          "ef_construction": efc, "build_s": secs, "peak_rss_kb": hwm_kb()})


def recall(I, truth):
    hit = 0
    for a, b in zip(I, truth):
        hit += len(set(a.tolist()) & set(b.tolist()))
    return hit / truth.size


def hnsw_query(data, out, efs, single=1000):
    index = faiss.read_index(os.path.join(out, "faiss-hnsw.index"))
    qs = load(data, "queries.f32")
    truth = np.fromfile(os.path.join(data, "truth.i32"), dtype=np.int32).reshape(-1, 10)
    rows = []
    for ef in efs:
        index.hnsw.efSearch = ef
        index.search(qs[:50], 10)
        ns = min(single, len(qs))
        t = time.time()
        for i in range(ns):
            index.search(qs[i:i + 1], 10)
        b1 = ns / (time.time() - t)
        t = time.time()
        _, I = index.search(qs, 10)
        batch = len(qs) / (time.time() - t)
        rows.append({"ef_search": ef, "qps_batch1": b1, "qps_batch_all": batch,
                     "recall10_vs_float32_exact": recall(I, truth)})
    emit({"phase": "hnsw", "index": "IndexHNSWFlat", "dtype": "float32", "n": index.ntotal, "rows": rows,
          "peak_rss_kb": hwm_kb()})


if __name__ == "__main__":
    cmd, data, out = sys.argv[1], sys.argv[2], sys.argv[3]
    if cmd == "flat-build":
        flat_build(data, out)
    elif cmd == "flat-query":
        flat_query(data, out, int(sys.argv[4]))
    elif cmd == "hnsw-build":
        hnsw_build(data, out, int(sys.argv[4]), int(sys.argv[5]))
    elif cmd == "hnsw-query":
        hnsw_query(data, out, [int(x) for x in sys.argv[4].split(",")])
    else:
        sys.exit("unknown command " + cmd)
