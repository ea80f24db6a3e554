#!/usr/bin/env bash
# The CPU model benchmarks (BenchmarkGenerate, BenchmarkTrainStep in internal/model) of the working tree
# against an earlier commit, side by side: both test binaries are built first, then run alternately, so that
# other jobs on a shared machine disturb both alike. Prints every run, the median tokens/s of each side and
# their ratio, and the CPU time each side used.
#
#   scripts/bench_model_cpu.sh BASE_COMMIT            # e.g. scripts/bench_model_cpu.sh 034bf3b
#
# Knobs (environment): ROUNDS (5: runs of each binary), BENCHTIME (3x), BENCH ('Generate$|TrainStep$'),
# GOMLX_BACKEND (go).
set -euo pipefail
cd "$(dirname "$0")/.."
base=${1:?usage: scripts/bench_model_cpu.sh BASE_COMMIT}
rounds=${ROUNDS:-5}
benchtime=${BENCHTIME:-3x}
bench=${BENCH:-'Generate$|TrainStep$'}
export GOMLX_BACKEND=${GOMLX_BACKEND:-go}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
git archive "$base" | tar -x -C "$work"
mkdir -p "$work/bin"
(cd "$work" && go test -c -o "$work/bin/old.test" ./internal/model)
go test -c -o "$work/bin/new.test" ./internal/model
echo "old: $(git rev-parse --short "$base"), new: $(git describe --always --dirty)"
echo "machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p'), load $(cut -d' ' -f1-3 /proc/loadavg)"

for round in $(seq "$rounds"); do
  for side in old new; do
    out=$(cd internal/model && /usr/bin/time -f 'cpu %U %S' "$work/bin/$side.test" -test.run '^$' \
      -test.bench "$bench" -test.benchtime "$benchtime" 2>&1)
    echo "$out" | awk -v side="$side" -v round="$round" '
      /^Benchmark/ { for (i = 1; i <= NF; i++) if ($(i+1) == "tokens/s") print side, round, $1, $i, "tokens/s" }
      /^cpu / { printf "%s %d cpu-seconds %.1f\n", side, round, $2 + $3 }'
  done
done | tee "$work/runs.txt"

echo "summary (median of $rounds runs each):"
awk '
  $4 ~ /^[0-9.]+$/ && $5 == "tokens/s" { v[$3, $1] = v[$3, $1] " " $4; names[$3] = 1 }
  $3 == "cpu-seconds" { cpu[$1] += $4 }
  function median(s,   a, n, i, j, t) {
    n = split(s, a, " ")
    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
  }
  END {
    for (b in names) {
      o = median(v[b, "old"]); n = median(v[b, "new"])
      printf "%s: old %.1f tokens/s, new %.1f tokens/s, new/old %.2fx\n", b, o, n, n / o
    }
    printf "cpu-seconds over all runs: old %.1f, new %.1f\n", cpu["old"], cpu["new"]
  }' "$work/runs.txt"
