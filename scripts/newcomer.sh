#!/usr/bin/env bash
# A newcomer's first run, scripted: a fresh clone of this repository, the
# README's first-run commands verbatim, then a real instruct model —
# SmolLM2-135M-Instruct imported from GGUF, asked a question with
# `model generate --prompt`, and evaluated with `eval --model` and its
# defaults on 8 questions. Prints the time of each step and the total.
#
# Usage: scripts/newcomer.sh [GGUF]
#   GGUF: SmolLM2-135M-Instruct as GGUF; default $SSP_ASSETS/smollm2/*.gguf
#         (SSP_ASSETS defaults to .assets), fetched by scripts/fetch_smollm2.sh
#         when absent (needs PyPI).
# Nothing outside a temporary directory is written (its own cache too).
#
# Last measured: 480 s in all on the 2-core CPU with nothing else running:
# first run 367 s (a validation, 32 self-play steps, a validation), built-in
# eval 51 s, import 2 s, generate 3 s, the 8-question eval of SmolLM2 57 s;
# a progress line came at least every 10 s throughout.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
assets=${SSP_ASSETS:-$repo/.assets}
gguf=${1:-}
if [ -z "$gguf" ]; then
	if ! ls "$assets"/smollm2/*.gguf >/dev/null 2>&1; then
		"$repo/scripts/fetch_smollm2.sh"
	fi
	gguf=$(ls "$assets"/smollm2/*.gguf | head -n1)
fi
gguf=$(cd "$(dirname "$gguf")" && pwd)/$(basename "$gguf")

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export SSP_CACHE="$work/cache" GOMLX_BACKEND=go
git clone --quiet "$repo" "$work/ssp"
cd "$work/ssp"

start=$(date +%s)
last=$start
step() {
	local now
	now=$(date +%s)
	[ "$last" = "$start" ] || echo "   ... $((now - last)) s"
	last=$now
	echo "== [$((now - start)) s] $*"
}

step "go run ./cmd/ssp train"
go run ./cmd/ssp train
step "go run ./cmd/ssp eval"
go run ./cmd/ssp eval
step "ssp model import --gguf $(basename "$gguf") --out models/smollm2"
go run ./cmd/ssp model import --gguf "$gguf" --out models/smollm2
step 'ssp model generate --model models/smollm2 --prompt "What is the capital of France?"'
go run ./cmd/ssp model generate --model models/smollm2 --prompt "What is the capital of France?"
step "ssp eval --model models/smollm2 --limit 8"
go run ./cmd/ssp eval --model models/smollm2 --limit 8
step "done"
echo "newcomer run: $(( $(date +%s) - start )) s in all"
