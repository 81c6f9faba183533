#!/usr/bin/env bash
# The Go and Python conformance runners (tests/conformance/README.md): every scenario
# through each binding's public API. Each prints "conformance: N scenarios passed"; the
# script fails when a runner fails, prints no such line, or passes another count than
# the number of scenario files.
#
#   bash scripts/conformance_bindings.sh        (BW_CONFORMANCE_DIR: another directory)
#
# Builds what is missing: the static library (Go links it), a venv under target/ with
# the Python package (maturin develop --release).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
export CARGO_INCREMENTAL=0
dir=${BW_CONFORMANCE_DIR:-$ROOT/tests/conformance/scenarios}
export BW_CONFORMANCE_DIR=$dir
expected=$(find "$dir" -maxdepth 1 -name '*.json' | wc -l)
echo "== conformance (bindings): $expected scenario files in $dir"
logdir=$ROOT/target/conformance
mkdir -p "$logdir"
status=0

check() {
  local name=$1 log=$2 started=$3 rc=$4
  local line
  line=$(grep -E '^conformance: [0-9]+ scenarios passed' "$log" | tail -n 1 || true)
  echo "$name: ${line:-no summary line} ($((SECONDS - started)) s)"
  if [ "$rc" -ne 0 ]; then
    echo "FAILED: $name runner (log: $log)"
    grep -E '^FAIL ' "$log" | head -n 40 || tail -n 40 "$log"
    status=1
  fi
  if [ -z "$line" ] || [ "$(echo "$line" | sed -E 's/^conformance: ([0-9]+) scenarios passed.*/\1/')" != "$expected" ]; then
    echo "FAILED: the $name runner did not pass all $expected scenarios"
    status=1
  fi
}

# Go: links target/release/libbreakwater.a; the cgo build is keyed on the header and
# library (Go's cache does not see them).
started=$SECONDS
make -C bindings/c lib >/dev/null
key=$(cat include/breakwater.h target/release/libbreakwater.a | sha256sum | cut -c1-16)
rc=0
(cd bindings/go && CGO_CFLAGS="-O2 -g -DBREAKWATER_BUILD=$key" \
  timeout 600 go test -count=1 -run '^TestConformance$' -v .) >"$logdir/go.log" 2>&1 || rc=$?
check go "$logdir/go.log" "$started" "$rc"

# Python: the package built into a venv under target/.
started=$SECONDS
venv=$ROOT/target/venv
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -c 'import maturin, pytest' 2>/dev/null || "$venv/bin/pip" install -q maturin pytest
(cd bindings/python && VIRTUAL_ENV="$venv" "$venv/bin/maturin" develop --release -q)
rc=0
timeout 600 "$venv/bin/python" -m pytest -q -p no:cacheprovider \
  bindings/python/tests/test_conformance.py >"$logdir/python.log" 2>&1 || rc=$?
check python "$logdir/python.log" "$started" "$rc"

if [ "$status" -eq 0 ]; then
  echo "conformance (bindings): go and python passed all $expected scenarios"
fi
exit "$status"
