#!/usr/bin/env bash
# Installs OpenAI's Python client (pinned) into the assets venv that
# scripts/fetch_smollm2.sh makes ($SSP_ASSETS/venv, else .assets/venv), for
# scripts/test_openai_client.py and the Go test that runs it against
# `ssp serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${SSP_ASSETS:-.assets}/venv
if [ ! -x "$venv/bin/python" ]; then
	python3 -m venv "$venv"
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check "openai==3.51.0"
"$venv/bin/python" -c 'import openai; print("openai", openai.__version__, "ready in '"$venv"'")'
