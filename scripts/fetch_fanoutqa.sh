#!/bin/sh
# Fetches the FanOutQA dev set, shipped inside the fanoutqa package on PyPI,
# into .assets/fanoutqa/ for `ssp data import --format fanoutqa` and its test.
set -eu
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 -m pip download --no-deps --no-binary :none: -d "$tmp" fanoutqa >/dev/null
mkdir -p .assets/fanoutqa
python3 - "$tmp" <<'PY'
import glob, sys, zipfile
whl = glob.glob(sys.argv[1] + "/fanoutqa-*.whl")[0]
with zipfile.ZipFile(whl) as z:
    names = [n for n in z.namelist() if n.endswith("-dev.json")]
    if not names:
        sys.exit("no *-dev.json in " + whl)
    for n in names:
        open(".assets/fanoutqa/" + n.rsplit("/", 1)[-1], "wb").write(z.read(n))
        print("wrote .assets/fanoutqa/" + n.rsplit("/", 1)[-1])
PY
