#!/usr/bin/env bash
# Makes the LoRA references of internal/model/lora_test.go: a Python venv
# with PEFT, transformers and torch (all pinned) in .assets/peft-venv
# ($SSP_ASSETS/peft-venv when set; .ci/run keeps it in a cache between runs),
# then scripts/gen_lora_reference.py writes PEFT adapters, logits, adapter
# gradients and merged weights for the shared fixtures into
# .assets/lora-reference/. The Go tests also run the venv's Python to load
# adapters that ssp saved into PEFT.
#
# Size: PyPI has no CPU-only torch for Linux x86-64. Its wheel is the CUDA
# build, and it does not import without the nvidia-* libraries it links
# (libtorch_cuda.so needs cudart, cublas, cudnn, cufft, cusparse, nccl, …;
# `pip install --no-deps torch` fails at `import torch` with "libcudart.so.13:
# cannot open shared object file"). So torch comes with its dependencies:
# about 2.7 GB downloaded and 4.9 GB in the venv, two minutes here, once per
# cache. It runs on the CPU; no GPU is needed.
#
# Usage: scripts/fetch_peft.sh        (from the repository root)
set -euo pipefail
cd "$(dirname "$0")/.."
assets=${SSP_ASSETS:-.assets}
shared=${SSP_SHARED:-../shared}
venv=$assets/peft-venv
pins="torch==2.11.0 transformers==5.17.0 peft==0.21.2 accelerate==1.16.0 safetensors==0.8.0 numpy==2.2.6"
mkdir -p "$assets"

if [ ! -x "$venv/bin/python" ] || [ "$(cat "$venv/ssp-pins" 2>/dev/null)" != "$pins" ]; then
	python3 -m venv "$venv"
	# shellcheck disable=SC2086 # the pins are separate words
	"$venv/bin/pip" install --quiet --disable-pip-version-check $pins
	echo "$pins" >"$venv/ssp-pins"
fi

out=$assets/lora-reference
stale=0
if [ ! -f "$out/pins" ] || [ "$(cat "$out/pins")" != "$pins" ] || [ scripts/gen_lora_reference.py -nt "$out/pins" ]; then
	stale=1
fi
for f in "$shared"/fixtures/hf/*/model.safetensors; do
	if [ "$f" -nt "$out/pins" ]; then stale=1; fi # fixtures replaced since the references were made
done
if [ "$stale" = 1 ]; then
	rm -rf "$out.tmp"
	"$venv/bin/python" scripts/gen_lora_reference.py generate "$shared/fixtures/hf" "$out.tmp"
	echo "$pins" >"$out.tmp/pins"
	rm -rf "$out"
	mv "$out.tmp" "$out"
fi
echo "LoRA references ready: $out"
