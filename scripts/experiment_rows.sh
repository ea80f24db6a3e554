# Sourced by scripts/experiment.sh and scripts/experiment_gpu.sh: the flags
# that make each row of docs/experiments.md's table out of `ssp train`.
# shellcheck disable=SC2034 # used by the scripts that source this file
declare -A recipe=(
  [ssp]=""                                          # (b) search self-play, no labels
  [supervised]="--game.problems qa"                 # (c) Search-R1-style RL on train_qa.jsonl, gold rewards
  [no-rag]="--verify.rag false"                     # (d) self-play without RAG verification
  [frozen-proposer]="--game.train_proposer false"   # (e) self-play, proposer not updated
)
