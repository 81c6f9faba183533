//! Loom models of the GCRA limiter: racing threads never admit more than the bound.
#![cfg(loom)]

use breakwater::clock::ManualClock;
use breakwater::limiter::{RateLimiter, RateLimiterConfig};
use loom::sync::atomic::{AtomicU64, Ordering};
use loom::sync::Arc;
use loom::thread;
use std::time::Duration;

const I: Duration = Duration::from_nanos(10);

fn limiter(burst: u64, clock: &ManualClock) -> Arc<RateLimiter<ManualClock>> {
    // One permit per 10 ns.
    Arc::new(
        RateLimiter::with_clock(
            RateLimiterConfig::new(1, I).with_burst(burst),
            clock.clone(),
        )
        .unwrap(),
    )
}

/// Three threads race for a burst of 2 on a stopped clock: exactly 2 pass.
#[test]
fn racing_threads_take_exactly_the_burst() {
    loom::model(|| {
        let clock = ManualClock::new();
        let l = limiter(2, &clock);
        let admitted = Arc::new(AtomicU64::new(0));
        let handles: Vec<_> = (0..3)
            .map(|_| {
                let (l, admitted) = (l.clone(), admitted.clone());
                thread::spawn(move || {
                    if l.try_acquire().is_ok() {
                        admitted.fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(admitted.load(Ordering::Relaxed), 2);
        assert_eq!(l.available(), 0);
    });
}

/// Two threads take permits while a third moves the clock by one interval: at most
/// burst + 1 pass, and a weighted request never splits.
#[test]
fn moving_clock_never_admits_more_than_the_bound() {
    loom::model(|| {
        let clock = ManualClock::new();
        let l = limiter(2, &clock);
        let admitted = Arc::new(AtomicU64::new(0));
        let workers: Vec<_> = [1u64, 2]
            .into_iter()
            .map(|n| {
                let (l, admitted) = (l.clone(), admitted.clone());
                thread::spawn(move || {
                    for _ in 0..2 {
                        if l.try_acquire_n(n).is_ok() {
                            admitted.fetch_add(n, Ordering::Relaxed);
                        }
                    }
                })
            })
            .collect();
        let ticker = {
            let clock = clock.clone();
            thread::spawn(move || clock.advance(I))
        };
        for h in workers {
            h.join().unwrap();
        }
        ticker.join().unwrap();
        let admitted = admitted.load(Ordering::Relaxed);
        assert!(admitted <= 3, "admitted {admitted} > burst 2 + 1 interval");
        assert!(admitted >= 2, "the burst was there from the start");
    });
}

/// A reservation cancelled while another thread acquires: it goes back exactly, also
/// when the other thread's permit was stacked on it, and the permits held never exceed
/// the burst.
#[test]
fn cancel_races_with_acquire() {
    loom::model(|| {
        let clock = ManualClock::new();
        let l = limiter(2, &clock);
        let r = l.reserve(1, Duration::ZERO).unwrap().into_raw();
        let other = {
            let l = l.clone();
            thread::spawn(move || {
                let a = l.try_acquire().is_ok() as u64;
                let b = l.try_acquire().is_ok() as u64;
                a + b
            })
        };
        assert!(
            l.cancel_raw(r),
            "its slot had not begun: it goes back whole"
        );
        let taken = other.join().unwrap();
        assert!(taken <= 2, "taken {taken} > burst");
        // Exact: the schedule is as if the reservation had never been made.
        assert_eq!(l.available(), 2 - taken);
    });
}

/// Two tokens given back by two threads (the earlier one's refund moves the later one)
/// while a third takes permits: whatever the order, nothing held exceeds the burst, and
/// on a stopped clock both refunds are exact.
#[test]
fn racing_refunds_of_stacked_tokens_are_exact_and_bounded() {
    loom::model(|| {
        let clock = ManualClock::new();
        let l = limiter(2, &clock);
        let first = l.try_acquire_raw().unwrap();
        let second = l.try_acquire_raw().unwrap();
        let refunders: Vec<_> = [first, second]
            .into_iter()
            .map(|raw| {
                let l = l.clone();
                thread::spawn(move || l.cancel_raw(raw))
            })
            .collect();
        let taker = {
            let l = l.clone();
            thread::spawn(move || l.try_acquire().is_ok() as u64)
        };
        for r in refunders {
            assert!(r.join().unwrap(), "a slot that had not begun goes back");
        }
        let taken = taker.join().unwrap();
        assert_eq!(l.available(), 2 - taken, "both refunds exact");
    });
}

/// Two threads race for a burst of 1 on a stopped clock, on the coarse-first path too
/// (a cheap reading lagging by a tick): one passes, and the other's `retry_after` is
/// the exact wait of the slot the winner left (built inline on the refusal path), or
/// at most a tick later when the coarse reading answered.
#[test]
fn a_racing_refusal_says_exactly_when() {
    for tick in [Duration::ZERO, Duration::from_nanos(4)] {
        loom::model(move || {
            let clock = ManualClock::new().with_coarse_tick(tick);
            clock.set(100);
            let l = limiter(1, &clock);
            let threads: Vec<_> = (0..2)
                .map(|_| {
                    let l = l.clone();
                    thread::spawn(move || l.try_acquire().err().map(|r| r.retry_after))
                })
                .collect();
            let refusals: Vec<_> = threads
                .into_iter()
                .filter_map(|t| t.join().unwrap())
                .collect();
            assert_eq!(refusals.len(), 1, "exactly one of two passes a burst of 1");
            let retry = refusals[0].expect("a finite wait");
            assert!(retry >= I && retry <= I + tick, "{retry:?}");
        });
    }
}
