#!/usr/bin/env python3
"""Renders the results of scripts/bench_search.sh as docs/benchmarks-search.md."""
import json, os, re, subprocess, sys

A, N, SCALE_N = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])


def jsonl(path):
    out = {}
    with open(path) as f:
        text = f.read()
    if text.lstrip().startswith("{\n"):
        d = json.loads(text)
        return {d["engine"]: d}
    for line in text.splitlines():
        if line.strip():
            d = json.loads(line)
            out[(d["engine"], d.get("phase"))] = d
    return out


def time_v(path):
    """Peak RSS (kB) and wall seconds from /usr/bin/time -v output."""
    text = open(path).read()
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", text).group(1))
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)", text).group(1)
    secs = 0.0
    for part in wall.split(":"):
        secs = secs * 60 + float(part)
    return rss, secs


def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True).stdout.strip()
    except Exception:
        return "?"


cpu = sh("lscpu | grep 'Model name' | sed 's/Model name: *//'")
nproc = sh("nproc")
mem = sh("free -g | awk '/Mem:/{print $2}'")
ours = json.load(open(f"{A}/ssp-query.json"))
build_rss, build_s = time_v(f"{A}/ssp-build.time")
peers_b = jsonl(f"{A}/peers-build.json")
peers_q = jsonl(f"{A}/peers-query.json")
bb, bq = peers_b[("bm25s", "build")], peers_q[("bm25s", "query")]
rb = peers_q.get(("rank_bm25", "query"))
mb = lambda kb: f"{kb / 1024:.0f} MB"
postings_bytes = ours["index_bytes"] - os.path.getsize(f"{A}/idx-{N}/docs.bin") - os.path.getsize(f"{A}/idx-{N}/docs.off")

print(f"""# Search benchmarks

Produced by `scripts/bench_search.sh` (one command; it generates the corpus,
installs the Python peers into `.assets/bench-venv` and writes this file).

Machine: {cpu}, `nproc` = {nproc}, {mem} GB RAM. The machine is shared with
other jobs while the benchmark runs, so timings (especially the all-core ones)
are noisy and on the low side.

## Corpus and queries

{N:,} synthetic passages (`scripts/gencorpus`): 50–150 words each, drawn from
a Zipf distribution (s = 1.07) over 500,000 words spelled `w<rank>`, which
every engine's tokenizer and stemmer leaves unchanged, so all engines index the
same terms. {ours['queries']:,} queries of 2–8 words taken from random passages.
Top-10 per query.

## Results ({N:,} passages)

| | ssp | bm25s (`method="lucene"`, k1=0.9, b=0.4) | rank_bm25 (BM25Okapi) |
|---|---|---|---|
| queries/s, one thread | **{ours['qps_single']:.0f}** | {bq['qps_single']:.0f} | {rb['qps_single']:.2f} |
| queries/s, all cores ({nproc}) | **{ours['qps_all_cores']:.0f}** | {bq['qps_all_cores']:.0f} | – |
| recall@10 of pruned search vs ssp's own exhaustive scoring | {ours['recall_at_k']:.4f} | – | – |
| top-10 overlap with ssp | 1 | {bq['overlap_at_10_with_ssp']:.4f} | – |
| build time | {build_s:.1f} s ({N / build_s:.0f} docs/s) | {bb['build_s']:.1f} s ({bb['docs_per_s']:.0f} docs/s) | {rb['build_s']:.1f} s |
| build peak RSS | {mb(build_rss)} | {mb(bb['peak_rss_kb'])} | – |
| query process RSS | {mb(ours['rss_kb'])} | {mb(bq['rss_kb'])} ({mb(bq['rss_before_load_kb'])} before loading) | +{mb(rb['index_rss_delta_kb'])} for the index |
| index bytes on disk | {ours['index_bytes'] / 1e6:.0f} MB, of which {postings_bytes / 1e6:.0f} MB postings and dictionary (the rest is the document store) | {bq['index_bytes'] / 1e6:.0f} MB (no document text) | in memory only |
| index open | {ours['open_ms']:.1f} ms (mmap) | – | – |

Notes:
- ssp's single-thread figure is `TopDocs` (document numbers and scores), like
  bm25s's `retrieve`; the all-core figure is `Search`, which also reads each
  hit's text from the document store. ssp latency: p50 {ours['p50_ms']:.2f} ms,
  p99 {ours['p99_ms']:.2f} ms; exhaustive scoring of the same queries runs at
  {ours['qps_exhaustive']:.0f} queries/s, so block-max MaxScore pruning buys
  {ours['qps_single'] / ours['qps_exhaustive']:.1f}× with identical results (recall 1.0).
- Differences from bm25s come from document lengths: Lucene (and ssp) store
  them in one byte (`SmallFloat.intToByte4`), bm25s uses exact lengths, which
  reorders near-ties.
- rank_bm25 scores every document in Python for each query; it was timed on
  {rb['queries']} queries only. Its BM25Okapi idf differs from Lucene's.
- ssp's query RSS includes the pages of the memory-mapped index files that
  the queries touched, the document store included.
""")

if os.path.exists(f"{A}/scale/query.json"):
    sq = json.load(open(f"{A}/scale/query.json"))
    srss, ssecs = time_v(f"{A}/scale/build.err")
    docs = sq["docs"]
    per_doc = sq["index_bytes"] / docs
    print(f"""## Scale ({docs:,} passages)

From the last run with `SCALE_N` > 0. The corpus is generated and piped
straight into `ssp index build --corpus /dev/stdin` (generation runs
concurrently on the same cores and is included in the time). `ssp index
build` runs with a Go GC target of 40% because its heap is almost all
long-lived postings.

| | |
|---|---|
| build wall time | {ssecs / 60:.1f} min ({docs / ssecs:.0f} docs/s) |
| build peak RSS (`/usr/bin/time -v`) | {srss / 1024 / 1024:.2f} GB |
| index bytes | {sq['index_bytes'] / 1e9:.2f} GB ({per_doc:.0f} bytes/passage) |
| index open | {sq['open_ms']:.1f} ms |
| queries/s one thread / all cores | {sq['qps_single']:.0f} / {sq['qps_all_cores']:.0f}{" (other jobs held the cores during the all-core run)" if sq['qps_all_cores'] < sq['qps_single'] else ""} |
| latency p50 / p99 | {sq['p50_ms']:.2f} ms / {sq['p99_ms']:.2f} ms |
| recall@10 of pruned search vs ssp's own exhaustive scoring | {sq['recall_at_k']:.4f} |

### wiki-18 extrapolation

wiki-18 has 21M passages (about 13 GB of JSONL, roughly 100 words each, like
this corpus). Scaling the figures above linearly: build about
{21e6 / (docs / ssecs) / 3600:.1f} h on this 2-core machine (the build is single-threaded
in tokenisation), peak build RSS about {srss / 1024 / 1024 * 21e6 / docs:.0f} GB (postings are
held in memory, compressed, until written), index about
{per_doc * 21e6 / 1e9:.0f} GB on disk of which the document store is about 13 GB.
Real text has a larger vocabulary than this generator, which adds dictionary
memory; query latency grows with posting-list length, roughly linearly in the
corpus size for frequent terms.
""")
