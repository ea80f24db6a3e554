#!/usr/bin/env python3
"""Writes the dense-vector benchmark report (markdown) from the JSON lines of
scripts/bench_vector.sh. Usage: bench_vector_report.py RESULTS N NQ DIM COMMAND [TITLE]
With TITLE it writes a subsection of that title (to append another run)."""
import json, os, subprocess, sys

rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
n, nq, dim, command = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]


def get(engine, phase, dtype=None):
    for r in rows:
        if r["engine"] == engine and r["phase"] == phase and (dtype is None or r.get("dtype") == dtype):
            return r
    return None


def mib(kb):
    return f"{kb / 1024:,.0f} MiB"


def lscpu(field):
    out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    for line in out.splitlines():
        if line.startswith(field + ":"):
            return line.split(":", 1)[1].strip()
    return "?"


load = open("/proc/loadavg").read().split()[:3]
flags = set()
for line in open("/proc/cpuinfo"):
    if line.startswith("flags"):
        flags = set(line.split(":", 1)[1].split())
        break
simd = ", ".join(f for f in ("avx2", "fma", "f16c", "avx512f", "avx512_vnni") if f in flags)
sub = sys.argv[6] if len(sys.argv) > 6 else None


def p(line=""):
    if sub and line.startswith("### "):
        line = "#" + line
    print(line)


if sub:
    print(f"### {sub}\n")
else:
    p("# Dense vector search benchmarks\n")
    p("## Vector search\n")
p(f"Machine: {lscpu('Model name')} ({simd}), {os.cpu_count()} cores, Go kernels: AVX2 assembly (load average when this report was written: "
  f"{' '.join(load)}; the machine was shared with other work, so absolute figures are noisy).\n")
p(f"Command: `{command}`. {n:,} base vectors and {nq:,} queries of dimension {dim}, drawn from a "
  "mixture of Gaussians (unit centres, each cluster spread along its own random 24-dimensional subspace, "
  "small isotropic noise, L2-normalised); queries are fresh draws. Score = inner product, k = 10. "
  "Recall@10 is measured against FAISS's exact float32 answer (IndexFlatIP). ssp stores int8 (per-vector "
  "scale) unless the row says float16; FAISS stores float32. Both use every core. RSS is the peak "
  "(VmHWM) of a fresh process that opens the built index and runs the queries; the FAISS figure includes "
  "the Python interpreter with numpy and faiss loaded.\n")

p("### Build\n")
p("| engine | index | dtype | build s | peak RSS of build |")
p("|---|---|---|---:|---:|")
for r in rows:
    if r["phase"] in ("build", "hnsw_build"):
        what = r.get("index") or ("vectors" if r["phase"] == "build" else "HNSW graph")
        if r["phase"] == "hnsw_build":
            what += f" (M={r['m']}, efConstruction={r['ef_construction']})"
        p(f"| {r['engine']} | {what} | {r['dtype']} | {r['build_s']:.1f} | {mib(r['peak_rss_kb'])} |")
p("")

p("### Exact (flat) search\n")
p("| engine | dtype | q/s, one query per call | q/s, 64 queries per call | recall@10 vs float32 exact | peak RSS |")
p("|---|---|---:|---:|---:|---:|")
for r in rows:
    if r["phase"] in ("flat", "flat_1thread"):
        rec = r.get("recall10_vs_float32_exact")
        eng = r["engine"] + (", 1 thread" if r["phase"] == "flat_1thread" else "")
        p(f"| {eng} | {r['dtype']} | {r['qps_batch1']:.1f} | {r['qps_batch64']:.1f} | "
          f"{'1 (reference)' if rec is None else f'{rec:.4f}'} | {mib(r['peak_rss_kb'])} |")
p("")

p("### HNSW\n")
p("| engine | efSearch | q/s, one query per call | q/s, all queries in one call | recall@10 vs float32 exact | recall@10 vs own exact |")
p("|---|---:|---:|---:|---:|---:|")
for eng in ("ssp", "faiss"):
    r = get(eng, "hnsw")
    if not r:
        continue
    for x in r["rows"]:
        own = x.get("recall10_vs_own_exact")
        p(f"| {eng} ({r['dtype']}) | {x['ef_search']} | {x['qps_batch1']:.0f} | {x['qps_batch_all']:.0f} | "
          f"{x['recall10_vs_float32_exact']:.4f} | {'' if own is None else f'{own:.4f}'} |")
p("")
for eng in ("ssp", "faiss"):
    r = get(eng, "hnsw")
    if r:
        p(f"Peak RSS, {eng} HNSW queries: {mib(r['peak_rss_kb'])}.  ")
p("")

p("### Targets\n")
sf, ff, sh = get("ssp", "flat", "int8"), get("faiss", "flat"), get("ssp", "hnsw")
f1 = get("faiss", "flat_1thread")
if sf and ff:
    p(f"- Flat q/s, ssp int8 vs FAISS float32: one query {sf['qps_batch1']:.1f} vs {ff['qps_batch1']:.1f} "
      f"({sf['qps_batch1'] / ff['qps_batch1']:.2f}×), 64 per call {sf['qps_batch64']:.1f} vs "
      f"{ff['qps_batch64']:.1f} ({sf['qps_batch64'] / ff['qps_batch64']:.2f}×).")
    if f1:
        p(f"  FAISS with one thread: {f1['qps_batch1']:.1f} and {f1['qps_batch64']:.1f} q/s.")
    p(f"- Flat peak RSS: ssp int8 {mib(sf['peak_rss_kb'])}, FAISS {mib(ff['peak_rss_kb'])}.")
if sh and sf:
    ok = [x for x in sh["rows"] if x["recall10_vs_float32_exact"] >= 0.95]
    if ok:
        x = ok[0]
        p(f"- HNSW: the smallest efSearch with recall@10 ≥ 0.95 (vs float32 exact) is {x['ef_search']} "
          f"(recall {x['recall10_vs_float32_exact']:.4f}): {x['qps_batch_all']:.0f} q/s all queries per call = "
          f"{x['qps_batch_all'] / sf['qps_batch64']:.1f}× ssp flat at 64 per call; {x['qps_batch1']:.0f} q/s one per "
          f"call = {x['qps_batch1'] / sf['qps_batch1']:.1f}× ssp flat one per call.")
    else:
        best = max(sh["rows"], key=lambda x: x["recall10_vs_float32_exact"])
        p(f"- HNSW: no efSearch measured reached recall@10 0.95 vs float32 exact (best {best['recall10_vs_float32_exact']:.4f} at efSearch {best['ef_search']}).")
