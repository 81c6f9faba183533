#!/usr/bin/env bash
# Lays out the Go module for users outside the repository (duckdb-go-bindings' layout):
#
#   OUT/modules/go/              breakwater.example/go: the sources, the header, and a
#                                cgo.go whose only link line is an import of the
#                                platform module (no binaries in this module)
#   OUT/modules/<goos>-<goarch>/ breakwater.example/go/<goos>-<goarch>: the stripped
#                                static library and the #cgo LDFLAGS that link it
#   OUT/proxy/                   both modules as a GOPROXY file tree (zip, mod, info),
#                                so a user's plain `go build` fetches them with
#                                GOPROXY=file://OUT/proxy, exactly as from a registry
#
# Usage: bindings/go/dist.sh OUT [VERSION]   (VERSION defaults to the crate's, v0.1.0)
# Builds the library first (make -C bindings/c lib). Nothing is written into the tree.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out=${1:?usage: dist.sh OUT [VERSION]}
mkdir -p "$out"
out=$(cd "$out" && pwd)
version=${2:-v$(sed -n 's/^version = "\(.*\)"/\1/p' "$root/Cargo.toml" | head -n 1)}
goos=$(go env GOOS)
goarch=$(go env GOARCH)
platform="$goos-$goarch"
module=breakwater.example/go
platform_module="$module/$platform"

make -C "$root/bindings/c" lib >/dev/null

main_dir="$out/modules/go"
plat_dir="$out/modules/$platform"
rm -rf "$main_dir" "$plat_dir" "$out/proxy"
mkdir -p "$main_dir/include" "$plat_dir"

# The main module: every non-test source, the header, and cgo.go rewritten to find the
# header beside it and to take the library from the platform module.
for f in "$here"/*.go "$here/bwgo.h"; do
  case "$f" in *_test.go) continue ;; esac
  cp "$f" "$main_dir/"
done
cp "$root/include/breakwater.h" "$main_dir/include/"
sed -e 's|-I${SRCDIR}/../../include|-I${SRCDIR}/include|' \
    -e '/^#cgo LDFLAGS: /d' \
    -e 's|^// Inside the repository: .*|// Dist layout: the header in include/ beside this file; the static library and its|' \
    -e 's|^// (make -C bindings/c lib); dist.sh rewrites.*|// link line come from the platform module (link_GOOS_GOARCH.go imports it).|' \
    "$here/cgo.go" >"$main_dir/cgo.go"
cat >"$main_dir/link_${goos}_${goarch}.go" <<GO
//go:build ${goos} && ${goarch}

package breakwater

// The static library for ${platform} and its link flags.
import _ "${platform_module}"
GO
cat >"$main_dir/go.mod" <<GO
module $module

go 1.24

require $platform_module $version
GO

# The platform module: the stripped library and its link line.
strip --strip-debug -o "$plat_dir/libbreakwater.a" "$root/target/release/libbreakwater.a"
cat >"$plat_dir/link.go" <<GO
// Package lib links breakwater's static library for ${platform}. Import it for its
// side effect only; breakwater.example/go does.
package lib

/*
#cgo LDFLAGS: \${SRCDIR}/libbreakwater.a -lm -ldl -lpthread
*/
import "C"
GO
cat >"$plat_dir/go.mod" <<GO
module $platform_module

go 1.24
GO

# The GOPROXY file tree.
python3 - "$out/proxy" "$version" "$module" "$main_dir" "$platform_module" "$plat_dir" <<'PY'
import json, os, sys, zipfile
proxy, version = sys.argv[1], sys.argv[2]
for module, src in ((sys.argv[3], sys.argv[4]), (sys.argv[5], sys.argv[6])):
    d = os.path.join(proxy, module, "@v")
    os.makedirs(d, exist_ok=True)
    with zipfile.ZipFile(os.path.join(d, version + ".zip"), "w", zipfile.ZIP_DEFLATED) as z:
        for dirpath, _, files in os.walk(src):
            for name in sorted(files):
                path = os.path.join(dirpath, name)
                z.write(path, f"{module}@{version}/" + os.path.relpath(path, src))
    with open(os.path.join(src, "go.mod")) as f, open(os.path.join(d, version + ".mod"), "w") as m:
        m.write(f.read())
    with open(os.path.join(d, version + ".info"), "w") as info:
        json.dump({"Version": version, "Time": "2026-01-01T00:00:00Z"}, info)
    with open(os.path.join(d, "list"), "w") as listing:
        listing.write(version + "\n")
PY
echo "dist: $module $version and $platform_module ($(du -h "$plat_dir/libbreakwater.a" | cut -f1) library) in $out"
