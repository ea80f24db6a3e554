#!/usr/bin/env bash
# Benchmarks ssp's BM25 index against bm25s and rank_bm25 on a generated
# corpus and writes docs/benchmarks-search.md.
#
#   scripts/bench_search.sh            # 200k passages, 1000 queries, 5M-passage scale test
#   N=50000 SCALE_N=0 scripts/bench_search.sh   # quick run without the scale test
#   DOC=/tmp/bench.md scripts/bench_search.sh    # write the report there instead
#
# Python peers are installed into .assets/bench-venv (gitignored) from PyPI.
# SSP_BIN may name a prebuilt ssp binary.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-200000}
NQ=${NQ:-1000}
SCALE_N=${SCALE_N:-5000000}
RANK_BM25_DOCS=${RANK_BM25_DOCS:-$N}
DOC=${DOC:-docs/benchmarks-search.md}
A=.assets/bench
mkdir -p "$A"

if [ ! -x .assets/bench-venv/bin/python ]; then
  python3 -m venv .assets/bench-venv
fi
.assets/bench-venv/bin/pip install -q "bm25s==0.3.16" "rank_bm25==0.2.2" numpy scipy

SSP=${SSP_BIN:-}
if [ -z "$SSP" ]; then
  go build -o "$A/ssp" ./cmd/ssp
  SSP=$A/ssp
fi
go build -o "$A/gencorpus" ./scripts/gencorpus
go build -o "$A/benchsearch" ./scripts/benchsearch

corpus=$A/corpus-$N.jsonl
queries=$A/queries-$N.txt
if [ ! -s "$corpus" ] || [ ! -s "$queries" ]; then
  "$A/gencorpus" -n "$N" -out "$corpus" -queries "$queries" -nq "$NQ"
fi

echo "== ssp build ($N passages)" >&2
/usr/bin/time -v "$SSP" index build --quiet --corpus "$corpus" --out "$A/idx-$N" > "$A/ssp-build.out" 2> "$A/ssp-build.time"
echo "== ssp queries" >&2
"$A/benchsearch" -index "$A/idx-$N" -queries "$queries" -hits "$A/ssp-hits.txt" > "$A/ssp-query.json"
echo "== bm25s build" >&2
.assets/bench-venv/bin/python scripts/bench_search_peers.py build "$corpus" "$A" > "$A/peers-build.json"
echo "== bm25s and rank_bm25 queries" >&2
BENCH_CORPUS=$corpus .assets/bench-venv/bin/python scripts/bench_search_peers.py query "$A" "$queries" "$A/ssp-hits.txt" "$RANK_BM25_DOCS" > "$A/peers-query.json"

if [ "$SCALE_N" -gt 0 ]; then
  echo "== scale: $SCALE_N passages, generated and indexed as a stream" >&2
  mkdir -p "$A/scale"
  "$A/gencorpus" -n "$SCALE_N" -out - -queries "$A/scale/queries.txt" -nq "$NQ" |
    /usr/bin/time -v "$SSP" index build --corpus /dev/stdin --format jsonl --out "$A/scale/idx" > "$A/scale/build.out" 2> "$A/scale/build.err"
  "$A/benchsearch" -index "$A/scale/idx" -queries "$A/scale/queries.txt" > "$A/scale/query.json"
fi

python3 scripts/bench_search_report.py "$A" "$N" "$SCALE_N" > "$DOC"
echo "wrote $DOC" >&2
