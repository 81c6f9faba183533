#!/usr/bin/env bash
# The `tower` feature's suite: breakwater's own tower unit tests and doctests, then the
# integration crate tests/tower-it (an axum upstream and hyper's client over loopback,
# on tokio's paused clock; its README quick-start examples are compiled and run too).
# The integration crate has its own workspace, so the main crate's builds never compile
# axum or hyper; it builds into this repository's target/ to share the registry deps.
#
#   bash scripts/tower.sh            # the tests (about 20 s once built)
#   BENCH=1 bash scripts/tower.sh    # and the overhead benchmark against
#                                    # tower-resilience and tower (a few minutes)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
export CARGO_INCREMENTAL=0
# The integration crate builds into this repository's target/ (criterion writes its
# reports under it too).
export CARGO_TARGET_DIR="$ROOT/target"

start=$(date +%s)
mkdir -p target
# One step: its output is kept in a log, printed whole when it fails. Each is bounded by
# `timeout`, so a hang (a permit never released, a wait never woken) fails the run.
step() {
  local name=$1 log="target/tower-$1.log"
  shift
  if ! timeout 900 "$@" >"$log" 2>&1; then
    cat "$log"
    echo "$name: FAILED"
    exit 1
  fi
  # The runner's summary lines (libtest's, or criterion's in test mode).
  grep -E '^test result|^Testing ' "$log" | sed "s/^/$name: /" || true
}
step lib cargo test --features tower --lib -- tower:: policy::owned
step doc cargo test --features tower --doc -- tower owned
step it bash -c "cd tests/tower-it && cargo test"
# The benchmark, compiled and run once per case in test mode (so it cannot rot).
step bench bash -c "cd tests/tower-it && cargo test --bench overhead"
if [ "${BENCH:-0}" = 1 ]; then
  (cd tests/tower-it && cargo bench --bench overhead)
fi
echo "tower: ok in $(( $(date +%s) - start )) s"
