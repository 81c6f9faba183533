//! Loom models of the retry budget: racing withdrawals never exceed the allowance, a
//! bucket roll racing a withdrawal loses no archived retry, and deposits and withdrawals
//! are counted exactly.
//!
//! Run with
//! `LOOM_MAX_PREEMPTIONS=2 RUSTFLAGS="--cfg loom -C debug-assertions" CARGO_TARGET_DIR=target/loom cargo test --release --test loom_retry_budget`.
#![cfg(loom)]

use breakwater::clock::ManualClock;
use breakwater::retry::{BudgetConfig, RetryBudget};
use loom::sync::Arc;
use loom::thread;
use std::time::Duration;

/// A budget over a 1 s window (buckets of 100 ms) whose traffic-free allowance is
/// `min_per_second` retries.
fn budget(ratio: f64, min_per_second: u32, clock: &ManualClock) -> Arc<RetryBudget<ManualClock>> {
    let config = BudgetConfig::default()
        .with_ratio(ratio)
        .with_min_per_second(min_per_second)
        .with_window(Duration::from_secs(1));
    Arc::new(RetryBudget::with_clock(config, clock.clone()).unwrap())
}

#[test]
fn racing_withdrawals_never_exceed_the_allowance() {
    loom::model(|| {
        let clock = ManualClock::new();
        let b = budget(0.0, 1, &clock);
        let other = b.clone();
        let t = thread::spawn(move || other.try_withdraw());
        let mine = b.try_withdraw();
        let theirs = t.join().unwrap();
        assert_eq!(
            u32::from(mine) + u32::from(theirs),
            1,
            "exactly one of two for one retry"
        );
        let s = b.snapshot();
        assert_eq!((s.retries, s.available), (1, 0));
    });
}

#[test]
fn racing_withdrawals_within_the_allowance_all_pass() {
    loom::model(|| {
        let clock = ManualClock::new();
        let b = budget(0.0, 2, &clock);
        let other = b.clone();
        let t = thread::spawn(move || other.try_withdraw());
        assert!(b.try_withdraw(), "no false refusal under a race");
        assert!(t.join().unwrap());
        assert_eq!(b.snapshot().retries, 2);
    });
}

#[test]
fn bucket_roll_racing_a_withdrawal_keeps_the_archived_retry() {
    loom::model(|| {
        let clock = ManualClock::new();
        let b = budget(0.0, 2, &clock);
        // One retry in bucket 0, then time moves to bucket 1: both threads race to
        // archive bucket 0 and move the head; only one more retry fits the window.
        assert!(b.try_withdraw());
        clock.advance(Duration::from_millis(100));
        let other = b.clone();
        let t = thread::spawn(move || other.try_withdraw());
        let mine = b.try_withdraw();
        let theirs = t.join().unwrap();
        assert_eq!(u32::from(mine) + u32::from(theirs), 1);
        assert_eq!(b.snapshot().retries, 2);
    });
}

#[test]
fn withdrawal_racing_the_clock_stays_within_the_window() {
    loom::model(|| {
        let clock = ManualClock::new();
        let b = budget(0.0, 1, &clock);
        let ticker = clock.clone();
        // The clock crosses a bucket boundary while two threads withdraw; a retry in
        // bucket 0 or 1 is in the same window, so still only one passes.
        let t1 = {
            let b = b.clone();
            thread::spawn(move || {
                ticker.advance(Duration::from_millis(100));
                b.try_withdraw()
            })
        };
        let mine = b.try_withdraw();
        let theirs = t1.join().unwrap();
        assert_eq!(u32::from(mine) + u32::from(theirs), 1);
        assert_eq!(b.snapshot().retries, 1);
    });
}

#[test]
fn deposits_and_withdrawals_are_counted_exactly() {
    loom::model(|| {
        let clock = ManualClock::new();
        let b = budget(1.0, 0, &clock);
        let other = b.clone();
        let t = thread::spawn(move || {
            other.record_request();
            other.try_withdraw()
        });
        b.record_request();
        let mine = b.try_withdraw();
        let theirs = t.join().unwrap();
        // Each thread deposited before withdrawing. The first withdrawal sees at least its
        // own deposit; the second acquires the first's head update, so it also sees the
        // deposit that preceded it: both pass (ratio 1).
        assert!(mine && theirs);
        let s = b.snapshot();
        assert_eq!((s.requests, s.retries, s.available), (2, 2, 0));
    });
}

#[test]
fn three_threads_share_two_retries() {
    loom::model(|| {
        let clock = ManualClock::new();
        let b = budget(0.0, 2, &clock);
        let spawn = |b: &Arc<RetryBudget<ManualClock>>| {
            let b = b.clone();
            thread::spawn(move || b.try_withdraw())
        };
        let (t1, t2) = (spawn(&b), spawn(&b));
        let mine = b.try_withdraw();
        let granted = [mine, t1.join().unwrap(), t2.join().unwrap()]
            .iter()
            .filter(|&&g| g)
            .count();
        assert_eq!(granted, 2);
        assert_eq!(b.snapshot().retries, 2);
    });
}
