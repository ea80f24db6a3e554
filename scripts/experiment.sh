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
#
# Another base policy: MODEL=<checkpoint> WORLD=<directory of ssp world gen>
# (its index is built into WORLD/index unless INDEX names one); TRAIN_ARGS adds
# flags to every row (e.g. the agent settings the base was bootstrapped with).
# On a machine without Go (a GPU machine), SSP names a prebuilt binary and the
# report is left to be written where Go is: the script prints the command.
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
MODEL=${MODEL:-}
WORLD=${WORLD:-}
INDEX=${INDEX:-}
TRAIN_ARGS=${TRAIN_ARGS:-}

mkdir -p "$OUT"
have_go=false
command -v go > /dev/null && have_go=true
if $have_go; then
  go build -o "$SSP" ./cmd/ssp
elif [ ! -x "$SSP" ]; then
  echo "no Go toolchain and no binary at SSP=$SSP" >&2
  exit 2
fi

common=(--steps "$STEPS" --save-every "$STEPS" --game.batch_size "$BATCH" --game.solver_rollouts "$ROLLOUTS"
  --run.eval_every "$EVAL_EVERY" --run.eval_limit "$EVAL_LIMIT")
[ -n "$BACKEND" ] && common+=(--backend "$BACKEND")
if [ -n "$MODEL" ]; then
  [ -n "$WORLD" ] || { echo "MODEL needs WORLD, a directory written by ssp world gen" >&2; exit 2; }
  INDEX=${INDEX:-$WORLD/index}
  [ -d "$INDEX" ] || "$SSP" index build --corpus "$WORLD/corpus.jsonl" --out "$INDEX"
  common+=(--model "$MODEL" --index "$INDEX" --seeds "$WORLD/seeds.jsonl" --run.eval_data "$WORLD/benchmark.jsonl"
    --run.qa_data "$WORLD/train_qa.jsonl")
fi
# shellcheck disable=SC2206
common+=($TRAIN_ARGS)

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
report=(go run ./scripts/expreport --runs "$OUT" --doc docs/experiments.md --plots docs/experiments)
if $have_go; then
  "${report[@]}"
else
  echo "rows done in $OUT; bring it to a machine with Go and run: ${report[*]}" >&2
fi
