#!/usr/bin/env bash
# Host scope: real processes sharing one breaker, limiter and bulkhead through a
# shared-memory segment (tests/hostwide.rs: 40 processes on one limiter, a breaker
# tripped in one process, one half-open probe host-wide, kill -9 of permit holders over
# 100 cycles, named errors for bad segments, reload), the lease unit tests, and the loom
# models of the lease and reclaim races (tests/loom_hostwide.rs).
#
#   bash scripts/hostwide.sh          # all of it
#   HOSTWIDE_LOOM=0 bash scripts/hostwide.sh   # without the loom models
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_INCREMENTAL=0

if [ ! -d /dev/shm ]; then
  echo "hostwide: /dev/shm is missing (POSIX shared memory is needed)" >&2
  exit 1
fi

start=$(date +%s)
{ timeout 900 cargo test --features cli,tracing,capi --test hostwide 2>&1 &&
  timeout 900 cargo test --features cli,tracing,capi --lib shm:: 2>&1; } \
  | tee target/hostwide.log | grep -E '^test result|FAILED|panicked' || true
grep -q 'FAILED\|error\[' target/hostwide.log && { echo "hostwide: FAILED"; exit 1; }
[ "$(grep -c '^test result: ok' target/hostwide.log)" -ge 2 ] || { echo "hostwide: FAILED"; exit 1; }

if [ "${HOSTWIDE_LOOM:-1}" != 0 ]; then
  RUSTFLAGS="--cfg loom -C debug-assertions" CARGO_TARGET_DIR=target/loom LOOM_MAX_PREEMPTIONS=2 \
    timeout 1200 cargo test --release --test loom_hostwide 2>&1 \
    | tee target/hostwide-loom.log | grep -E '^test result|FAILED|panicked' || true
  grep -q '^test result: ok' target/hostwide-loom.log || { echo "hostwide loom: FAILED"; exit 1; }
fi

# Segments of a run that was killed part-way (names carry the test process's pid).
for f in /dev/shm/breakwater.bwtest-*; do
  [ -e "$f" ] || continue
  pid=${f#/dev/shm/breakwater.bwtest-}; pid=${pid%%-*}
  kill -0 "$pid" 2>/dev/null || rm -f "$f"
done
echo "hostwide: ok in $(( $(date +%s) - start ))s"
