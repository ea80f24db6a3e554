#!/usr/bin/env bash
# The variants of docs/variants.md: runs from the same base and with the same
# budget as the table of docs/experiments.md (32 steps of 8 questions × 4
# solver rollouts, validated on all 200 benchmark questions at steps 0, 16
# and 32), each changing one or two settings, reported side by side with the
# table's rows by scripts/expreport.
#
#   scripts/variants.sh            # report the runs that exist
#   TRAIN=1 scripts/variants.sh    # first train the missing runs, two at a time (8–19 minutes each, 30 for 64 steps)
#
# The table's runs come first (STEPS=32 BATCH=8 ROLLOUTS=4 EVAL_EVERY=16
# EVAL_LIMIT=0 scripts/experiment.sh writes them into $EXP). A variant's run
# is the table's command with the variant's flags after it (later flags win)
# and --out $RUNS/<prefix>-s<seed>; LINKS gathers links to all of them,
# named <row>-s<seed>, for the report.
set -euo pipefail
cd "$(dirname "$0")/.."

EXP=${EXP:-runs/experiment}
RUNS=${RUNS:-runs}
LINKS=${LINKS:-runs/variants}
TRAIN=${TRAIN:-0}
JOBS=${JOBS:-2}
SSP=${SSP:-$RUNS/var-bin}
# shellcheck source=scripts/experiment_rows.sh
source scripts/experiment_rows.sh # train_one

# row | run directory prefix in $RUNS | seeds | flags added to the table's command
#
# ORACLE_N stands for the flags that send the RAG check to
# scripts/oraclecheck --min-links N, which answers it from the world's
# facts (a diagnostic: the check as it would be if it were never wrong,
# passing only right questions of at least N links); the script serves it,
# on port 8930+N, while such runs train.
#
# The rows with --solver.temperature 0.6 were measured when 0.6 was the
# built-in solver temperature; the flag keeps their commands what they were.
variants=(
  "ssp-t06|var-ssp-t06|1 2 3|--solver.temperature 0.6"
  "supervised-t06|var-sup-t06|1 2 3|--game.problems qa --solver.temperature 0.6"
  "no-rag-t06|var-norag-t06|1|--verify.rag false --solver.temperature 0.6"
  "frozen-proposer-t06|var-frozen-t06|1|--game.train_proposer false --solver.temperature 0.6"
  "supervised-t10|var-sup-t10|1 2|--game.problems qa --solver.temperature 1.0"
  "ssp-kl0.3|var-ssp-t08-kl03|1 2 3|--optim.kl_coef 0.3"
  "ssp-64-steps|var-ssp64-t08|1|--steps 64 --save-every 64"
  "supervised-64-steps|var-sup64-t08|1|--game.problems qa --steps 64 --save-every 64"
  "ssp-r8|var-ssp-r8-t08|1|--game.batch_size 4 --game.solver_rollouts 8"
  "supervised-r8|var-sup-r8-t08|1|--game.problems qa --game.batch_size 4 --game.solver_rollouts 8"
  "ssp-linear-lr|var-ssp-linlr|1|--optim.schedule linear"
  "supervised-linear-lr|var-sup-linlr|1|--game.problems qa --optim.schedule linear"
  "ssp-r8-t06|var-ssp-r8|1|--game.batch_size 4 --game.solver_rollouts 8 --solver.temperature 0.6"
  "supervised-r8-t06|var-sup-r8|1 2 3|--game.problems qa --game.batch_size 4 --game.solver_rollouts 8 --solver.temperature 0.6"
  "ssp-intermediate-t06|var-inter|1 2|--proposer.reward intermediate --solver.temperature 0.6"
  "ssp-2hop-seeds-t06|var-seeds2|1 2 3|--run.seeds SEEDS2 --solver.temperature 0.6"
  "frozen-2hop-seeds-t06|var-frozen2|1 2|--run.seeds SEEDS2 --game.train_proposer false --solver.temperature 0.6"
  "supervised-lr3e-4-t06|var-sup-lr3|1|--game.problems qa --optim.lr 3e-4 --solver.temperature 0.6"
  "supervised-lr5e-5-t06|var-sup-lr05|1 2 3|--game.problems qa --optim.lr 5e-5 --solver.temperature 0.6"
  "ssp-filter-t06|var-ssp-filter|1 2 3|--solver.filter_groups true --solver.temperature 0.6"
  "supervised-filter-t06|var-sup-filter|1|--game.problems qa --solver.filter_groups true --solver.temperature 0.6"
  "ssp-64-steps-t06|var-ssp64|1|--steps 64 --save-every 64 --solver.temperature 0.6"
  "supervised-64-steps-t06|var-sup64|1|--game.problems qa --steps 64 --save-every 64 --solver.temperature 0.6"
  "ssp-oracle-check|var-ssp-oracle|1 2 3|ORACLE_1"
  "ssp-oracle-check-2-links|var-ssp-oracle2|1 2 3|ORACLE_2"
  "supervised-2-4-hops|var-sup-qa2to4|1 2|--game.problems qa --run.qa_data QA_2TO4"
  "supervised-3-4-hops|var-sup-qa3to4|1 2|--game.problems qa --run.qa_data QA_3TO4"
  "ssp-grounded-searches|var-ssp-grounded|1 2 3|--filter.grounded_searches true"
  "ssp-grounded-searches-no-rag|var-ssp-grounded-norag|1 2|--filter.grounded_searches true --verify.rag false"
  "supervised-mini-batches-2|var-sup-mb2|1 2|--game.problems qa --optim.mini_batches 2"
  "ssp-mini-batches-2|var-ssp-mb2|1 2|--optim.mini_batches 2"
  "supervised-kl0.3|var-sup-kl03|1 2|--game.problems qa --optim.kl_coef 0.3"
  "ssp-grounded-searches-kl0.3|var-ssp-grounded-kl03|1 2 3 4 5|--filter.grounded_searches true --optim.kl_coef 0.3"
  "ssp-grounded-searches-no-rag-kl0.3|var-ssp-grounded-norag-kl03|1|--filter.grounded_searches true --verify.rag false --optim.kl_coef 0.3"
  "ssp-no-replay|var-ssp-noreplay|1 2|--pool.reuse false"
  "ssp-batch-16|var-ssp-b16|1 2|--game.batch_size 16 --steps 16 --save-every 16 --run.eval_every 8"
  "supervised-batch-16|var-sup-b16|1 2|--game.problems qa --game.batch_size 16 --steps 16 --save-every 16 --run.eval_every 8"
)

[ -f "$EXP/ssp-s1/config.yaml" ] || { echo "no $EXP/ssp-s1: run the table's experiment first (see docs/experiments.md)" >&2; exit 2; }
# The two-hop seeds: the built-in world's seeds file, cut to its two-hop seeds.
world_seeds=$(awk '$1 == "seeds:" {print $2; exit}' "$EXP/ssp-s1/config.yaml")
[ -f "$world_seeds" ] || { echo "$EXP/ssp-s1/config.yaml: run.seeds $world_seeds does not exist" >&2; exit 2; }
SEEDS2=$RUNS/seeds-2hop.jsonl
if [ ! -f "$SEEDS2" ]; then
  jq -c 'select(.hops == 2)' "$world_seeds" > "$SEEDS2.tmp"
  mv "$SEEDS2.tmp" "$SEEDS2"
fi
# The supervised rows' QA pairs cut to those of 2–4 and of 3–4 hops.
world_qa=$(awk '$1 == "qa_data:" {print $2; exit}' "$EXP/supervised-s1/config.yaml")
QA_2TO4=$RUNS/train_qa-2to4hops.jsonl
QA_3TO4=$RUNS/train_qa-3to4hops.jsonl
for cut in "$QA_2TO4 2" "$QA_3TO4 3"; do
  read -r file from <<< "$cut"
  if [ ! -f "$file" ]; then
    jq -c "select(.hops >= $from)" "$world_qa" > "$file.tmp"
    mv "$file.tmp" "$file"
  fi
done

oracle_flags() { # the flags of ORACLE_$1
  echo "--verify.rag_answerer judge --verify.judge_url http://127.0.0.1:$((8930 + $1)) --verify.judge_model oraclecheck"
}
if [ "$TRAIN" = 1 ]; then
  go build -o "$SSP" ./cmd/ssp
  pending=()
  for v in "${variants[@]}"; do
    IFS='|' read -r _ prefix seeds flags <<< "$v"
    for seed in $seeds; do
      out=$RUNS/$prefix-s$seed
      last=32
      [[ $flags =~ --steps\ ([0-9]+) ]] && last=${BASH_REMATCH[1]}
      [ -f "$out/eval/step-$last/metrics.json" ] && continue # finished
      f=${flags//SEEDS2/$SEEDS2}
      f=${f//QA_2TO4/$QA_2TO4}
      f=${f//QA_3TO4/$QA_3TO4}
      [[ $f =~ ORACLE_([0-9]) ]] && f=${f//ORACLE_${BASH_REMATCH[1]}/$(oracle_flags "${BASH_REMATCH[1]}")}
      pending+=("$out|$seed|$f")
    done
  done
  oracle_pids=()
  trap 'kill "${oracle_pids[@]}" 2>/dev/null || true' EXIT
  [[ ${pending[*]} == *oraclecheck* ]] && go build -o "$RUNS/oraclecheck" ./scripts/oraclecheck
  for links in 1 2 3 4; do
    [[ ${pending[*]} == *"$(oracle_flags $links)"* ]] || continue
    "$RUNS/oraclecheck" --world "$(dirname "$world_seeds")" --addr "127.0.0.1:$((8930 + links))" --min-links $links &
    oracle_pids+=($!)
    disown $! # neither counted among the training jobs nor waited for
    sleep 2
  done
  for p in "${pending[@]}"; do
    IFS='|' read -r out seed flags <<< "$p"
    while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do wait -n; done
    rm -rf "$out"
    # shellcheck disable=SC2086
    cmd=("$SSP" train --steps 32 --save-every 32 --game.batch_size 8 --game.solver_rollouts 4 --run.eval_every 16
      --run.eval_limit 0 --run.seed "$seed" $flags --out "$out")
    echo "${cmd[*]}"
    train_one "$out" "$out.log" "${cmd[@]}" &
  done
  wait
fi

rm -rf "$LINKS"
mkdir -p "$LINKS"
for run in "$EXP"/*-s[0-9]*; do
  [ -d "$run" ] && ln -s "$(realpath "$run")" "$LINKS/$(basename "$run")"
done
for v in "${variants[@]}"; do
  IFS='|' read -r row prefix seeds _ <<< "$v"
  for seed in $seeds; do
    run=$RUNS/$prefix-s$seed
    if [ -d "$run" ]; then
      ln -s "$(realpath "$run")" "$LINKS/$row-s$seed"
    else
      echo "variants: no $run (TRAIN=1 trains it)" >&2
    fi
  done
done
# More rows than a plot has colors: tables only.
go run ./scripts/expreport --runs "$LINKS" --doc docs/variants.md --curves=false
