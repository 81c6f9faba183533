//! Fuzzing the simulator's scenario files (`breakwater simulate --scenario FILE.toml`):
//! any bytes are read as a scenario by the command's own reader. Invariants: no panic;
//! a refusal names the file in every line; an accepted scenario stays inside the bounds
//! the reader promises (a run of at most ten minutes and two million requests, shares
//! and probabilities in `[0, 1]`, latency ranges in order, phases that end after they
//! start), so the simulation that follows is bounded. Seeds:
//! `fuzz/corpus/simulator_scenario/`.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[allow(dead_code)]
#[path = "../../src/bin/breakwater/scenario.rs"]
mod scenario;
#[allow(dead_code)]
#[path = "../../src/bin/breakwater/scenario_file.rs"]
mod scenario_file;
#[path = "../../src/bin/breakwater/shorten.rs"]
mod shorten;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match scenario_file::parse("fuzz.toml", text, 16) {
        Err(errors) => {
            assert!(!errors.is_empty(), "a refusal says why");
            for line in &errors {
                assert!(line.starts_with("fuzz.toml"), "{line}");
            }
        }
        Ok(spec) => {
            assert!(
                spec.seconds > 0.0 && spec.seconds <= 600.0,
                "{}",
                spec.seconds
            );
            let peak = spec.phases.iter().map(|p| p.traffic).fold(1.0, f64::max);
            assert!(spec.rate > 0.0 && spec.rate * peak * spec.seconds <= 2_000_000.0);
            assert!((0.0..=1.0).contains(&spec.checkout_share));
            assert!(spec.workers >= 1 && spec.client_timeout > 0.0);
            let behaviours =
                std::iter::once(&spec.payment).chain(spec.phases.iter().map(|p| &p.payment));
            for b in behaviours {
                assert!((0.0..=1.0).contains(&b.errors), "{b:?}");
                assert!(0.0 <= b.latency.0 && b.latency.0 <= b.latency.1, "{b:?}");
            }
            assert!(spec.healthy_work.0 <= spec.healthy_work.1);
            for phase in &spec.phases {
                assert!(phase.from < phase.to && phase.to <= 600.0, "{phase:?}");
                assert!((0.0..=1000.0).contains(&phase.traffic), "{phase:?}");
            }
        }
    }
});
