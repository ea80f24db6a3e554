#!/usr/bin/env bash
# The CPU model benchmarks (BenchmarkGenerate, BenchmarkTrainStep in internal/model) of the working tree
# against an earlier commit, side by side: both test binaries are built first, then each benchmark runs
# alternately on the two sides, so that other jobs on a shared machine disturb both alike. Prints every run
# (tokens/s and the CPU seconds the process used, compilation of the programs included), then per benchmark
# the median of each side and the ratios.
#
#   scripts/bench_model_cpu.sh BASE_COMMIT            # e.g. scripts/bench_model_cpu.sh 034bf3b
#
# Knobs (environment): ROUNDS (5: runs of each benchmark on each side), BENCHTIME (3x),
# BENCHES ('Generate$ TrainStep$'), GOMLX_BACKEND (go).
set -euo pipefail
cd "$(dirname "$0")/.."
base=${1:?usage: scripts/bench_model_cpu.sh BASE_COMMIT}
rounds=${ROUNDS:-5}
benchtime=${BENCHTIME:-3x}
benches=${BENCHES:-'Generate$ TrainStep$'}
export GOMLX_BACKEND=${GOMLX_BACKEND:-go}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
git archive "$base" | tar -x -C "$work"
mkdir -p "$work/bin"
(cd "$work" && go test -c -o "$work/bin/old.test" ./internal/model)
go test -c -o "$work/bin/new.test" ./internal/model
echo "old: $(git rev-parse --short "$base"), new: $(git describe --always --dirty)"
echo "machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p'), load average $(cut -d' ' -f1-3 /proc/loadavg)"

for round in $(seq "$rounds"); do
  for bench in $benches; do
    for side in old new; do
      out=$(cd internal/model && /usr/bin/time -f 'cpu %U %S' "$work/bin/$side.test" -test.run '^$' \
        -test.bench "$bench" -test.benchtime "$benchtime" 2>&1)
      echo "$out" | awk -v side="$side" -v round="$round" '
        /^Benchmark/ { name = $1; for (i = 1; i <= NF; i++) if ($(i+1) == "tokens/s") tps = $i }
        /^cpu / { cpu = $2 + $3 }
        END { printf "%s round %d %s %s tokens/s %.1f cpu-s\n", side, round, name, tps, cpu }'
    done
  done
done | tee "$work/runs.txt"

echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "summary (medians of $rounds runs per side):"
awk '
  { tps[$4, $1] = tps[$4, $1] " " $5; cpu[$4, $1] = cpu[$4, $1] " " $7; names[$4] = 1 }
  function median(s,   a, n, i, j, t) {
    n = split(s, a, " ")
    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
  }
  END {
    for (b in names) {
      o = median(tps[b, "old"]); n = median(tps[b, "new"])
      co = median(cpu[b, "old"]); cn = median(cpu[b, "new"])
      printf "%s: old %.1f tokens/s, new %.1f tokens/s (new/old %.2fx); CPU per run old %.1f s, new %.1f s (old/new %.2fx)\n",
        b, o, n, n / o, co, cn, co / cn
    }
  }' "$work/runs.txt"
