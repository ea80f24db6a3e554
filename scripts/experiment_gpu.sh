#!/usr/bin/env bash
# The experiment's device check, one command on a GPU machine inside a short
# lease: the self-play (b) and supervised (c) rows of docs/experiments.md from
# the embedded base with GPU-sized batches, then the model benchmark against
# PyTorch (scripts/bench_gpu.sh) with whatever time is left. Each stage gets a
# share of a wall-clock BUDGET and is cut off, not failed, when it runs out:
# what a cut-off run logged and validated so far comes back.
#
# On a machine with Go (no GPU needed) build the binary first:
#   scripts/bench_gpu.sh                   # -> .gpu/ssp (cgo on, for the XLA backend)
# On the GPU machine (no Go), from the repository root, with .gpu/ brought along:
#   BUDGET=500 scripts/experiment_gpu.sh   # -> $RESULTS.tar.gz (and a copy in $OUT when set)
#
# Knobs (environment): BUDGET (500 s for everything), STEPS (16), BATCH (32 questions per step), ROLLOUTS (4),
# EVAL_EVERY (8; validation on all 200 held-out questions), EVAL_FIRST (true: the first row validates the base), ROWS ("ssp supervised"), SEED (1), ROW_SECONDS (150 s at
# most per row), BENCH (1: run the model benchmark after the rows), BACKEND (xla:cuda; go runs the same stages on
# the CPU, for trying the script), SSP_BIN (.gpu/ssp), RESULTS (runs/gpu).
# The run directories come back without checkpoints; docs/experiments.md's GPU section says how they were read.
set -uo pipefail
cd "$(dirname "$0")/.."

BUDGET=${BUDGET:-500}
STEPS=${STEPS:-16}
BATCH=${BATCH:-32}
ROLLOUTS=${ROLLOUTS:-4}
EVAL_EVERY=${EVAL_EVERY:-8}
ROWS=${ROWS:-"ssp supervised"}
SEED=${SEED:-1}
ROW_SECONDS=${ROW_SECONDS:-150}
BENCH=${BENCH:-1}
BACKEND=${BACKEND:-xla:cuda}
SSP=${SSP_BIN:-.gpu/ssp}
R=${RESULTS:-runs/gpu}
start=$SECONDS

[ -x "$SSP" ] || { echo "no $SSP: run scripts/bench_gpu.sh on a machine with Go first and bring .gpu/ along" >&2; exit 1; }
rm -rf "$R"
mkdir -p "$R"
if [ "$BACKEND" != go ]; then
  # shellcheck source=scripts/gpu_env.sh
  source scripts/gpu_env.sh
fi
export GOMLX_BACKEND=$BACKEND

# pack writes everything so far into one archive (the device returns few files), without checkpoints.
pack() {
  tar -czf "$R.tar.gz.tmp" --exclude=checkpoints -C "$(dirname "$R")" "$(basename "$R")" && mv "$R.tar.gz.tmp" "$R.tar.gz"
  if [ -n "${OUT:-}" ]; then cp "$R.tar.gz" "$OUT/"; fi
}
# left prints the seconds of the budget still unspent.
left() { echo $((BUDGET - (SECONDS - start))); }
# cap prints the smaller of $1 and what is left of the budget less $2 (time kept for what follows).
cap() {
  local l
  l=$(($(left) - $2))
  [ "$l" -lt "$1" ] && echo "$l" || echo "$1"
}

{
  echo "backend=$BACKEND"
  echo "date=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "ssp=$(cat "$SSP.version" 2> /dev/null || echo unknown)"
  echo "budget_s=$BUDGET steps=$STEPS batch=$BATCH rollouts=$ROLLOUTS eval_every=$EVAL_EVERY seed=$SEED"
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2> /dev/null || echo "no nvidia-smi"
  nproc
} > "$R/machine.txt"
cat "$R/machine.txt" >&2

# 1. The backend answers at all: a tiny model generates four tokens.
echo "== smoke test on $BACKEND" >&2
if ! timeout "$(cap 90 0)" "$SSP" model bench --shape tiny --mode generate --batch 2 --prompt-len 8 --new-tokens 4 \
  --iters 1 --dtype float32 --backend "$BACKEND" --json > "$R/smoke.json" 2> "$R/smoke.err"; then
  echo "smoke test failed:" >&2
  tail -30 "$R/smoke.err" >&2
  ls -la "${PJRT_PLUGIN_LIBRARY_PATH:-/nonexistent}" >> "$R/smoke.err" 2>&1
  pack
  exit 1
fi
tail -c 300 "$R/smoke.json" >&2

# 2. The rows, from the embedded base, one at a time (each XLA client takes most of the device's memory).
# The first row validates the base at step 0: the same greedy evaluation as the CPU's, on another backend.
# shellcheck source=scripts/experiment_rows.sh
source scripts/experiment_rows.sh
first=${EVAL_FIRST:-true}
for row in $ROWS; do
  [ -v "recipe[$row]" ] || { echo "unknown row $row" >&2; exit 2; }
  read -ra flags <<< "${recipe[$row]}"
  keep=0
  [ "$BENCH" = 1 ] && keep=60
  secs=$(cap "$ROW_SECONDS" "$keep")
  [ "$secs" -gt 20 ] || { echo "no time left for row $row" >&2; break; }
  dir=$R/$row-s$SEED
  cmd=("$SSP" train --steps "$STEPS" --save-every "$STEPS" --game.batch_size "$BATCH" --game.solver_rollouts "$ROLLOUTS"
    --run.eval_every "$EVAL_EVERY" --run.eval_limit 0 --run.seed "$SEED" --run.eval_first "$first" --backend "$BACKEND"
    "${flags[@]}" --out "$dir")
  first=false
  echo "== row $row ($secs s at most): ${cmd[*]}" >&2
  t0=$SECONDS
  timeout "$secs" "${cmd[@]}" > "$R/$row-s$SEED.log" 2>&1
  rc=$?
  echo "row $row: exit $rc after $((SECONDS - t0)) s" | tee -a "$R/rows.txt" >&2
  grep -E "validation|proposer .* solver" "$R/$row-s$SEED.log" | tail -40 >&2
  pack
done

# 3. The model benchmark against PyTorch, one shape, while time is left.
if [ "$BENCH" = 1 ] && [ "$(left)" -gt 45 ]; then
  per=$((($(left) - 10) / 4))
  echo "== model benchmark, $per s per run" >&2
  RESULTS=$R/bench SHAPES=${SHAPES:-smollm2-135m} ITERS=${ITERS:-1} STEP_TIMEOUT=$per DOC=$R/benchmarks-model.md \
    OUT= bash -c 'cp docs/benchmarks-model.md "$DOC" && scripts/bench_gpu.sh' 2>&1 | tail -40 >&2
  pack
fi
echo "done in $((SECONDS - start)) s: $R.tar.gz" >&2
