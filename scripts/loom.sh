#!/usr/bin/env bash
# The loom models: every interleaving (up to LOOM_MAX_PREEMPTIONS preemptions, default 2)
# of each model in tests/loom_*.rs, built in release with `--cfg loom` into target/loom so
# the normal builds stay warm.
#
#   bash scripts/loom.sh                 # every model
#   bash scripts/loom.sh loom_breaker    # one file's models
#   LOOM_MAX_PREEMPTIONS=3 bash scripts/loom.sh loom_limiter   # a deeper search
set -euo pipefail
cd "$(dirname "$0")/.."
export LOOM_MAX_PREEMPTIONS="${LOOM_MAX_PREEMPTIONS:-2}"
export RUSTFLAGS="--cfg loom -C debug-assertions"
export CARGO_TARGET_DIR="$PWD/target/loom"
if [ $# -eq 0 ]; then
  exec cargo test --release --test 'loom_*'
fi
args=()
for model in "$@"; do args+=(--test "$model"); done
exec cargo test --release "${args[@]}"
