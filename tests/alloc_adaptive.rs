//! Every acquire path of the adaptive limiter, the client throttle and chaos allocates
//! nothing: a counting global allocator, counting per thread.
#![cfg(not(loom))]

mod common;

use common::counting_alloc::{allocations_in, Counting};

use breakwater::adaptive::{
    AdaptiveAlgorithm, AdaptiveConfig, AdaptiveLimiter, AimdConfig, ClientThrottle, Priority,
    ThrottleConfig,
};
use breakwater::chaos::{Chaos, ChaosConfig, LatencyFault};
use breakwater::clock::ManualClock;
use breakwater::Outcome;
use std::time::Duration;

#[global_allocator]
static GLOBAL: Counting = Counting;

fn configs() -> [AdaptiveConfig; 2] {
    [
        AdaptiveConfig::default()
            .with_initial_limit(4)
            .with_max_limit(8),
        AdaptiveConfig::default()
            .with_algorithm(AdaptiveAlgorithm::Aimd(AimdConfig::default()))
            .with_initial_limit(4)
            .with_max_limit(8),
    ]
}

#[test]
fn adaptive_acquire_complete_and_shed_allocate_nothing() {
    for config in configs() {
        let clock = ManualClock::new();
        let limiter = AdaptiveLimiter::with_clock(config, clock.clone()).unwrap();
        let precise = AdaptiveLimiter::new(config).unwrap();
        let n = allocations_in(|| {
            for round in 0..200u32 {
                let mut held = [None, None, None, None, None, None, None, None, None, None];
                for (i, slot) in held.iter_mut().enumerate() {
                    // Guard: critical, default and sheddable, admitted and shed.
                    *slot = limiter.try_acquire(Priority::ALL[i % 3]).ok();
                }
                clock.advance(Duration::from_millis(u64::from(round % 7) + 1));
                for (i, p) in held.into_iter().enumerate() {
                    match (p, i % 4) {
                        (Some(p), 0) => p.success(),
                        (Some(p), 1) => p.failure(),
                        (Some(p), 2) => {
                            p.complete_with_rtt(Outcome::Timeout, Duration::from_secs(9))
                        }
                        (p, _) => drop(p),
                    }
                }
                // Raw permits, as the pipeline and the C ABI use them.
                if let Ok(raw) = limiter.try_acquire_raw(Priority::Default) {
                    limiter.complete_raw(raw, Outcome::Success, None);
                }
                if let Ok(p) = precise.try_acquire(Priority::Critical) {
                    p.success();
                }
                let _ = (
                    limiter.pressure(),
                    limiter.limit(),
                    limiter.in_flight(),
                    limiter.snapshot(),
                );
            }
        });
        assert_eq!(n, 0, "{} allocated {n} times", config.algorithm.as_str());
    }
}

#[test]
fn throttle_acquire_and_record_allocate_nothing() {
    let clock = ManualClock::new();
    let config = ThrottleConfig::default()
        .with_window(Duration::from_secs(1))
        .with_buckets(10);
    let throttle = ClientThrottle::with_clock(config, clock.clone()).unwrap();
    let coarse = ClientThrottle::new(config).unwrap();
    let n = allocations_in(|| {
        for i in 0..10_000u32 {
            // Accepting one call in four drives p up, so both answers are exercised.
            if throttle.try_acquire().is_ok() && i % 4 == 0 {
                throttle.record_accepted();
            }
            let _ = coarse.try_acquire();
            coarse.record_accepted();
            let _ = (throttle.rejection_probability(), throttle.snapshot());
            clock.advance(Duration::from_millis(1));
        }
    });
    assert_eq!(n, 0);
    assert!(
        throttle.rejection_probability() > 0.0,
        "the rejection path ran"
    );
}

#[test]
fn chaos_decide_allocates_nothing() {
    let chaos = Chaos::new(
        ChaosConfig::default()
            .with_enabled(true)
            .with_failure_probability(0.2)
            .with_rejection_probability(0.2)
            .with_latency_probability(0.5)
            .with_latency(LatencyFault::Uniform {
                min: Duration::from_millis(1),
                max: Duration::from_millis(3),
            })
            .with_seed(1),
    )
    .unwrap();
    let n = allocations_in(|| {
        for i in 0..10_000u32 {
            let _ = chaos.decide();
            if i == 5_000 {
                chaos.set_enabled(false);
            }
        }
    });
    assert_eq!(n, 0);
}

#[test]
fn the_counter_counts() {
    assert!(allocations_in(|| drop(std::hint::black_box(Box::new(1u64)))) >= 1);
}
