//! The invariants breakwater's fuzz targets check, shared with the ordinary test suite
//! (`tests/fuzz_regressions.rs` includes `invariants.rs` and replays every committed
//! regression input), so a crash the fuzzer found stays a named, fast test.

pub mod generate;
pub mod invariants;
