#!/usr/bin/env bash
# Builds an example module outside the repository against the dist layout, with a plain
# `go build`: its go.mod only requires breakwater.example/go, which the go command fetches
# from the dist's GOPROXY file tree (no replace, nothing from the source tree), then
# checks that the binary runs and needs no breakwater shared library.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
cleanup() { chmod -R u+w "$tmp" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT

"$here/dist.sh" "$tmp/dist"
mkdir -p "$tmp/app"
cat >"$tmp/app/go.mod" <<'GO'
module example.com/outside

go 1.24

require breakwater.example/go v0.1.0
GO
cp "$here/../../examples/quickstart/go/main.go" "$tmp/app/main.go"
cd "$tmp/app"
# A private module cache: a rebuilt dist with the same version is never read from a
# stale cache. GONOSUMDB: the dist is not in the public checksum database.
export GOPROXY="file://$tmp/dist/proxy" GOMODCACHE="$tmp/modcache" GONOSUMDB=breakwater.example \
  GOFLAGS=-mod=mod GOWORK=off
go build -o outside .
./outside | tee output.txt
grep -q "rejected: breakwater: circuit open" output.txt
if ldd ./outside 2>/dev/null | grep -q breakwater; then
  echo "the binary depends on a breakwater shared library"; exit 1
fi
echo "outside module: built with plain go build against the dist layout, runs, no run-time library"
