#!/usr/bin/env bash
# Fleet quotas against a real redis-server (installed with apt-get when missing): the
# suite tests/fleet.rs (4 processes on one quota, fleet concurrency, Redis killed,
# restarted and paused, bad address and credentials; ~10 s once built), then the benchmark benches/fleet.rs (fleet vs local hot path, round trips
# per 1,000 admissions beside a naive GCRA; ~20 s once built).
#
#   bash scripts/fleet.sh              # tests and bench
#   FLEET_BENCH=0 bash scripts/fleet.sh  # tests only
#
# Each test starts its own redis-server on a free loopback port with persistence off
# and stops it at the end, also when the test fails.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_INCREMENTAL=0
export CARGO_TERM_COLOR=never

if ! command -v redis-server >/dev/null 2>&1; then
  echo "installing redis-server (apt-get)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
  # The package starts a system service on the default port; the tests need only
  # the binary.
  service redis-server stop >/dev/null 2>&1 || true
fi

# The module's pure parts (batch size, backoff, address, config) are built and unit
# tested in every configuration, so the main test command covers them; here the
# suite that needs the feature and a server.
timeout 900 cargo test --features fleet --test fleet 2>&1 | tail -n 12

if [ "${FLEET_BENCH:-1}" != 0 ]; then
  timeout 900 cargo bench --features fleet --bench fleet 2>&1 \
    | grep -E "^(fleet_vs_local|fleet round trips|fleet hot path)|time:|Benchmarking .*: Analyzing" \
    | grep -v "Analyzing"
fi
