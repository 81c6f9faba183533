#!/usr/bin/env bash
# The telemetry suite: OpenTelemetry instruments, trace context on events and structured
# logs, against each language's real SDK (in-memory readers and exporters), plus the
# console examples of docs/telemetry.md.
#
#   bash scripts/telemetry.sh
#
# 1. Rust: the names table and trace context (lib + tests/telemetry_trace.rs,
#    tests/events_tracing.rs), then tests/otel-it (its own workspace: opentelemetry_sdk)
#    and its console example.
# 2. Go: bindings/go/otel (its own module): vet, race tests with sdk/metric's
#    ManualReader and tracetest, the console example.
# 3. Python: breakwater.otel with opentelemetry-sdk's InMemoryMetricReader and
#    InMemorySpanExporter in target/venv, mypy --strict, the console example.
# Ends with one summary line; exits non-zero if any part failed.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
export CARGO_TERM_COLOR=never CARGO_INCREMENTAL=0
start=$SECONDS
results=()

echo "==> rust"
cargo test -q --features tracing,capi --lib telemetry
cargo test -q --features tracing,capi --lib ffi::trace
cargo test -q --features tracing,capi --test telemetry_trace --test events_tracing
cargo test -q --manifest-path tests/otel-it/Cargo.toml --target-dir "$ROOT/target"
out=$(cargo run -q --manifest-path tests/otel-it/Cargo.toml --target-dir "$ROOT/target" --example console)
grep -q 'breakwater.calls' <<<"$out" || { echo "the Rust console example printed no breakwater.calls"; exit 1; }
results+=("rust ok")

echo "==> go"
if ! command -v go >/dev/null; then
  apt-get install -y -q golang-go >/dev/null
fi
make -s -C bindings/c lib
(
  cd bindings/go/otel
  test -z "$(gofmt -l . ..)" || { gofmt -l . ..; exit 1; }
  go vet ./...
  go test -race -count=1 ./...
  grep -q 'breakwater.calls' <<<"$(go run ./example)"
)
results+=("go ok")

echo "==> python"
venv="$ROOT/target/venv"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -c 'import maturin, mypy, pytest, opentelemetry.sdk' 2>/dev/null ||
  "$venv/bin/pip" install -q maturin mypy pytest prometheus_client opentelemetry-api opentelemetry-sdk
(cd bindings/python && VIRTUAL_ENV="$venv" "$venv/bin/python" -m maturin develop --release -q)
"$venv/bin/python" -m mypy --strict --cache-dir "$ROOT/target/mypy-cache" \
  bindings/python/python/breakwater bindings/python/tests/test_otel.py \
  bindings/python/examples/otel_console.py
"$venv/bin/python" -m pytest -q -p no:cacheprovider bindings/python/tests/test_otel.py \
  bindings/python/tests/test_guards.py
grep -q 'breakwater.calls' <<<"$("$venv/bin/python" bindings/python/examples/otel_console.py)"
results+=("python ok")

echo "telemetry: ${results[*]} in $((SECONDS - start)) s"
