//! The whole pipeline's acquire and complete allocate nothing after the first call on a
//! thread (which creates that thread's metrics shard in the policy, once): every stage,
//! every rejection path, and the transitions they trigger (with an event listener set).
#![cfg(not(loom))]

mod common;

use std::time::Duration;

use breakwater::adaptive::Priority;
use breakwater::clock::{AnyClock, ManualClock};
use breakwater::engine::Engine;
use breakwater::Outcome;
use common::counting_alloc::{allocations_in, assert_no_alloc, Counting};

#[global_allocator]
static GLOBAL: Counting = Counting;

const FILE: &str = r#"
[policies.full]
timeout = "1s"
[policies.full.circuit_breaker]
minimum_calls = 5
window = { type = "time", duration = "10s", buckets = 10 }
slow_call_rate_threshold = 90
slow_call_duration = "500ms"
open_duration = "5s"
[policies.full.throttle]
k = 2.0
[policies.full.rate_limiter]
rate = 1000000
period = "1s"
[policies.full.bulkhead]
max_concurrent = 4
[policies.full.adaptive]
algorithm = "gradient2"
[policies.full.chaos]
enabled = true
latency_probability = 0.5
latency = { min = "1ms", max = "2ms" }
"#;

#[test]
fn policy_acquire_and_complete_allocate_nothing() {
    let clock = ManualClock::new();
    let engine = Engine::with_clock(AnyClock::Manual(clock.clone()));
    engine.reload_str(FILE).unwrap();
    engine
        .events()
        .set_listener(|_| {})
        .unwrap_or_else(|_| panic!("listener"));
    let policy = engine.policy("full").unwrap();
    // The first call on this thread creates its metrics shard in this policy: one
    // allocation, once per (thread, policy). After that, zero.
    let first = allocations_in(|| policy.acquire().unwrap().success());
    assert_eq!(
        first, 1,
        "the first call allocates only this thread's shard"
    );

    assert_no_alloc("acquire + success", || {
        for _ in 0..1000 {
            policy.acquire().unwrap().success();
        }
    });
    assert_no_alloc("raw acquire + complete at every priority", || {
        for priority in [Priority::Critical, Priority::Default, Priority::Sheddable] {
            let raw = policy.acquire_raw(priority).unwrap();
            policy.complete_raw(raw, Outcome::Failure, Some(Duration::from_millis(1)));
        }
    });
    assert_no_alloc("bulkhead rejection", || {
        let a = policy.acquire_raw(Priority::Critical).unwrap();
        let b = policy.acquire_raw(Priority::Critical).unwrap();
        let c = policy.acquire_raw(Priority::Critical).unwrap();
        let d = policy.acquire_raw(Priority::Critical).unwrap();
        assert!(policy.acquire_raw(Priority::Critical).is_err());
        for p in [a, b, c, d] {
            policy.complete_raw(p, Outcome::Success, None);
        }
    });
    // Trip the breaker (transition + event), reject while open, half-open, close.
    clock.advance(Duration::from_secs(11)); // the successes above leave the window
    let trips = allocations_in(|| {
        for _ in 0..10 {
            if let Ok(p) = policy.acquire() {
                p.record(Outcome::Timeout);
            }
        }
        assert!(policy.acquire().is_err());
        clock.advance(Duration::from_secs(6));
        for _ in 0..10 {
            if let Ok(p) = policy.acquire() {
                p.success();
            }
        }
    });
    assert_eq!(
        trips, 0,
        "transitions, events and rejections allocate nothing"
    );
    assert!(
        policy.metrics().snapshot().transitions[1] >= 1,
        "the breaker did trip"
    );
}
