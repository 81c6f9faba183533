//! Fuzzing the conformance scenario format and the Rust runner: any bytes are read as a
//! scenario (`tests/conformance/README.md`) and, when they are one, run against a fresh
//! engine. A malformed scenario or a scenario whose expectations fail is an answer; a
//! panic anywhere (the reader, the interpreter, the library under it) is a bug. Seeds:
//! the suite's own scenarios, `tests/conformance/scenarios/` (`scripts/fuzz.sh` copies
//! them into the run's corpus), so they are not duplicated under `fuzz/corpus/`.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../tests/conformance/runner/mod.rs"]
mod runner;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(scenario) = runner::scenario::parse(text, None) {
        let _ = runner::run::run(&scenario);
    }
});
