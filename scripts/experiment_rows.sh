# Sourced by scripts/experiment.sh, scripts/experiment_gpu.sh and
# scripts/variants.sh: the flags that make each row of docs/experiments.md's
# table out of `ssp train`, and train_one, which runs such a command.
# shellcheck disable=SC2034 # used by the scripts that source this file
declare -A recipe=(
  [ssp]=""                                          # (b) search self-play, no labels
  [supervised]="--game.problems qa"                 # (c) Search-R1-style RL on train_qa.jsonl, gold rewards
  [no-rag]="--verify.rag false"                     # (d) self-play without RAG verification
  [frozen-proposer]="--game.train_proposer false"   # (e) self-play, proposer not updated
)

# train_one runs one command and records its wall-clock seconds in the run
# directory, where scripts/expreport reads them.
train_one() {
  local dir=$1 log=$2 start=$SECONDS
  shift 2
  "$@" > "$log" 2>&1 || { echo "failed: $* (log: $log)" >&2; return 1; }
  echo $((SECONDS - start)) > "$dir/wall_seconds"
}
