#!/usr/bin/env bash
# Re-measures the figures that README.md and docs/ state, each with the
# command its document names, and prints every claim beside today's figure.
#
# Usage: scripts/check_claims.sh [--all] [NAME...]    (from the repository root)
#
# Without --all only the quick checks run (seconds); --all adds the
# benchmarks (minutes on a 2-core machine). NAMEs select checks by name.
# Figures that depend on the machine (throughput) are printed for a person to
# judge; figures that do not (parameter counts, recall, searches per answer)
# are compared and a mismatch makes the script exit 1.
set -euo pipefail
cd "$(dirname "$0")/.."

all=0
only=()
for a in "$@"; do
	case $a in
	--all) all=1 ;;
	-h | --help)
		sed -n '2,11p' "$0"
		exit 0
		;;
	*) only+=("$a") ;;
	esac
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export GOMLX_BACKEND=${GOMLX_BACKEND:-go}
go build -o "$work/ssp" ./cmd/ssp
ssp=$work/ssp

failed=0
row() { # name, where, claim, today, verdict
	printf '%-22s %-36s claim: %-34s today: %-34s %s\n' "$1" "$2" "$3" "$4" "$5"
	if [ "$5" = MISMATCH ]; then failed=1; fi
}
wanted() { # name, slow
	if [ ${#only[@]} -gt 0 ]; then
		local n
		for n in "${only[@]}"; do [ "$n" = "$1" ] && return 0; done
		return 1
	fi
	[ "$2" = 0 ] || [ "$all" = 1 ]
}
claim() { # file, pattern: prints the first matching text of the document
	grep -o -m1 -E "$2" "$1" || echo "(not stated)"
}

# 1. The benchmark model's parameter count (docs/benchmarks-model.md,
# docs/benchmarks.md): the configuration of internal/model/bench_test.go.
if wanted params 0; then
	cat >"$work/bench-config.json" <<'EOF'
{"model_type": "llama", "hidden_size": 128, "intermediate_size": 384, "num_hidden_layers": 4,
 "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 2048,
 "max_position_embeddings": 512, "tie_word_embeddings": true}
EOF
	n=$("$ssp" model init --config "$work/bench-config.json" --out "$work/bench-model" 2>&1 | grep -o -E '[0-9]+ parameters' | cut -d' ' -f1)
	today=$(awk -v n="$n" 'BEGIN { printf "%.2f M (%d)", n / 1e6, n }')
	c=$(claim docs/benchmarks-model.md '[0-9.]+ M parameters')
	v=OK
	[ "${c%% M*}" = "$(awk -v n="$n" 'BEGIN { printf "%.2f", n / 1e6 }')" ] || v=MISMATCH
	row params docs/benchmarks-model.md "$c" "$today" "$v"
	c=$(claim docs/benchmarks.md '[0-9.]+M-parameter')
	v=OK
	[ "${c%%M-*}" = "$(awk -v n="$n" 'BEGIN { printf "%.2f", n / 1e6 }')" ] || v=MISMATCH
	row params docs/benchmarks.md "$c" "$today" "$v"
fi

# 2. Model throughput (docs/benchmarks-model.md): the command it names.
if wanted model-bench 1; then
	out=$(go test ./internal/model/ -run '^$' -bench 'Generate$|TrainStep$' -benchtime 3x 2>&1)
	gen=$(echo "$out" | awk '/^BenchmarkGenerate/ { for (i = 1; i <= NF; i++) if ($i ~ /tokens\/s/) print $(i-1) }')
	trn=$(echo "$out" | awk '/^BenchmarkTrainStep/ { for (i = 1; i <= NF; i++) if ($i ~ /tokens\/s/) print $(i-1) }')
	row generate docs/benchmarks-model.md "$(claim docs/benchmarks-model.md '[0-9]+ new tokens/s')" "${gen:-?} new tokens/s" "(machine-dependent)"
	row train-step docs/benchmarks-model.md "$(claim docs/benchmarks-model.md '[0-9]+ tokens/s\*\*' | tr -d '*')" "${trn:-?} tokens/s" "(machine-dependent)"
fi

# 3. Multi-turn rollouts through a session against re-encoding
# (docs/model.md, docs/benchmarks.md): the command they name.
if wanted session 1; then
	out=$(go test ./internal/builtin -run '^$' -bench SolverRollouts -benchtime 2x 2>&1)
	sess=$(echo "$out" | awk '/^BenchmarkSolverRollouts\/kept-caches/ { printf "%.1f", $3 / 1e9 }')
	reenc=$(echo "$out" | awk '/^BenchmarkSolverRollouts\/re-encoded/ { printf "%.1f", $3 / 1e9 }')
	ratio=$(awk -v a="${sess:-0}" -v b="${reenc:-0}" 'BEGIN { if (a > 0) printf "%.2f", b / a; else print "?" }')
	row session docs/model.md "$(claim docs/model.md '[0-9.]+× faster')" "${sess:-?} s vs ${reenc:-?} s per op (${ratio}×)" "(machine-dependent)"
fi

# 4. The embedded model's behaviour (README.md): greedy eval on the
# built-in held-out benchmark, as `ssp eval` runs it with no arguments.
if wanted embedded 1; then
	"$ssp" eval --out "$work/eval" >"$work/eval.log" 2>&1 || true
	searches=$(grep -o -m1 '"avg_searches": [0-9.]*' "$work/eval/metrics.json" 2>/dev/null | awk '{ print $2 }')
	em=$(grep -o -m1 '"em": [0-9.]*' "$work/eval/metrics.json" 2>/dev/null | awk '{ print $2 }')
	c=$(claim docs/world.md '[0-9.]+ EM\*\* on every hop')
	want_em=$(echo "$c" | grep -o -m1 -E '^[0-9.]+')
	want_searches=$(claim docs/world.md '[0-9.]+ searches per question' | grep -o -m1 -E '^[0-9.]+')
	row embedded-eval docs/world.md "EM $want_em, $want_searches searches" "EM ${em:-?}, ${searches:-?} searches" \
		"$(awk -v e="${em:--1}" -v s="${searches:--1}" -v we="${want_em:--2}" -v ws="${want_searches:--2}" \
			'BEGIN { print (e * 100 == we && s == ws) ? "OK" : "MISMATCH" }')"
fi

# 5. Search engine (docs/benchmarks-search.md): recall@10 of the pruned
# query path against ssp's own exhaustive scoring, with the generator and
# query program that scripts/bench_search.sh runs (that script also rewrites
# the document, so it is not called here). N=200000 as in the document.
if wanted search 1; then
	go build -o "$work/gencorpus" ./scripts/gencorpus
	go build -o "$work/benchsearch" ./scripts/benchsearch
	"$work/gencorpus" -n "${N:-200000}" -out "$work/corpus.jsonl" -queries "$work/queries.txt" -nq 1000
	"$ssp" index build --quiet --corpus "$work/corpus.jsonl" --out "$work/idx" >/dev/null
	out=$("$work/benchsearch" -index "$work/idx" -queries "$work/queries.txt")
	rec=$(echo "$out" | grep -o -m1 -E '"recall_at_k"[^,}]*' | grep -o -E '[0-9.]+$' || true)
	qps=$(echo "$out" | grep -o -m1 -E '"qps_single"[^,}]*' | grep -o -E '[0-9.]+$' || true)
	row search-recall docs/benchmarks-search.md "$(claim docs/benchmarks-search.md 'recall@10 of pruned search[^|]*\| [0-9.]+')" "${rec:-?}" \
		"$(awk -v r="${rec:-0}" 'BEGIN { print (r >= 0.9999) ? "OK" : "MISMATCH" }')"
	row search-qps docs/benchmarks-search.md "$(claim docs/benchmarks-search.md 'one thread \| \*\*[0-9]+')" "${qps:-?} queries/s" "(machine-dependent)"
fi

exit $failed
