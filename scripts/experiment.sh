#!/usr/bin/env bash
# The self-play experiment of docs/experiments.md: four training recipes from
# the same base policy (the embedded model) on the built-in world, each
# validated on the held-out benchmark during training, then the results
# table and learning curves written into docs/experiments.md.
#
#   scripts/experiment.sh                     # CPU-sized defaults (two rows at a time; logs in $OUT/<row>.log)
#   STEPS=200 EVAL_EVERY=20 EVAL_LIMIT=0 BACKEND=xla:cuda BATCH=64 JOBS=1 scripts/experiment.sh
#
# Every row gets the same budget: STEPS optimizer steps of BATCH questions with
# ROLLOUTS solver rollouts each. One row is one command (printed before it runs).
set -euo pipefail
cd "$(dirname "$0")/.."

STEPS=${STEPS:-4}
EVAL_EVERY=${EVAL_EVERY:-2}
EVAL_LIMIT=${EVAL_LIMIT:-40}
BATCH=${BATCH:-4}
ROLLOUTS=${ROLLOUTS:-3}
OUT=${OUT:-runs/experiment}
BACKEND=${BACKEND:-}
ROWS=${ROWS:-"ssp supervised no-rag frozen-proposer"}
SSP=${SSP:-$OUT/ssp-bin}
JOBS=${JOBS:-2}   # rows trained at once (the pure-Go backend keeps about one core busy per run)

mkdir -p "$OUT"
go build -o "$SSP" ./cmd/ssp

common=(--steps "$STEPS" --save-every "$STEPS" --game.batch_size "$BATCH" --game.solver_rollouts "$ROLLOUTS"
  --run.eval_every "$EVAL_EVERY" --run.eval_limit "$EVAL_LIMIT")
[ -n "$BACKEND" ] && common+=(--backend "$BACKEND")

declare -A recipe=(
  [ssp]=""                                          # (b) search self-play, no labels
  [supervised]="--game.problems qa"                 # (c) Search-R1-style RL on train_qa.jsonl, gold rewards
  [no-rag]="--verify.rag false"                     # (d) self-play without RAG verification
  [frozen-proposer]="--game.train_proposer false"   # (e) self-play, proposer not updated
)
first=true
for row in $ROWS; do
  [ -v "recipe[$row]" ] || { echo "unknown row $row" >&2; exit 2; }
  rm -rf "${OUT:?}/$row"
  # The base policy is validated once, by the first row (step 0).
  # shellcheck disable=SC2086
  cmd=("$SSP" train "${common[@]}" --run.eval_first "$first" ${recipe[$row]} --out "$OUT/$row")
  first=false
  echo "+ ${cmd[*]}" >&2
  "${cmd[@]}" >"$OUT/$row.log" 2>&1 &
  while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do wait -n || exit 1; done
done
while [ "$(jobs -rp | wc -l)" -gt 0 ]; do wait -n || exit 1; done
# (a) the base model is the first row's validation at step 0.
go run ./scripts/expreport --runs "$OUT" --doc docs/experiments.md --plots docs/experiments
