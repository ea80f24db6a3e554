#!/usr/bin/env bash
# Benchmarks ssp's dense vector index (internal/vector) against FAISS on the
# same generated vectors and writes docs/benchmarks-dense.md.
#
#   scripts/bench_vector.sh                 # 1M vectors of dimension 384, 1000 queries
#   N=100000 scripts/bench_vector.sh        # quick run
#   DOC=/tmp/dense.md scripts/bench_vector.sh   # write the report there instead
#
# FAISS (faiss-cpu, pinned) and numpy are installed into $SSP_ASSETS/vector-venv
# (.assets/vector-venv when SSP_ASSETS is unset). Work files go to
# $SSP_ASSETS/bench-vector. Both sides use every core of the machine.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-1000000}
NQ=${NQ:-1000}
DIM=${DIM:-384}
M=${M:-16}
EFC=${EFC:-100}
EFS=${EFS:-16,32,64,128,256,512}
DOC=${DOC:-docs/benchmarks-dense.md}
# Queries timed one per call in exact search (a full scan each).
FLAT_SINGLE=${FLAT_SINGLE:-$(( N >= 500000 ? 50 : 200 ))}
assets=${SSP_ASSETS:-.assets}
venv=$assets/vector-venv
A=$assets/bench-vector/n$N
mkdir -p "$A"

if [ ! -x "$venv/bin/python" ]; then
	python3 -m venv "$venv"
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check "faiss-cpu==1.15.1" "numpy==2.4.6"
py=$venv/bin/python

go build -o "$A/benchvector" ./scripts/benchvector
bv=$A/benchvector
R=$A/results.jsonl
: > "$R"

if [ ! -s "$A/data/queries.f32" ]; then
	echo "== generating $N vectors of dimension $DIM" >&2
	"$bv" gen -n "$N" -nq "$NQ" -dim "$DIM" -out "$A/data"
fi

echo "== faiss flat" >&2
"$py" scripts/bench_vector_peer.py flat-build "$A/data" "$A" >> "$R"
"$py" scripts/bench_vector_peer.py flat-query "$A/data" "$A" "$FLAT_SINGLE" >> "$R"
rm -f "$A/faiss-flat.index"

for dt in int8 float16; do
	echo "== ssp $dt: build, flat search" >&2
	"$bv" build -data "$A/data" -index "$A/idx-$dt" -dtype "$dt" >> "$R"
	"$bv" flat -data "$A/data" -index "$A/idx-$dt" -single "$FLAT_SINGLE" >> "$R"
done
rm -rf "$A/idx-float16"

echo "== ssp HNSW (M=$M, efConstruction=$EFC)" >&2
"$bv" hnsw -index "$A/idx-int8" -m "$M" -efc "$EFC" >> "$R"
"$bv" approx -data "$A/data" -index "$A/idx-int8" -ef "$EFS" >> "$R"

echo "== faiss HNSW (M=$M, efConstruction=$EFC)" >&2
"$py" scripts/bench_vector_peer.py hnsw-build "$A/data" "$A" "$M" "$EFC" >> "$R"
"$py" scripts/bench_vector_peer.py hnsw-query "$A/data" "$A" "$EFS" >> "$R"

python3 scripts/bench_vector_report.py "$R" "$N" "$NQ" "$DIM" "N=$N scripts/bench_vector.sh" > "$DOC.tmp"
mv "$DOC.tmp" "$DOC"
echo "wrote $DOC" >&2
