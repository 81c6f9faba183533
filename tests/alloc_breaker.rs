//! `try_acquire` and completing a permit allocate nothing, in every state and for both
//! window kinds, including the transitions they perform. A counting global allocator
//! counts per thread, so other test threads cannot disturb the count.
#![cfg(not(loom))]

mod common;

use common::counting_alloc::{allocations_in, assert_no_alloc, Counting};

use breakwater::breaker::{BreakerConfig, BreakerState, CircuitBreaker, WindowConfig};
use breakwater::clock::{Clock, ManualClock};
use breakwater::Outcome;
use std::time::Duration;

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Walks one breaker through every state, asserting each step allocates nothing.
fn every_state<C: Clock>(breaker: &CircuitBreaker<C>, advance: impl Fn(Duration)) {
    assert_no_alloc("closed acquire+success", || {
        for _ in 0..1000 {
            breaker.try_acquire().unwrap().success();
        }
    });
    assert_no_alloc("closed raw acquire+complete", || {
        let p = breaker.try_acquire_raw().unwrap();
        breaker.complete_raw(p, Outcome::Success, Some(Duration::from_millis(1)));
        drop(breaker.try_acquire().unwrap()); // ignored
    });
    assert_no_alloc("closed failures up to the trip", || {
        while breaker.state() == BreakerState::Closed {
            breaker.try_acquire().unwrap().record(Outcome::Timeout);
        }
    });
    assert_eq!(breaker.state(), BreakerState::Open);
    assert_no_alloc("open rejection", || {
        for _ in 0..1000 {
            assert!(breaker.try_acquire().is_err());
        }
    });
    advance(Duration::from_secs(2));
    let probe = breaker.try_acquire(); // Open → HalfOpen
    assert_no_alloc("half-open probes and rejection", || {
        let second = breaker.try_acquire().unwrap();
        assert!(breaker.try_acquire().is_err(), "two permits");
        drop(second); // gives the slot back
        breaker.try_acquire().unwrap().failure();
    });
    assert_no_alloc("failed trial: HalfOpen → Open", || {
        probe.unwrap().success()
    });
    assert_eq!(breaker.state(), BreakerState::Open);
    advance(Duration::from_secs(10));
    assert_no_alloc("passed trial: Open → HalfOpen → Closed", || {
        breaker.try_acquire().unwrap().success();
        breaker.try_acquire().unwrap().success();
    });
    assert_eq!(breaker.state(), BreakerState::Closed);
    let stale = breaker.try_acquire_raw().unwrap();
    assert_no_alloc("manual states and stale outcomes", || {
        breaker.force_open();
        assert!(breaker.try_acquire().is_err());
        breaker.complete_raw(stale, Outcome::Failure, None);
        breaker.disable();
        for _ in 0..100 {
            breaker.try_acquire().unwrap().failure();
        }
        breaker.reset();
        let _ = breaker.call(|_| Ok::<_, ()>(()));
        let _ = breaker.snapshot();
    });
}

fn configs() -> Vec<BreakerConfig> {
    let base = BreakerConfig::default()
        .with_minimum_calls(5)
        .with_open_duration(Duration::from_secs(1))
        .with_half_open_permits(2);
    vec![
        base.clone(),
        base.clone()
            .with_window(WindowConfig::DEFAULT_TIME)
            .with_slow_calls(Duration::from_millis(10), 80.0)
            .with_consecutive_failures(3)
            .with_open_backoff(2.0, Duration::from_secs(8))
            .with_open_jitter(0.5),
        base.with_window(WindowConfig::Count { size: 500 })
            .with_consecutive_failures(50),
    ]
}

#[test]
fn hot_paths_allocate_nothing_with_a_manual_clock() {
    for config in configs() {
        let clock = ManualClock::new();
        let breaker = CircuitBreaker::with_clock(config, clock.clone()).unwrap();
        every_state(&breaker, |d| clock.advance(d));
    }
}

#[test]
fn hot_paths_allocate_nothing_with_the_default_clock() {
    // CoarseClock reads real time; walk the states that need no waiting.
    let breaker = CircuitBreaker::new(configs()[1].clone()).unwrap();
    assert_no_alloc("coarse clock: closed, trip, open, manual states", || {
        for _ in 0..1000 {
            breaker.try_acquire().unwrap().success();
        }
        while breaker.state() == BreakerState::Closed {
            breaker.try_acquire().unwrap().failure();
        }
        for _ in 0..1000 {
            assert!(breaker.try_acquire().is_err());
        }
        breaker.disable();
        breaker.try_acquire().unwrap().failure();
        breaker.force_open();
        assert!(breaker.try_acquire().is_err());
        breaker.reset();
    });
}

#[test]
fn the_counter_counts() {
    // black_box: without it a release build elides the allocation and the probe reads 0.
    assert!(allocations_in(|| drop(std::hint::black_box(Box::new(1u64)))) >= 1);
}
