//! Bounded stress of the retry budget on real threads: two threads race deposits and
//! withdrawals; after checking that they really interleaved, the grants are exact.

#![cfg(not(loom))]

#[allow(dead_code)]
mod common;
use common::interleaving;

use breakwater::clock::ManualClock;
use breakwater::retry::{BudgetConfig, RetryBudget};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Duration;

const THREADS: usize = 2;
const TRIES: u64 = 40_000;

/// One run: returns (grants per thread, whether the threads' grants interleaved).
fn run(
    ratio: f64,
    min_per_second: u32,
    deposits: bool,
) -> (Vec<u64>, bool, Arc<RetryBudget<ManualClock>>) {
    let config = BudgetConfig::default()
        .with_ratio(ratio)
        .with_min_per_second(min_per_second)
        .with_window(Duration::from_secs(60));
    let budget = Arc::new(RetryBudget::with_clock(config, ManualClock::new()).unwrap());
    let barrier = Arc::new(Barrier::new(THREADS));
    let sequence = Arc::new(AtomicU64::new(0));
    let handles: Vec<_> = (0..THREADS)
        .map(|_| {
            let (budget, barrier, sequence) = (budget.clone(), barrier.clone(), sequence.clone());
            std::thread::spawn(move || {
                barrier.wait();
                let mut grants = 0;
                let mut order = Vec::new();
                for _ in 0..TRIES {
                    if deposits {
                        budget.record_request();
                    }
                    if budget.try_withdraw() {
                        grants += 1;
                        order.push(sequence.fetch_add(1, Ordering::Relaxed));
                    }
                }
                (grants, order)
            })
        })
        .collect();
    let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    // Interleaved: each thread's grant sequence numbers are not one contiguous block.
    let interleaved = results.iter().all(|(_, order)| {
        order.len() >= 2 && order.last().unwrap() - order.first().unwrap() + 1 > order.len() as u64
    });
    (
        results.into_iter().map(|(g, _)| g).collect(),
        interleaved,
        budget,
    )
}

/// Repeats `run` until the threads interleaved (a loaded machine may serialize them).
fn contended(
    ratio: f64,
    min_per_second: u32,
    deposits: bool,
) -> (Vec<u64>, Arc<RetryBudget<ManualClock>>) {
    let mut last = None;
    for attempt in 1..=20 {
        let (grants, interleaved, budget) = run(ratio, min_per_second, deposits);
        if interleaved || attempt == 20 {
            interleaving::report("retry budget", interleaved, format_args!("{attempt} runs"));
            return (grants, budget);
        }
        last = Some((grants, budget));
    }
    last.expect("at least one run")
}

#[test]
fn racing_withdrawals_grant_exactly_the_floor() {
    // 500/s over 60 s = 30 000 retries for 80 000 tries.
    let (grants, budget) = contended(0.0, 500, false);
    assert_eq!(grants.iter().sum::<u64>(), 30_000);
    let s = budget.snapshot();
    assert_eq!((s.requests, s.retries, s.available), (0, 30_000, 0));
}

#[test]
fn racing_deposits_and_withdrawals_are_exact() {
    // Ratio 0.5 of 80 000 requests plus a floor of 60: every try deposits first.
    let (grants, budget) = contended(0.5, 1, true);
    let total: u64 = grants.iter().sum();
    let s = budget.snapshot();
    assert_eq!(s.requests, THREADS as u64 * TRIES, "every deposit counted");
    assert_eq!(s.retries, total, "every grant counted");
    assert!(total as f64 <= 0.5 * s.requests as f64 + 60.0);
    // The last grants saw all earlier deposits, so the budget is used up to within
    // the deposits still racing at the end.
    assert!(
        total as f64 >= 0.5 * s.requests as f64 + 60.0 - 2.0 * THREADS as f64,
        "{total}"
    );
}
