#!/usr/bin/env bash
# The conformance suite (tests/conformance/README.md): every scenario through each
# runner, which must all pass the same number of scenarios.
#
#   bash scripts/conformance.sh
#
# Runners: Rust (`cargo test --test conformance`, the public API) and C
# (`make -C bindings/c conformance`, the header and the static library). Each prints
# "conformance: N scenarios passed"; the script fails when a runner fails, prints no
# such line, or reports another count than the number of scenario files.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_INCREMENTAL=0

expected=$(find tests/conformance/scenarios -maxdepth 1 -name '*.json' | wc -l)
echo "== conformance: $expected scenario files"
logdir=target/conformance
mkdir -p "$logdir"

declare -A counts=()
status=0

# run NAME COMMAND...: runs one runner with a time bound, keeps its summary count.
run() {
  local name=$1
  shift
  local log="$logdir/$name.log"
  local started=$SECONDS
  if timeout 600 "$@" >"$log" 2>&1; then :; else
    echo "FAILED: $name runner (log: $log)"
    grep -E '^FAIL |error' "$log" | head -n 40 || tail -n 40 "$log"
    status=1
  fi
  local line
  line=$(grep -E '^conformance: [0-9]+ scenarios passed' "$log" | tail -n 1 || true)
  echo "$name: ${line:-no summary line} ($((SECONDS - started)) s)"
  if [ -n "$line" ]; then
    counts[$name]=$(echo "$line" | sed -E 's/^conformance: ([0-9]+) scenarios passed.*/\1/')
  else
    status=1
  fi
}

run rust cargo test --features cli,tracing,capi --test conformance
run c make -C bindings/c conformance

for name in "${!counts[@]}"; do
  if [ "${counts[$name]}" != "$expected" ]; then
    echo "FAILED: the $name runner passed ${counts[$name]} of $expected scenarios"
    status=1
  fi
done
if [ "$status" -eq 0 ]; then
  echo "conformance: every runner passed all $expected scenarios"
fi
exit "$status"
