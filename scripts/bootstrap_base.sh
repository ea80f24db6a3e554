#!/usr/bin/env bash
# A competent base policy for the built-in small world, from scratch:
# chained `ssp world bootstrap` runs, each continuing the last (--init): three
# of copy drills over newly generated worlds (a new --seed per stage, so no
# stage can answer its drills from memory of an earlier one) that teach the
# solver, then three of protocol episodes with drills interleaved that teach
# the proposer and the RAG check without undoing the solver (stages 1-6, about
# 2.5 hours on a 2-core CPU), then two long stages of the same protocol
# episodes in batches of 32 (7-8: minutes on a GPU, about 12 hours on that
# CPU), then one of all three roles' episodes with chains of up to four hops
# (9: about 26 minutes on that CPU); then `ssp eval` of every stage on the
# held-out benchmark. Stage 9 is the embedded default (internal/builtin/model);
# docs/world.md has the figures.
#
#   UPTO=6 scripts/bootstrap_base.sh          # stages 1-6 not yet finished, on a CPU, then the evals
#   OUT=runs/base FROM=3 UPTO=6 scripts/bootstrap_base.sh   # re-run stage 3 and what follows, to 6
#   FROM=7 UPTO=8 BACKEND=xla:cuda SSP=.gpu/ssp EVALS=0 scripts/bootstrap_base.sh   # stages 7-8 on a GPU machine
#   FROM=9 scripts/bootstrap_base.sh          # back here, stage 9 on the CPU, then the evals
#   scripts/bootstrap_base.sh                 # back here, all finished: evaluate the stages not evaluated
#
# Each stage writes $OUT/stage-N (a checkpoint with bootstrap.json: options,
# loss curves, probes) and $OUT/stage-N.log. Stages before FROM are kept (its
# default is the stage after the last one with bootstrap.json; one missing
# before FROM is skipped, except the stage FROM continues), and stages after
# UPTO are not run. The evals go to $OUT/eval-stage-N (report.md,
# metrics.json, trajectories); EVALS=0 skips them. STAGES replaces the
# recipe: one line of `ssp world bootstrap` flags per stage (the script adds
# --world, --index, --out and --init; a first line may name its own --init, to
# continue a checkpoint such as internal/builtin/model). BACKEND=xla:cuda runs
# the stages on a GPU machine without Go: SSP names the binary built by
# scripts/bench_gpu.sh (.gpu/ssp), scripts/gpu_env.sh points GoMLX at the
# machine's XLA plugin, and $OUT/stage-6 travels with the repository.
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=${OUT:-runs/base}
if [ -z "${FROM:-}" ]; then
  # Continue after the last finished stage.
  FROM=1
  for ((i = 1; i <= 99; i++)); do
    [ -f "$OUT/stage-$i/bootstrap.json" ] && FROM=$((i + 1))
  done
fi
SSP=${SSP:-$OUT/ssp-bin}
STAGES=${STAGES:-"--lm-steps 150 --copy-steps 1000 --copy-pack-len 256 --protocol-steps 0 --probe-every 200 --seed 11
--lm-steps 0 --copy-steps 1400 --copy-pack-len 256 --protocol-steps 0 --probe-every 200 --seed 12 --lr 2e-3
--lm-steps 0 --copy-steps 600 --copy-pack-len 256 --protocol-steps 0 --probe-every 200 --seed 13 --lr 1e-3
--lm-steps 0 --copy-steps 0 --copy-pack-len 256 --protocol-steps 300 --protocol-drill-share 0.5 --probe-every 50 --seed 14 --lr 1e-3
--lm-steps 0 --copy-steps 0 --copy-pack-len 256 --protocol-steps 240 --protocol-roles proposer,rag --protocol-drill-share 0.5 --probe-every 60 --seed 15 --lr 1e-3
--lm-steps 0 --copy-steps 0 --copy-pack-len 256 --protocol-steps 360 --protocol-roles proposer,rag --protocol-drill-share 0.5 --probe-every 120 --seed 16 --lr 1e-3
--lm-steps 0 --copy-steps 0 --copy-pack-len 256 --protocol-steps 800 --batch-size 32 --protocol-roles proposer,rag --protocol-drill-share 0.5 --probe-every 0 --seed 17 --lr 1e-3
--lm-steps 0 --copy-steps 0 --copy-pack-len 256 --protocol-steps 2000 --batch-size 32 --protocol-roles proposer,rag --protocol-drill-share 0.5 --probe-every 0 --seed 18 --lr 1e-3
--lm-steps 0 --copy-steps 0 --copy-pack-len 256 --protocol-steps 240 --max-hops 4 --protocol-drill-share 0.3 --probe-every 80 --seed 19 --lr 5e-4"}
UPTO=${UPTO:-99}
# The agent settings of the built-in training and eval configuration; the
# bootstrap's defaults are the same, eval is told them explicitly.
AGENT=(--game.prompts minimal --agent.top_k 1 --agent.max_information_chars 500 --agent.max_turns 5
  --agent.max_tokens_per_turn 48 --agent.max_response_tokens 1200)

BACKEND=${BACKEND:-}
if [ -n "$BACKEND" ] && [ "$BACKEND" != go ]; then
  # shellcheck source=scripts/gpu_env.sh
  source scripts/gpu_env.sh
fi
EVALS=${EVALS:-1}

mkdir -p "$OUT"
if command -v go > /dev/null; then
  go build -o "$SSP" ./cmd/ssp
elif [ ! -x "$SSP" ]; then
  echo "no Go toolchain and no binary at SSP=$SSP" >&2
  exit 2
fi

# The world: the built-in one (`ssp world gen --size small --seed 1`, what
# `ssp train` and `ssp eval` use with no arguments) unless WORLD names another.
world=${WORLD:-$OUT/world}
[ -f "$world/world.json" ] || "$SSP" world gen --size small --seed 1 --out "$world"
index=${INDEX:-$world/index}
[ -d "$index" ] || "$SSP" index build --corpus "$world/corpus.jsonl" --out "$index"

n=0
prev=
while IFS= read -r flags; do
  [ -n "$flags" ] || continue
  [ "$n" -lt "$UPTO" ] || break
  n=$((n + 1))
  dir=$OUT/stage-$n
  init=()
  [ -n "$prev" ] && init=(--init "$prev")
  if [ "$n" -lt "$FROM" ]; then
    if [ -f "$dir/bootstrap.json" ]; then
      echo "stage $n: kept ($dir)" >&2
    elif [ "$n" -eq $((FROM - 1)) ]; then
      echo "stage $n: no $dir/bootstrap.json, and stage $FROM continues it" >&2
      exit 1
    else
      echo "stage $n: not in $OUT, skipped" >&2
    fi
  else
    # shellcheck disable=SC2206
    cmd=("$SSP" world bootstrap --world "$world" --index "$index" "${init[@]}" $flags --out "$dir" --force)
    echo "+ ${cmd[*]}" >&2
    start=$SECONDS
    "${cmd[@]}" > "$OUT/stage-$n.log" 2>&1 || { echo "stage $n failed (log: $OUT/stage-$n.log)" >&2; exit 1; }
    echo "stage $n: $((SECONDS - start)) s" >&2
    echo $((SECONDS - start)) > "$dir.seconds"
  fi
  prev=$dir
done <<< "$STAGES"

[ "$EVALS" = 0 ] && exit 0
for ((i = 1; i <= n; i++)); do
  ev=$OUT/eval-stage-$i
  [ -f "$OUT/stage-$i/bootstrap.json" ] || continue
  [ -f "$ev/metrics.json" ] && [ "$i" -lt "$FROM" ] && continue
  "$SSP" eval --model "$OUT/stage-$i" --index "$index" --data "$world/benchmark.jsonl" "${AGENT[@]}" --out "$ev" \
    > "$ev.log" 2>&1 || { echo "eval of stage $i failed (log: $ev.log)" >&2; exit 1; }
  echo "stage $i: $(grep -m1 -o '"em":[^,]*' "$ev/metrics.json")" >&2
done
