#!/bin/sh
# Fetches two independently written dictionaries from Debian's packages,
# WordNet 3.0 (dict-wn) and GCIDE (dict-gcide), pinned, into
# .assets/dict/ ($SSP_ASSETS/dict/ when set), unpacked without installing
# them (no root needed): the labelled set of the retrieval-quality
# benchmark (scripts/benchretrieval) is WordNet's definitions as queries
# against GCIDE's entries.
set -eu
cd "$(dirname "$0")/.."
out=${SSP_ASSETS:-.assets}/dict
pins="dict-wn=1:3.0-37 dict-gcide=0.48.5+nmu2"
if [ -f "$out/pins" ] && [ "$(cat "$out/pins")" = "$pins" ]; then
	exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# shellcheck disable=SC2086 # the pins are separate words
(cd "$tmp" && apt-get download $pins >/dev/null 2>&1) || {
	echo "fetch_dicts.sh: apt-get download $pins failed (Debian's package archive must be reachable)" >&2
	exit 1
}
mkdir -p "$tmp/x"
for deb in "$tmp"/*.deb; do
	dpkg -x "$deb" "$tmp/x"
done
rm -rf "$out.tmp"
mkdir -p "$out.tmp"
cp "$tmp"/x/usr/share/dictd/wn.* "$tmp"/x/usr/share/dictd/gcide.* "$out.tmp/"
echo "$pins" >"$out.tmp/pins"
rm -rf "$out"
mv "$out.tmp" "$out"
echo "dictionaries ready: $out"
