//! loom model of chaos reconfiguration: `decide` racing `reconfigure` sees the old or
//! the new tuning whole, never a mix.
#![cfg(loom)]

use breakwater::chaos::{Chaos, ChaosConfig, LatencyFault};
use loom::sync::Arc;
use loom::thread;
use std::time::Duration;

fn tuning(fail: bool, latency_ms: u64) -> ChaosConfig {
    ChaosConfig::default()
        .with_enabled(true)
        .with_failure_probability(if fail { 1.0 } else { 0.0 })
        .with_latency_probability(1.0)
        .with_latency(LatencyFault::Fixed(Duration::from_millis(latency_ms)))
}

#[test]
fn decide_sees_whole_configurations() {
    loom::model(|| {
        let chaos = Arc::new(Chaos::new(tuning(true, 1)).unwrap());
        let writer = {
            let chaos = chaos.clone();
            thread::spawn(move || {
                chaos.reconfigure(tuning(false, 2)).unwrap();
                chaos.reconfigure(tuning(true, 3)).unwrap();
            })
        };
        for _ in 0..2 {
            let d = chaos.decide();
            let ms = d.latency.as_millis();
            assert!(
                matches!((d.fail, ms), (true, 1) | (false, 2) | (true, 3)),
                "mixed configuration: {d:?}"
            );
        }
        writer.join().unwrap();
        assert_eq!(chaos.config(), tuning(true, 3));
    });
}
