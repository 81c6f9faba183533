#!/usr/bin/env bash
# Runs every fuzz target (fuzz/fuzz_targets/) for a bounded time, with cargo-fuzz on the
# nightly toolchain (installed from the registry when missing).
#
#   bash scripts/fuzz.sh                      # the test command's run: 60 s in all
#   FUZZ_SECONDS=14400 bash scripts/fuzz.sh   # four hours, split across the targets
#   bash scripts/fuzz.sh policy_file          # one target
#
# Seeds come from fuzz/corpus/TARGET and fuzz/regressions/TARGET (and, for
# conformance_scenario, tests/conformance/scenarios); the growing corpus
# lives in target/fuzz-corpus/ so the tree stays clean. An input that runs for more than
# 10 s is a hang and fails like a crash. A crash stops the run with its
# input in fuzz/artifacts/TARGET/: add it to fuzz/regressions/TARGET/ and give it a
# named test in tests/fuzz_regressions.rs.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "installing cargo-fuzz (cargo install cargo-fuzz --locked)"
  cargo install cargo-fuzz --locked >/dev/null
fi

if [ $# -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(ls fuzz/fuzz_targets | sed 's/\.rs$//')
fi
total=${FUZZ_SECONDS:-60}
per=$(( total / ${#targets[@]} ))
[ "$per" -ge 1 ] || per=1

passed=0
failed=0
for target in "${targets[@]}"; do
  corpus="$ROOT/target/fuzz-corpus/$target"
  mkdir -p "$corpus"
  seed_dirs=("fuzz/corpus/$target" "fuzz/regressions/$target")
  # The conformance scenarios are the seeds of their own format's target.
  [ "$target" = conformance_scenario ] && seed_dirs+=(tests/conformance/scenarios)
  for seeds in "${seed_dirs[@]}"; do
    [ -d "$seeds" ] && cp -n "$seeds"/* "$corpus"/ 2>/dev/null || true
  done
  # The generator of policy_file_structured needs room: a few KB of choices make a
  # file of several policies (libFuzzer's default is the largest seed's length).
  extra=()
  [ "$target" = policy_file_structured ] && extra+=(-max_len=4096)
  echo "== $target: ${per}s"
  log="$ROOT/target/fuzz-$target.log"
  if cargo +nightly fuzz run --target-dir "$ROOT/target/fuzz" "$target" "$corpus" -- \
      -max_total_time="$per" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
      ${extra[@]+"${extra[@]}"} >"$log" 2>&1; then
    passed=$((passed + 1))
    grep -E '^stat::number_of_executed_units|^stat::peak_rss_mb|cov: ' "$log" | tail -n 3
  else
    failed=$((failed + 1))
    tail -n 60 "$log"
    echo "FAILED: $target (input in fuzz/artifacts/$target/)"
  fi
done
# shm_segment's segments (/dev/shm/breakwater.fuzz-PID): libFuzzer exits without cleanup.
rm -f /dev/shm/breakwater.fuzz-*
echo "fuzz targets: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
