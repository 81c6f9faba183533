//! Bounded multi-threaded stress: several threads on one breaker for ~100 ms per test.
//! Each test first shows that the threads really interleaved on the breaker (their
//! operations, stamped from one shared ticket counter, alternate between threads), then
//! that every count is exact.

#![cfg(not(loom))]

#[allow(dead_code)]
mod common;
use common::interleaving;

use breakwater::breaker::{BreakerConfig, BreakerState, CircuitBreaker, WindowConfig};
use breakwater::clock::ManualClock;
use breakwater::Outcome;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Barrier;
use std::time::{Duration, Instant};

const THREADS: usize = 4;
const BUDGET: Duration = Duration::from_millis(100);

/// Runs `work(thread, stamp)` on `THREADS` threads started together; returns how many
/// times consecutive stamps (in ticket order) came from different threads.
fn interleaved(work: impl Fn(usize, &dyn Fn() -> u64) + Sync) -> usize {
    let ticket = AtomicU64::new(0);
    let barrier = Barrier::new(THREADS);
    let mut stamps: Vec<(u64, usize)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let (ticket, barrier, work) = (&ticket, &barrier, &work);
                s.spawn(move || {
                    let mut mine = Vec::new();
                    let stamp = || ticket.fetch_add(1, Ordering::SeqCst);
                    barrier.wait();
                    let collect = std::cell::RefCell::new(&mut mine);
                    work(t, &|| {
                        let n = stamp();
                        collect.borrow_mut().push(n);
                        n
                    });
                    mine.into_iter().map(|n| (n, t)).collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    stamps.sort_unstable();
    stamps.windows(2).filter(|w| w[0].1 != w[1].1).count()
}

fn window_counts_are_exact(window: WindowConfig, per_thread: u64) {
    let clock = ManualClock::new();
    let breaker = CircuitBreaker::with_clock(
        BreakerConfig::default()
            .with_window(window)
            .with_minimum_calls(500)
            .with_failure_rate_threshold(100.0),
        clock,
    )
    .unwrap();
    let started = Instant::now();
    let (mut rounds, mut switches) = (0, 0);
    while started.elapsed() < BUDGET {
        breaker.reset();
        switches += interleaved(|t, stamp| {
            for i in 0..per_thread {
                let outcome = match (i + t as u64) % 4 {
                    0 => Outcome::Failure,
                    1 => Outcome::Timeout,
                    _ => Outcome::Success,
                };
                breaker.try_acquire().unwrap().record(outcome);
                stamp();
            }
        });
        let s = breaker.snapshot();
        let total = per_thread * THREADS as u64;
        assert_eq!(s.state, BreakerState::Closed);
        assert_eq!(s.calls, total, "round {rounds}");
        assert_eq!(s.failures, total / 2, "round {rounds}");
        assert_eq!(s.stale_outcomes, 0);
        rounds += 1;
    }
    interleaving::report(
        &format!("{window:?} window"),
        switches > rounds,
        format_args!("{rounds} rounds, {switches} thread switches between consecutive records"),
    );
}

#[test]
fn count_window_counts_are_exact_under_contention() {
    // 4 × 125 = 500 outcomes: exactly one full window, nothing overwritten.
    window_counts_are_exact(WindowConfig::Count { size: 500 }, 125);
}

#[test]
fn time_window_counts_are_exact_under_contention() {
    window_counts_are_exact(WindowConfig::DEFAULT_TIME, 2_000);
}

#[test]
fn half_open_admits_exactly_its_permits_and_transitions_once() {
    let clock = ManualClock::new();
    let permits = 3;
    let breaker = CircuitBreaker::with_clock(
        BreakerConfig::default()
            .with_minimum_calls(1)
            .with_open_duration(Duration::from_secs(1))
            .with_half_open_permits(permits),
        clock.clone(),
    )
    .unwrap();
    let started = Instant::now();
    let (mut rounds, mut switches) = (0u64, 0);
    while started.elapsed() < BUDGET {
        breaker.try_acquire().unwrap().failure();
        assert_eq!(breaker.state(), BreakerState::Open);
        clock.advance(Duration::from_secs(1));
        let admitted = AtomicU64::new(0);
        let probes = std::sync::Mutex::new(Vec::new());
        switches += interleaved(|_, stamp| {
            for _ in 0..50 {
                if let Ok(p) = breaker.try_acquire_raw() {
                    admitted.fetch_add(1, Ordering::Relaxed);
                    probes.lock().unwrap().push(p);
                }
                stamp();
            }
        });
        assert_eq!(
            admitted.load(Ordering::Relaxed),
            u64::from(permits),
            "round {rounds}"
        );
        let s = breaker.snapshot();
        assert_eq!(
            (s.state, s.half_open_in_flight),
            (BreakerState::HalfOpen, permits)
        );
        for p in probes.into_inner().unwrap() {
            breaker.complete_raw(p, Outcome::Success, None);
        }
        rounds += 1;
        let t = breaker.snapshot().transitions;
        assert_eq!(breaker.state(), BreakerState::Closed);
        assert_eq!(
            (t.to_open, t.to_half_open, t.to_closed),
            (rounds, rounds, rounds)
        );
    }
    interleaving::report(
        "probes",
        switches > rounds as usize,
        format_args!("{rounds} rounds, {switches} switches"),
    );
}

#[test]
fn racing_failures_trip_exactly_once_per_round() {
    let clock = ManualClock::new();
    let breaker = CircuitBreaker::with_clock(
        BreakerConfig::default()
            .with_window(WindowConfig::Count { size: 50 })
            .with_minimum_calls(20)
            .with_failure_rate_threshold(50.0),
        clock,
    )
    .unwrap();
    let started = Instant::now();
    let (mut rounds, mut switches) = (0u64, 0);
    let per_thread = 10;
    while started.elapsed() < BUDGET {
        breaker.reset();
        // Every permit is taken while Closed, then all complete concurrently as failures:
        // the 20th recorded failure trips, the rest find the breaker Open and are stale.
        let permits: Vec<Vec<_>> = (0..THREADS)
            .map(|_| {
                (0..per_thread)
                    .map(|_| breaker.try_acquire_raw().unwrap())
                    .collect()
            })
            .collect();
        let permits: Vec<_> = permits.into_iter().map(std::sync::Mutex::new).collect();
        let stale_before = breaker.snapshot().stale_outcomes;
        switches += interleaved(|t, stamp| {
            for p in std::mem::take(&mut *permits[t].lock().unwrap()) {
                breaker.complete_raw(p, Outcome::Failure, None);
                stamp();
            }
        });
        rounds += 1;
        let s = breaker.snapshot();
        assert_eq!(s.state, BreakerState::Open, "round {rounds}");
        assert_eq!(s.transitions.to_open, rounds, "exactly one trip per round");
        let stale = s.stale_outcomes - stale_before;
        let total = (THREADS * per_thread) as u64;
        assert!(
            stale <= total - 20,
            "at least the 20 failures that tripped were recorded: {stale}"
        );
    }
    interleaving::report(
        "probes",
        switches > rounds as usize,
        format_args!("{rounds} rounds, {switches} switches"),
    );
}

/// Regression: `time_window_reader_never_sees_failures_ahead_of_their_calls`. Writers
/// alternate success and failure, so at any instant at most half the recorded calls
/// (plus one per writer mid-record) are failures. A reader that loaded the call count
/// before the failure count and was preempted in between saw far more, and tripped a
/// 100 %-threshold breaker on 50 % failures (1 run in 25–60 before the fix).
#[test]
fn time_window_reader_never_sees_failures_ahead_of_their_calls() {
    let breaker = CircuitBreaker::with_clock(
        BreakerConfig::default()
            .with_window(WindowConfig::DEFAULT_TIME)
            .with_minimum_calls(1_000_000)
            .with_failure_rate_threshold(100.0),
        ManualClock::new(),
    )
    .unwrap();
    let writers = THREADS - 1;
    let stop = std::sync::atomic::AtomicBool::new(false);
    let started = Instant::now();
    let (snapshots, worst) = std::thread::scope(|s| {
        for _ in 0..writers {
            s.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    breaker.try_acquire().unwrap().success();
                    breaker.try_acquire().unwrap().failure();
                }
            });
        }
        let reader = s.spawn(|| {
            let (mut n, mut worst) = (0u64, 0i64);
            while started.elapsed() < BUDGET * 3 {
                let snap = breaker.snapshot();
                // Failures beyond what any real instant allows.
                let excess = snap.failures as i64 * 2 - snap.calls as i64 - 2 * writers as i64;
                worst = worst.max(excess);
                n += 1;
            }
            (n, worst)
        });
        let result = reader.join().unwrap();
        stop.store(true, Ordering::Relaxed);
        result
    });
    assert!(snapshots > 1_000, "only {snapshots} snapshots");
    assert!(worst <= 0, "a snapshot showed {worst} failures too many");
}
