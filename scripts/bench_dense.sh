#!/usr/bin/env bash
# docs/benchmarks-dense.md in one command. Three parts, each replacing its
# own section of the page (the others are kept):
#   encode   — passages/s of all-MiniLM-L6-v2, ssp (pure-Go backend) vs
#              sentence-transformers (PyTorch CPU, 2 threads), same texts;
#   quality  — recall@k of bm25, dense and hybrid ranking on a real labelled
#              set: WordNet definitions as queries against GCIDE entries
#              (scripts/benchretrieval; gold passages are defined there);
#   vectors  — flat and HNSW search vs FAISS (scripts/bench_vector.sh).
#
#   scripts/bench_dense.sh                          # all three (vectors at 1M: ~40 min of builds)
#   PARTS="encode quality" scripts/bench_dense.sh   # the encoder parts only (~15 min)
#   N=100000 scripts/bench_dense.sh                 # vectors at 100k
#
# Assets: scripts/fetch_encoders.sh (MiniLM, the sentence-transformers venv),
# scripts/fetch_dicts.sh (the dictionaries); fetched here when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
export SSP_ASSETS=${SSP_ASSETS:-.assets}
PARTS=${PARTS:-encode quality vectors}
DOC=${DOC:-docs/benchmarks-dense.md}
QUERIES=${QUERIES:-200}
DOCS=${DOCS:-1000}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
machine="$(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores; load average at the start of the run: $(cut -d' ' -f1-3 /proc/loadavg)"

# replace_section HEADING FILE: put FILE's text in place of the "## HEADING"
# section of $DOC (appended when the page has none).
replace_section() {
	python3 - "$DOC" "$1" "$2" <<'PY'
import os, re, sys
doc, heading, new = sys.argv[1], sys.argv[2], open(sys.argv[3]).read().rstrip() + "\n"
text = open(doc).read() if os.path.exists(doc) else "# Dense retrieval benchmarks\n"
parts = re.split(r"(?m)^(?=## )", text)
for i, p in enumerate(parts):
    if p.startswith("## " + heading + "\n"):
        parts[i] = new + "\n"
        break
else:
    parts.append(new + "\n")
open(doc + ".tmp", "w").write("".join(parts).rstrip() + "\n")
os.replace(doc + ".tmp", doc)
PY
}

if [[ " $PARTS " == *" encode "* || " $PARTS " == *" quality "* ]]; then
	scripts/fetch_encoders.sh >&2
fi
minilm=$SSP_ASSETS/encoders/all-MiniLM-L6-v2

if [[ " $PARTS " == *" encode "* ]]; then
	echo "== encoding throughput" >&2
	ours=$(go test ./internal/encoder/ -run '^$' -bench '^BenchmarkEncode$' -benchtime 3x | awk '/passages\/s/ {for (i = 1; i < NF; i++) if ($(i+1) == "passages/s") print $i}')
	peer=$("$SSP_ASSETS/peft-venv/bin/python" scripts/bench_encoder_peer.py "$minilm" 5 | awk '{print $2}')
	cat >"$tmp/encode.md" <<MD
## Encoding throughput

Command: \`PARTS=encode scripts/bench_dense.sh\` (\`go test ./internal/encoder -bench '^BenchmarkEncode\$'\` and
\`scripts/bench_encoder_peer.py\`). all-MiniLM-L6-v2, 64 passages of about 100 words (105 tokens), 32 per batch,
passage encoding; one side after the other. Machine: $machine.

| encoder | passages/s |
|---|---:|
| ssp, pure-Go backend (\`--backend go\`) | $ours |
| sentence-transformers 6.3.0, torch 2.11.0 CPU, 2 threads | $peer |

ssp / sentence-transformers: $(python3 -c "print(f'{$ours / $peer:.3f}')"). The pure-Go backend's matrix products are the
whole difference (docs/encoders.md#throughput); \`--backend xla:cpu\` or \`xla:cuda\` runs the same graphs through XLA.
MD
	replace_section "Encoding throughput" "$tmp/encode.md"
fi

if [[ " $PARTS " == *" quality "* ]]; then
	echo "== retrieval quality" >&2
	scripts/fetch_dicts.sh >&2
	go build -o "$tmp/benchretrieval" ./scripts/benchretrieval
	work=$SSP_ASSETS/bench-retrieval
	start=$(date +%s)
	"$tmp/benchretrieval" -wn "$SSP_ASSETS/dict/wn.index" -gcide "$SSP_ASSETS/dict/gcide.index" -encoder "$minilm" \
		-work "$work" -queries "$QUERIES" -docs "$DOCS" -passage-chars 250 >"$tmp/quality.txt"
	secs=$(($(date +%s) - start))
	{
		echo "## Retrieval quality"
		echo
		echo "Command: \`PARTS=quality scripts/bench_dense.sh\` (\`scripts/benchretrieval\`, QUERIES=$QUERIES DOCS=$DOCS). Machine: $machine."
		echo
		echo "The labelled set: two dictionaries written independently of each other, both Debian packages"
		echo "(scripts/fetch_dicts.sh). Queries are WordNet 3.0's definitions of the first sense of $QUERIES words"
		echo "(single lower-case words of 4+ letters, drawn with seed 1; definitions that contain the word itself"
		echo "are left out). Passages are GCIDE entries, cut to their first 250 characters. The **gold passages**"
		echo "of a query are every GCIDE entry whose headword is the word WordNet defines; the corpus holds them"
		echo "and random other GCIDE entries, $DOCS passages in all. A query counts as found at k when any gold"
		echo "passage is in its top k. Encoder all-MiniLM-L6-v2 (int8 vectors, exact search); hybrid fuses the top 50"
		echo "of each list. Whole run, encoding included: ${secs} s."
		echo
		sed -n '/^| ranking/,$p' "$tmp/quality.txt"
		echo
		echo "Query time includes encoding the query on the pure-Go backend, all queries in one call."
	} >"$tmp/quality.md"
	replace_section "Retrieval quality" "$tmp/quality.md"
fi

if [[ " $PARTS " == *" vectors "* ]]; then
	echo "== vector search" >&2
	DOC="$tmp/vectors-page.md" scripts/bench_vector.sh
	sed -n '/^## Vector search/,$p' "$tmp/vectors-page.md" >"$tmp/vectors.md"
	replace_section "Vector search" "$tmp/vectors.md"
fi
echo "wrote $DOC" >&2
