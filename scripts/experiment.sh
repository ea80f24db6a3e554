#!/usr/bin/env bash
# The self-play experiment of docs/experiments.md: four training recipes from
# the same base policy (the embedded model) on the built-in world, each
# validated on the held-out benchmark during training, then the results
# table and learning curves written into docs/experiments.md.
#
#   scripts/experiment.sh                     # CPU-sized defaults (two runs at a time; logs in $OUT/<run>.log)
#   ROWS="no-rag frozen-proposer" SKIP_DONE=1 scripts/experiment.sh   # some rows, keeping finished runs
#   STEPS=200 EVAL_EVERY=20 EVAL_LIMIT=0 BACKEND=xla:cuda BATCH=64 JOBS=1 scripts/experiment.sh
#
# Every run gets the same budget: STEPS optimizer steps of BATCH questions with
# ROLLOUTS solver rollouts each. One run is one command (printed before it runs)
# writing the run directory $OUT/<row>-s<seed>: the rows of MULTI_SEED_ROWS run
# once per seed of SEEDS, the other rows with the first seed only. Each finished
# run's wall-clock time goes to $OUT/<row>-s<seed>/wall_seconds.
#
# SKIP_DONE=1 keeps the run directories that already hold the checkpoint of
# step STEPS (a finished run) and trains only the others, from scratch, so an
# experiment can be continued over several days and the report grows with it.
#
# Another base policy: MODEL=<checkpoint> WORLD=<directory of ssp world gen>
# (its index is built into WORLD/index unless INDEX names one); TRAIN_ARGS adds
# flags to every run (e.g. the agent settings the base was bootstrapped with).
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
SEEDS=${SEEDS:-"1 2 3"}                        # values of --run.seed
MULTI_SEED_ROWS=${MULTI_SEED_ROWS:-"ssp supervised"}   # rows run once per seed; the others use the first seed
SKIP_DONE=${SKIP_DONE:-0}
SSP=${SSP:-$OUT/ssp-bin}
JOBS=${JOBS:-2}   # runs trained at once (the pure-Go backend keeps about one core busy per run)
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

# shellcheck source=scripts/experiment_rows.sh
source scripts/experiment_rows.sh
read -ra seeds <<< "$SEEDS"
[ "${#seeds[@]}" -gt 0 ] || { echo "SEEDS is empty" >&2; exit 2; }
for seed in "${seeds[@]}"; do
  [[ $seed =~ ^[0-9]+$ ]] || { echo "seed $seed is not a non-negative integer" >&2; exit 2; }
done
for row in $ROWS; do
  [ -v "recipe[$row]" ] || { echo "unknown row $row" >&2; exit 2; }
done

# finished reports whether run directory $1 holds the checkpoint of the last step.
finished() { [ -f "$1/checkpoints/step-$STEPS/trainer_state.json" ]; }

# The runs to train, in order: each row's seeds, less the finished ones with SKIP_DONE=1.
plan=()
declare -A retrain=()
for row in $ROWS; do
  row_seeds=("${seeds[0]}")
  [[ " $MULTI_SEED_ROWS " == *" $row "* ]] && row_seeds=("${seeds[@]}")
  for seed in "${row_seeds[@]}"; do
    dir=$OUT/$row-s$seed
    if [ "$SKIP_DONE" = 1 ] && finished "$dir"; then
      echo "skip $row-s$seed: finished (checkpoints/step-$STEPS)" >&2
      continue
    fi
    plan+=("$row $seed")
    retrain[$dir]=1
  done
done

# The base policy is validated once (step 0), by the first run trained,
# unless a run directory that is kept already holds that validation.
first=true
for f in "$OUT"/*-s*/eval/step-0/metrics.json; do
  [ -f "$f" ] && [ ! -v "retrain[${f%/eval/step-0/metrics.json}]" ] && first=false
done

for entry in "${plan[@]}"; do
  read -r row seed <<< "$entry"
  run=$row-s$seed
  rm -rf "${OUT:?}/$run"
  # shellcheck disable=SC2086
  cmd=("$SSP" train "${common[@]}" --run.seed "$seed" --run.eval_first "$first" ${recipe[$row]} --out "$OUT/$run")
  first=false
  echo "+ ${cmd[*]}" >&2
  train_one "$OUT/$run" "$OUT/$run.log" "${cmd[@]}" &
  while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do wait -n || exit 1; done
done
while [ "$(jobs -rp | wc -l)" -gt 0 ]; do wait -n || exit 1; done
# (a) the base model is the step-0 validation of the first run that has one.
report=(go run ./scripts/expreport --runs "$OUT" --doc docs/experiments.md --plots docs/experiments)
if $have_go; then
  "${report[@]}"
else
  echo "rows done in $OUT; bring it to a machine with Go and run: ${report[*]}" >&2
fi
