//! Loom models of the circuit breaker's state machine.
//!
//! Run with:
//! `LOOM_MAX_PREEMPTIONS=2 RUSTFLAGS="--cfg loom -C debug-assertions" CARGO_TARGET_DIR=target/loom cargo test --release --test loom_breaker`
//!
//! (a) `HalfOpen` never admits more than `half_open_permits` probes;
//! (b) racing failures cause exactly one `Closed` → `Open` transition;
//! (c) racing acquires after `open_duration` perform exactly one `Open` → `HalfOpen`;
//! (d) a stale-generation outcome never changes the state;
//! (e) window counts are exact once all threads have finished;
//! (f) a success and a failure racing to bring the window to `minimum_calls` trip it
//!     whichever is recorded last (the success that reaches the minimum checks too);
//! (g) a failure completed while a `reset` starts a new generation never counts as a
//!     failure of the new window, however its record and the new generation's first
//!     record interleave (it may count there as a success: see `CountWindow`);
//! (h) a success on a full window of successes, which claims no slot, racing a failure:
//!     the window holds exactly the last `size` outcomes in either order.
#![cfg(loom)]

use breakwater::breaker::{
    BreakerConfig, BreakerState, CircuitBreaker, RawBreakerPermit, WindowConfig,
};
use breakwater::clock::ManualClock;
use breakwater::Outcome;
use loom::sync::Arc;
use loom::thread;
use std::time::Duration;

type Breaker = CircuitBreaker<ManualClock>;

const OPEN: Duration = Duration::from_secs(1);

fn breaker(config: BreakerConfig) -> (Arc<Breaker>, ManualClock) {
    let clock = ManualClock::new();
    let b = CircuitBreaker::with_clock(config.with_open_duration(OPEN), clock.clone())
        .expect("valid configuration");
    (Arc::new(b), clock)
}

/// Completes two permits on two racing threads and waits for both.
fn complete_racing(
    b: &Arc<Breaker>,
    first: (RawBreakerPermit, Outcome),
    second: (RawBreakerPermit, Outcome),
) {
    let threads: Vec<_> = [first, second]
        .into_iter()
        .map(|(permit, outcome)| {
            let b = b.clone();
            thread::spawn(move || b.complete_raw(permit, outcome, None))
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

/// A breaker that one failure trips, letting `half_open_permits` probes in afterwards.
fn one_failure_trips(half_open_permits: u32) -> (Arc<Breaker>, ManualClock) {
    breaker(
        BreakerConfig::default()
            .with_minimum_calls(1)
            .with_half_open_permits(half_open_permits),
    )
}

/// Trips `b` with one failure (needs `minimum_calls` 1) and lets the open period pass.
fn trip_and_expire(b: &Breaker, clock: &ManualClock) {
    b.try_acquire().expect("closed").failure();
    assert_eq!(b.state(), BreakerState::Open);
    clock.advance(OPEN);
}

#[test]
fn a_half_open_never_admits_more_than_its_permits() {
    loom::model(|| {
        let (b, clock) = one_failure_trips(2);
        trip_and_expire(&b, &clock);
        let held = b.try_acquire_raw().expect("first probe");
        assert_eq!(b.state(), BreakerState::HalfOpen);

        let acquirers: Vec<_> = (0..2)
            .map(|_| {
                let b = b.clone();
                thread::spawn(move || b.try_acquire_raw().ok())
            })
            .collect();
        let releaser = {
            let b = b.clone();
            thread::spawn(move || b.complete_raw(held, Outcome::Ignored, None))
        };
        let admitted: Vec<_> = acquirers
            .into_iter()
            .filter_map(|t| t.join().unwrap())
            .collect();
        releaser.join().unwrap();

        let s = b.snapshot();
        assert!(
            (1..=2).contains(&admitted.len()),
            "admitted {}",
            admitted.len()
        );
        assert_eq!(s.half_open_in_flight as usize, admitted.len());
        assert!(admitted.iter().all(|p| p.is_probe()));
        assert_eq!(s.state, BreakerState::HalfOpen);
        for p in admitted {
            b.complete_raw(p, Outcome::Ignored, None);
        }
    });
}

fn racing_failures_trip_once(window: WindowConfig) {
    loom::model(move || {
        let (b, _clock) = breaker(
            BreakerConfig::default()
                .with_window(window)
                .with_minimum_calls(2)
                .with_failure_rate_threshold(100.0),
        );
        let permits = [b.try_acquire_raw().unwrap(), b.try_acquire_raw().unwrap()];
        let threads: Vec<_> = permits
            .into_iter()
            .map(|p| {
                let b = b.clone();
                thread::spawn(move || b.complete_raw(p, Outcome::Failure, None))
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let s = b.snapshot();
        assert_eq!(
            s.state,
            BreakerState::Open,
            "neither thread saw both failures"
        );
        assert_eq!(s.transitions.to_open, 1);
        assert_eq!(s.generation, 1);
    });
}

#[test]
fn b_racing_failures_trip_exactly_once_count_window() {
    racing_failures_trip_once(WindowConfig::Count { size: 4 });
}

#[test]
fn b_racing_failures_trip_exactly_once_time_window() {
    racing_failures_trip_once(WindowConfig::Time {
        duration: Duration::from_secs(10),
        buckets: 2,
    });
}

fn racing_success_and_failure_reach_minimum(window: WindowConfig) {
    loom::model(move || {
        let (b, _clock) = breaker(
            BreakerConfig::default()
                .with_window(window)
                .with_minimum_calls(3)
                .with_failure_rate_threshold(50.0),
        );
        b.try_acquire().unwrap().failure();
        let success = b.try_acquire_raw().unwrap();
        let failure = b.try_acquire_raw().unwrap();
        complete_racing(&b, (success, Outcome::Success), (failure, Outcome::Failure));
        let s = b.snapshot();
        assert_eq!(
            s.state,
            BreakerState::Open,
            "2 of 3 failed, yet the outcome that reached the minimum did not trip"
        );
        assert_eq!(s.transitions.to_open, 1);
    });
}

#[test]
fn f_success_reaching_minimum_trips_count_window() {
    racing_success_and_failure_reach_minimum(WindowConfig::Count { size: 4 });
}

#[test]
fn f_success_reaching_minimum_trips_time_window() {
    racing_success_and_failure_reach_minimum(WindowConfig::Time {
        duration: Duration::from_secs(10),
        buckets: 2,
    });
}

#[test]
fn c_racing_acquires_after_open_duration_half_open_once() {
    loom::model(|| {
        let (b, clock) = one_failure_trips(2);
        trip_and_expire(&b, &clock);
        let threads: Vec<_> = (0..3)
            .map(|_| {
                let b = b.clone();
                thread::spawn(move || b.try_acquire_raw().ok())
            })
            .collect();
        let admitted: Vec<_> = threads
            .into_iter()
            .filter_map(|t| t.join().unwrap())
            .collect();
        let s = b.snapshot();
        assert_eq!(s.transitions.to_half_open, 1);
        assert_eq!(s.state, BreakerState::HalfOpen);
        assert_eq!(admitted.len(), 2, "two permits, three racers");
        assert_eq!(s.half_open_in_flight, 2);
        for p in admitted {
            b.complete_raw(p, Outcome::Ignored, None);
        }
    });
}

#[test]
fn d_stale_outcome_never_changes_state_in_closed() {
    loom::model(|| {
        let (b, _clock) = breaker(BreakerConfig::default().with_minimum_calls(1));
        let stale = b.try_acquire_raw().unwrap();
        b.reset(); // generation 1: `stale` belongs to generation 0
        let fresh = b.try_acquire_raw().unwrap();
        complete_racing(&b, (stale, Outcome::Failure), (fresh, Outcome::Success));
        let s = b.snapshot();
        assert_eq!(s.state, BreakerState::Closed);
        assert_eq!(s.transitions.to_open, 0);
        assert_eq!((s.calls, s.failures, s.stale_outcomes), (1, 0, 1));
    });
}

#[test]
fn g_a_failure_racing_a_reset_never_fails_the_new_window() {
    loom::model(|| {
        let (b, _clock) = breaker(BreakerConfig::default().with_minimum_calls(1));
        let old = b.try_acquire_raw().unwrap();
        let completer = {
            let b = b.clone();
            thread::spawn(move || b.complete_raw(old, Outcome::Failure, None))
        };
        let resetter = {
            let b = b.clone();
            thread::spawn(move || {
                b.reset();
                b.try_acquire().unwrap().success();
            })
        };
        completer.join().unwrap();
        resetter.join().unwrap();
        let s = b.snapshot();
        // The failure either tripped generation 0 before the reset (then the reset
        // closed it again) or was too late for anything but a stale count.
        assert_eq!(s.state, BreakerState::Closed);
        assert_eq!(s.failures, 0, "no failure in the new window");
        assert!(s.calls == 1 || (s.calls == 2 && s.stale_outcomes == 1));
    });
}

#[test]
fn d_stale_outcome_never_decides_a_half_open_trial() {
    loom::model(|| {
        let (b, clock) = one_failure_trips(1);
        let stale = b.try_acquire_raw().unwrap(); // a slow call started while Closed
        trip_and_expire(&b, &clock);
        let probe = b.try_acquire_raw().unwrap();
        assert!(probe.is_probe());
        complete_racing(&b, (stale, Outcome::Failure), (probe, Outcome::Success));
        let s = b.snapshot();
        assert_eq!(s.state, BreakerState::Closed, "only the probe decides");
        assert_eq!((s.transitions.to_open, s.transitions.to_closed), (1, 1));
        assert_eq!(s.stale_outcomes, 1);
    });
}

fn window_counts_exact(window: WindowConfig) {
    loom::model(move || {
        let (b, _clock) = breaker(
            BreakerConfig::default()
                .with_window(window)
                .with_minimum_calls(7)
                .with_consecutive_failures(5),
        );
        let threads: Vec<_> = [Outcome::Failure, Outcome::Timeout, Outcome::Failure]
            .into_iter()
            .map(|second| {
                let b = b.clone();
                thread::spawn(move || {
                    b.try_acquire().unwrap().success();
                    b.try_acquire().unwrap().record(second);
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let s = b.snapshot();
        assert_eq!(s.state, BreakerState::Closed);
        assert_eq!((s.calls, s.failures), (6, 3));
        assert!(s.consecutive_failures <= 3);
    });
}

#[test]
fn e_window_counts_exact_count_window() {
    window_counts_exact(WindowConfig::Count { size: 8 });
}

#[test]
fn e_window_counts_exact_time_window() {
    window_counts_exact(WindowConfig::Time {
        duration: Duration::from_secs(10),
        buckets: 2,
    });
}

#[test]
fn h_a_success_among_successes_racing_a_failure_counts_exactly() {
    loom::model(|| {
        let (b, _clock) = breaker(
            BreakerConfig::default()
                .with_window(WindowConfig::Count { size: 3 })
                .with_minimum_calls(3)
                .with_failure_rate_threshold(100.0),
        );
        for _ in 0..3 {
            b.try_acquire().unwrap().success();
        }
        let success = b.try_acquire_raw().unwrap();
        let failure = b.try_acquire_raw().unwrap();
        complete_racing(&b, (success, Outcome::Success), (failure, Outcome::Failure));
        let s = b.snapshot();
        assert_eq!((s.state, s.calls, s.failures), (BreakerState::Closed, 3, 1));
        // In either order at most one outcome followed the failure: one more success
        // leaves it in the window, three more push it out.
        b.try_acquire().unwrap().success();
        assert_eq!(b.snapshot().failures, 1);
        b.try_acquire().unwrap().success();
        b.try_acquire().unwrap().success();
        assert_eq!((b.snapshot().calls, b.snapshot().failures), (3, 0));
    });
}
