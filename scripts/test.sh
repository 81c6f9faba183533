#!/usr/bin/env bash
# The one test command: every suite of breakwater, installing what is missing.
#
#   bash scripts/test.sh
#
# Suites (the README lists what each covers): rustfmt, clippy, rustdoc, header, cargo
# test (debug and release), loom, the C suite, Python, Go, quick starts, conformance
# (Rust, C, Go, Python), telemetry, tower, and where a nightly toolchain exists ASan,
# TSan and fuzzing. Every suite runs even when an earlier one failed; the script exits
# non-zero if any failed and ends with each runner's summary lines and one count.
#
# The suites run in two lanes at once, so one lane's single-threaded test runs use the
# core the other lane's builds leave idle. The lanes never build into the same cargo
# target directory at the same time: lane 1 holds target/debug (and loom, tsan), lane 2
# target/release (and the Python extension, asan, fuzz). Each suite's output goes to
# target/test-logs/SUITE.log and is printed whole, in suite order, once both lanes end.
set -uo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
export CARGO_TERM_COLOR=never
export PROPTEST_CASES="${PROPTEST_CASES:-2000}"
export LOOM_MAX_PREEMPTIONS="${LOOM_MAX_PREEMPTIONS:-2}"

# No build here writes into the tree: every build with the C ABI writes its freshly
# generated header into target/ (build.rs honours BW_HEADER_OUT), and the header suite
# compares it with the committed one. One setting for every build, so the C library that
# the header suite builds is the one the C, Go and quick-start suites link, unrebuilt.
export BW_HEADER_OUT="$ROOT/target/header-check/breakwater.h"
# Line tables are all a failing test's backtrace needs; full debug info makes every one
# of the ~50 test binaries, and each release build, slower to compile and link.
export CARGO_PROFILE_DEV_DEBUG="${CARGO_PROFILE_DEV_DEBUG:-line-tables-only}"
export CARGO_PROFILE_RELEASE_DEBUG="${CARGO_PROFILE_RELEASE_DEBUG:-line-tables-only}"
mkdir -p "$ROOT/target"

# Every optional part of the library, so lints, docs and tests see all of it (the
# release run leaves out only the command-line tool, see below).
FEATURES="cli,tracing,capi,tower,fleet,opentelemetry"
LIB_FEATURES="tracing,capi,tower"

LOGS="$ROOT/target/test-logs"
rm -rf "$LOGS"
mkdir -p "$LOGS"

slug() { printf '%s' "${1// /_}"; }
# say TITLE: the heading above each suite's output in the final report.
say() { printf '\n==> %s\n' "$*"; }

# run NAME CMD...: runs one suite into its log and records its exit status and time.
run() {
  local name=$1
  shift
  local log
  log="$LOGS/$(slug "$name").log"
  local start=$SECONDS
  # A subshell, so a suite's exports and directory changes stay its own.
  ("$@") >"$log" 2>&1 </dev/null
  local rc=$?
  local took=$((SECONDS - start))
  echo "$rc $took" >"$LOGS/$(slug "$name").result"
  if [ "$rc" -eq 0 ]; then
    echo "--- $name: ok (${took}s)"
  else
    echo "--- $name: FAILED (exit $rc, ${took}s)"
  fi
}

skip() {
  echo "skipped: $2" >"$LOGS/$(slug "$1").log"
  echo "skip 0" >"$LOGS/$(slug "$1").result"
  echo "--- $1: skipped ($2)"
}

ensure_tool() {
  # ensure_tool COMMAND DEBIAN_PACKAGE
  command -v "$1" >/dev/null 2>&1 && return 0
  echo "installing $2 (for $1)"
  if [ "$(id -u)" -eq 0 ]; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2") >/dev/null 2>&1
  elif command -v sudo >/dev/null 2>&1; then
    (sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2") >/dev/null 2>&1
  fi
  command -v "$1" >/dev/null 2>&1 && return 0
  echo "missing prerequisite: $1 (install the Debian package '$2', e.g. apt-get install $2)"
  return 1
}

# 1. Formatting and lints.
lints() {
  if cargo fmt --version >/dev/null 2>&1; then
    run "rustfmt" cargo fmt --all -- --check
  else
    skip "rustfmt" "rustfmt component not installed"
  fi
  if cargo clippy --version >/dev/null 2>&1; then
    run "clippy" cargo clippy --all-targets --features "$FEATURES" -- -D warnings
  else
    skip "clippy" "clippy component not installed"
  fi
  # The library as a dependent builds it (no feature), warnings as errors: code only a
  # feature uses must not warn without it (clippy above sees every feature at once).
  run "lib warnings" cargo rustc --lib -- -D warnings
  run "package" package_contents
}

docs() {
  RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --features "$FEATURES"
}

# 1b. The published crate (`cargo package --list`, offline, no build): no warning from
#     the manifest, nothing outside what a user needs (Cargo.toml's `include` says what),
#     and every file a packaged source includes (`#[path]`, `include_str!`,
#     `include_bytes!`) packaged too, so the crate builds from what it ships.
package_contents() {
  local list warnings status=0 file dir inc resolved
  list=$(cargo package --list --offline --allow-dirty 2>"$LOGS/package-list.stderr") || {
    cat "$LOGS/package-list.stderr"
    return 1
  }
  warnings=$(grep -i 'warning' "$LOGS/package-list.stderr")
  [ -z "$warnings" ] || { echo "$warnings"; status=1; }
  echo "$(printf '%s\n' "$list" | wc -l) files in the package"
  if printf '%s\n' "$list" | grep -E '^(target|tests|benches|fuzz|bindings|scripts|\.ci)/'; then
    echo "^ not part of the published crate (see include in Cargo.toml)"
    status=1
  fi
  while IFS= read -r file; do
    dir=$(dirname "$file")
    while IFS= read -r inc; do
      [ -n "$inc" ] || continue
      resolved=$(realpath -m --relative-to="$ROOT" "$ROOT/$dir/$inc")
      printf '%s\n' "$list" | grep -qxF "$resolved" || {
        echo "$file includes $inc ($resolved), which is not in the package"
        status=1
      }
    done < <(grep -oE '(#\[path = |include_str!\(|include_bytes!\()"[^"]+"' "$file" | sed -E 's/.*"([^"]+)"$/\1/')
  done < <(printf '%s\n' "$list" | grep -E '\.rs$')
  [ "$status" -eq 0 ] && echo "package: every included file is packaged, no warnings"
  return "$status"
}

# 2. The committed C header must equal the one the C library's build generated.
header_fresh() {
  mkdir -p "$(dirname "$BW_HEADER_OUT")"
  # build.rs reruns whenever src/ffi, cbindgen.toml or the committed header change, so
  # the generated copy always matches the sources; if it went missing, make it rerun.
  # (Only in a tree built before: a fresh one runs build.rs anyway.)
  [ -f "$BW_HEADER_OUT" ] || [ ! -d target/release/build ] || touch build.rs
  make -C bindings/c lib || return 1
  if ! cmp -s include/breakwater.h "$BW_HEADER_OUT"; then
    echo "include/breakwater.h is stale: run 'make -C bindings/c lib' (which regenerates it) and commit it"
    diff -u include/breakwater.h "$BW_HEADER_OUT" | head -n 40
    return 1
  fi
  echo "include/breakwater.h is up to date"
}

# 3. Rust tests: unit, integration, property, doc tests, the CLI end to end, and the
#    fleet-wide quotas against a real redis-server each test starts on loopback.
# The same tests in the release profile: an optimiser must not make a test meaningless.
# (Without the command-line tool: its tests drive the binary end to end, which the debug
# run covers, and its renderer is the slowest dependency to optimise.)

# 4. Loom models (release, their own target dir so normal builds stay warm; one model
#    file alone: bash scripts/loom.sh loom_breaker).
loom_models() {
  bash scripts/loom.sh
}

# 5. The C suite: static and shared library, C and C++ header checks, pkg-config,
#    valgrind.
c_suite() {
  if command -v valgrind >/dev/null 2>&1; then
    make -C bindings/c test VALGRIND=1
  else
    echo "missing prerequisite: valgrind (install the Debian package 'valgrind')"
    return 1
  fi
}

# 6. Python: the package (PyO3 over the C ABI) built into a venv under target/, then
#    mypy --strict on the package, its tests and the quick start, and its pytest suite
#    (the Prometheus exposition parsed by prometheus_client among them).
python_suite() {
  local venv="$ROOT/target/venv"
  if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv" || return 1
  fi
  if ! "$venv/bin/python" -c 'import auditwheel, maturin, mypy, prometheus_client, pytest, opentelemetry.sdk' 2>/dev/null; then
    "$venv/bin/pip" install -q auditwheel maturin mypy prometheus_client pytest opentelemetry-api \
      opentelemetry-sdk || return 1
  fi
  # The extension builds under target/python-ext (bindings/python/.cargo/config.toml),
  # unoptimised: the suite checks behaviour, the benchmarks (bench/) measure speed.
  (cd bindings/python && VIRTUAL_ENV="$venv" "$venv/bin/maturin" develop -q) || return 1
  "$venv/bin/python" -m mypy --strict --cache-dir "$ROOT/target/mypy-cache" \
    bindings/python/python/breakwater bindings/python/tests bindings/python/examples \
    examples/quickstart/python || return 1
  grep -q 'breakwater.calls' <<<"$("$venv/bin/python" bindings/python/examples/otel_console.py)" || {
    echo "the OpenTelemetry console example printed no breakwater.calls"
    return 1
  }
  "$venv/bin/python" -m pytest -q -p no:cacheprovider bindings/python/tests || return 1
  # What a user runs: `pip install ./bindings/python` into a fresh environment with no
  # environment variable (an optimised build), then the release wheel of the same build
  # checked by auditwheel (the manylinux tag it is consistent with).
  local fresh="$ROOT/target/venv-install"
  rm -rf "$fresh" "$ROOT/target/wheels"
  python3 -m venv "$fresh" || return 1
  (cd "$ROOT/target" && env -u VIRTUAL_ENV "$fresh/bin/pip" install -q "$ROOT/bindings/python") || return 1
  "$fresh/bin/python" -c 'import breakwater as bw
p = bw.Policy.from_toml("[policies.p.circuit_breaker]\n")
p.acquire().complete("success")
print("pip install ./bindings/python: imported, one call through", p.snapshot().name)' || return 1
  (cd bindings/python && "$venv/bin/maturin" build --release -q -o "$ROOT/target/wheels") || return 1
  local shown
  shown=$("$venv/bin/auditwheel" show "$ROOT"/target/wheels/breakwater-*.whl) || return 1
  grep -q 'consistent *with the following platform tag: "manylinux' <<<"$(tr '\n' ' ' <<<"$shown")" || {
    echo "auditwheel does not accept the release wheel:"; echo "$shown"; return 1
  }
  echo "auditwheel show: $(grep -o '"manylinux[^"]*"' <<<"$shown" | head -1) accepted"
}

# 6b. Go: the module's format, vet, race tests (every handle, 16 goroutines), the
#     benchmarks compiled and run once, and a module outside the repository built with
#     plain `go build` against the dist layout.
# Go's build cache does not hash a header or library outside the package: the cgo
# builds below are keyed on them (through CGO_CFLAGS), so a rebuilt library is never
# tested through a stale cgo build.
go_build_flags() {
  echo "-O2 -g -DBREAKWATER_BUILD=$(cat include/breakwater.h target/release/libbreakwater.a | sha256sum | cut -c1-16)"
}

go_suite() {
  if ! command -v go >/dev/null 2>&1; then
    echo "missing prerequisite: go 1.26 or later on PATH (the go directive of bindings/go/benchmarks and bindings/go/otel; bindings/go itself needs 1.24): get it from the Go download page, https://go.dev/dl/ (Debian 12's golang-go is 1.19, too old)"
    return 1
  fi
  make -C bindings/c lib || return 1
  local flags
  flags=$(go_build_flags)
  (
    export CGO_CFLAGS="$flags"
    cd bindings/go || exit 1
    unformatted=$(gofmt -l . ../../examples/quickstart/go)
    if [ -n "$unformatted" ]; then
      echo "gofmt -l: $unformatted"
      exit 1
    fi
    go vet ./... || exit 1
    out="" rc=0 passed=0 failed=0
    out=$(go test -race -count=1 -v ./... 2>&1)
    rc=$?
    printf '%s\n' "$out" | grep -E '^(--- FAIL|FAIL|ok|panic:)|_test.go:[0-9]+:|^conformance: ' || true
    passed=$(printf '%s\n' "$out" | grep -c '^--- PASS')
    failed=$(printf '%s\n' "$out" | grep -c '^--- FAIL')
    echo "$passed passed, $failed failed (go test -race)"
    [ "$rc" -eq 0 ] || exit 1
    (cd benchmarks && go vet ./... && go test -count=1 -run '^$' -bench . -benchtime 1x ./...) || exit 1
    ./outside_test.sh || exit 1
    # The optional OpenTelemetry module (its own go.mod, so the main module never
    # depends on OpenTelemetry): SDK ManualReader and tracetest, and its example.
    cd otel || exit 1
    go vet ./... || exit 1
    out=$(go test -race -count=1 -v ./... 2>&1)
    rc=$?
    printf '%s\n' "$out" | grep -E '^(--- FAIL|FAIL|ok|panic:)|_test.go:[0-9]+:' || true
    echo "$(printf '%s\n' "$out" | grep -c '^--- PASS') passed, $(printf '%s\n' "$out" | grep -c '^--- FAIL') failed (go test -race, otel)"
    [ "$rc" -eq 0 ] || exit 1
    grep -q 'breakwater.calls' <<<"$(go run ./example)" || { echo "the Go console example printed no breakwater.calls"; exit 1; }
  )
}

# 7. The README's quick starts run as written (Go through the C ABI; Python with the
#    package python_suite installed in target/venv).
quickstarts() {
  make -C bindings/c lib || return 1
  echo "-- python"
  "$ROOT/target/venv/bin/python" examples/quickstart/python/quickstart.py || return 1
  echo "-- go"
  if command -v go >/dev/null 2>&1; then
    (cd examples/quickstart/go && CGO_CFLAGS="$(cd ../../.. && go_build_flags)" go run .) || return 1
  else
    echo "missing prerequisite: go 1.24 or later on PATH (the go directive of examples/quickstart/go): get it from the Go download page, https://go.dev/dl/ (Debian 12's golang-go is 1.19, too old)"
    return 1
  fi
  echo "-- rust"
  cargo run --release --example breaker_flaky || return 1
  echo "quickstarts: 3 passed, 0 failed"
}

# 7a. Conformance: the same scenarios (tests/conformance) through the public API of each
#     language. The Rust, Go and Python runners ran inside their suites above; the C one
#     runs here. Fails unless all four passed every scenario file.
conformance_suite() {
  local expected status=0 log line count
  expected=$(find tests/conformance/scenarios -maxdepth 1 -name '*.json' | wc -l)
  echo "$expected scenario files"
  make -C bindings/c conformance >"$ROOT/target/test-logs/conformance_c.log" 2>&1 ||
    status=1
  for runner in rust:cargo_test c:conformance_c go:go python:python; do
    log="$ROOT/target/test-logs/${runner#*:}.log"
    line=$(grep -hE '^conformance: [0-9]+ scenarios passed' "$log" 2>/dev/null | tail -n 1)
    count=$(printf '%s' "$line" | sed -E 's/^conformance: ([0-9]+) scenarios passed.*/\1/')
    echo "${runner%%:*}: ${line:-no summary line (see $log)}"
    [ "$count" = "$expected" ] && [ "$line" = "conformance: $count scenarios passed" ] || status=1
  done
  [ "$status" -eq 0 ] && echo "conformance: 4 runners passed $expected scenarios each"
  return "$status"
}

# 7c. OpenTelemetry with the real Rust SDK (tests/otel-it, its own workspace: every
#     instrument equals the snapshot, a trip carries its call's trace) and the console
#     example. The Go and Python SDK tests ran in their suites.
telemetry_suite() {
  cargo test --manifest-path tests/otel-it/Cargo.toml --target-dir "$ROOT/target" || return 1
  # Captured, then grepped: `grep -q` at the end of a pipe exits at the first match,
  # and the exporter's next write then dies of a broken pipe (a failed suite).
  local printed
  printed=$(cargo run -q --manifest-path tests/otel-it/Cargo.toml --target-dir "$ROOT/target" \
    --example console) || return 1
  grep -q 'breakwater.calls' <<<"$printed" || {
    echo "the Rust console example printed no breakwater.calls"
    return 1
  }
  echo "telemetry: the console example exported breakwater.calls"
}

# 7b. The tower layer around a real axum server and hyper client over loopback, on
#     tokio's paused clock (tests/tower-it: its own workspace, so the main crate's builds
#     never compile axum or hyper; the lib's own tower tests ran in `cargo test`), and
#     its overhead benchmark run once so it cannot rot.
tower_suite() {
  (cd tests/tower-it && CARGO_TARGET_DIR="$ROOT/target" cargo test &&
    CARGO_TARGET_DIR="$ROOT/target" cargo test --bench overhead)
}

# 8. Sanitizers, where a nightly toolchain exists.
# AddressSanitizer where there is unsafe code: the library's unit tests (the C ABI's
# among them), the tests that drive the C ABI from Rust, and the C suite linked against
# an ASan-built static library (one debug build of the dependencies serves both).
asan() {
  local flags="-Zsanitizer=address -Cunsafe-allow-abi-mismatch=sanitizer"
  local target=x86_64-unknown-linux-gnu
  export RUSTFLAGS="$flags" CARGO_TARGET_DIR="$ROOT/target/asan"
  ASAN_OPTIONS=detect_leaks=1 PROPTEST_CASES=64 \
    cargo +nightly test --target "$target" --features capi \
    --lib --test alloc_ffi --test fuzz_regressions --test hostwide || return 1
  cargo +nightly rustc --target "$target" --lib --features capi \
    --crate-type staticlib || return 1
  make -C bindings/c test-asan ASAN_LIB_DIR="$CARGO_TARGET_DIR/$target/debug"
}
tsan() {
  RUSTFLAGS="-Zsanitizer=thread -Cunsafe-allow-abi-mismatch=sanitizer" \
    CARGO_TARGET_DIR="$ROOT/target/tsan" TSAN_OPTIONS="halt_on_error=1 suppressions=$ROOT/scripts/tsan.supp" PROPTEST_CASES=16 \
    cargo +nightly test --target x86_64-unknown-linux-gnu --test 'stress_*'
}


# The prerequisites, installed before the lanes start (one package manager at a time).
ensure_tool redis-server redis-server || true
ensure_tool pkg-config pkg-config || echo "pkg-config could not be installed: its check will say SKIP"
ensure_tool valgrind valgrind || true
# `script` (Debian's bsdutils, essential): the CLI test of the demo's screen on an
# 80-column terminal runs the demo under it, and fails without it.
ensure_tool script bsdutils || true
NIGHTLY=0
rustup toolchain list 2>/dev/null | grep -q '^nightly' && NIGHTLY=1

nightly() {
  if [ "$NIGHTLY" -eq 1 ]; then
    run "$@"
  else
    skip "$1" "no nightly toolchain: rustup toolchain install nightly"
  fi
}

# Lane 1: the debug builds (lints, docs, tests, the integration crates), loom, TSan.
lane1() {
  lints
  run "rustdoc" docs
  run "cargo test" cargo test --features "$FEATURES"
  run "telemetry" telemetry_suite
  run "tower" tower_suite
  run "loom" loom_models
  nightly "tsan" tsan
}

# Lane 2: the release builds (the C library and what links it), Python, ASan, fuzzing.
lane2() {
  run "header" header_fresh
  # The tests again in the release profile: an optimiser must not make a test
  # meaningless. (Without the command-line tool: its tests drive the binary end to end,
  # which the debug run covers, and its renderer is the slowest dependency to optimise.)
  run "cargo test --release" cargo test --release --features "$LIB_FEATURES" --tests
  run "c suite" c_suite
  run "python" python_suite
  run "go" go_suite
  run "quickstarts" quickstarts
  nightly "asan" asan
  # Every fuzz target for a bounded time (60 s in all); scripts/fuzz.sh runs them for
  # hours with FUZZ_SECONDS.
  nightly "fuzz" bash scripts/fuzz.sh
}

started=$SECONDS
lane1 &
lane1_pid=$!
lane2 &
lane2_pid=$!
wait "$lane1_pid" "$lane2_pid"
# After both lanes: it reads the Rust, Go and Python runners' logs.
run "conformance" conformance_suite

ORDER=("rustfmt" "clippy" "rustdoc" "header" "cargo test" "cargo test --release" "loom"
  "c suite" "python" "go" "quickstarts" "conformance" "telemetry" "tower" "asan" "tsan"
  "fuzz")
ORDER+=("lib warnings" "package")
passed=0
failed=0
skipped=0
failures=()
summaries=()
times=()
for name in "${ORDER[@]}"; do
  log="$LOGS/$(slug "$name").log"
  result="$LOGS/$(slug "$name").result"
  say "$name"
  cat "$log" 2>/dev/null
  read -r rc took <"$result" 2>/dev/null || { rc=missing took=0; }
  while IFS= read -r line; do summaries+=("$name: $line"); done < <(
    grep -E '^test result:|^[0-9]+ passed, [0-9]+ failed|[0-9]+ passed.* in [0-9.]+s|^conformance: |^fuzz targets: |^skipped: ' "$log" 2>/dev/null | tail -n 40)
  case "$rc" in
    0) passed=$((passed + 1)); echo "--- $name: ok (${took}s)"; times+=("$name ${took}s") ;;
    skip) skipped=$((skipped + 1)); echo "--- $name: skipped" ;;
    *) failed=$((failed + 1)); failures+=("$name"); echo "--- $name: FAILED (exit $rc, ${took}s)"; times+=("$name ${took}s") ;;
  esac
done

say "summary"
for s in "${summaries[@]}"; do echo "$s"; done
echo "times: ${times[*]}; wall $((SECONDS - started))s (two lanes)"
if [ ${#failures[@]} -gt 0 ]; then
  echo "failed suites: ${failures[*]}"
fi
echo "suites: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
