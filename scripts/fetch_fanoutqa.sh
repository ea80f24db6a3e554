#!/bin/sh
# Fetches the FanOutQA dev set, shipped inside the fanoutqa package on PyPI
# (pinned), into .assets/fanoutqa/ ($SSP_ASSETS/fanoutqa/ when set) for
# `ssp data import --format fanoutqa` and its test.
set -eu
cd "$(dirname "$0")/.."
out=${SSP_ASSETS:-.assets}/fanoutqa
if ls "$out"/*-dev.json >/dev/null 2>&1; then
	exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 -m pip download --no-deps --no-binary :none: -d "$tmp" "fanoutqa==1.1.1" >/dev/null
mkdir -p "$out"
python3 - "$tmp" "$out" <<'PY'
import glob, os, sys, zipfile
whl, out = glob.glob(sys.argv[1] + "/fanoutqa-*.whl")[0], sys.argv[2]
with zipfile.ZipFile(whl) as z:
    names = [n for n in z.namelist() if n.endswith("-dev.json")]
    if not names:
        sys.exit("no *-dev.json in " + whl)
    for n in names:
        dst = os.path.join(out, n.rsplit("/", 1)[-1])
        open(dst + ".tmp", "wb").write(z.read(n))
        os.replace(dst + ".tmp", dst)
        print("wrote " + dst)
PY
