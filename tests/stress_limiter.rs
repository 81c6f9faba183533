//! Threads racing on one limiter: contention really happens, and the count is exact.

#![cfg(not(loom))]

#[allow(dead_code)]
mod common;
use common::interleaving;

use breakwater::clock::{Clock, ManualClock};
use breakwater::limiter::{RateLimiter, RateLimiterConfig};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

const THREADS: u64 = 3;

/// A stopped clock and a burst of 2 million: exactly the burst passes, shared between
/// threads that really interleaved (they start together at a barrier).
#[test]
fn racing_threads_share_exactly_the_burst() {
    let burst = 2_000_000;
    let limiter = RateLimiter::with_clock(
        RateLimiterConfig::new(1, Duration::from_secs(60)).with_burst(burst),
        ManualClock::new(),
    )
    .unwrap();
    let last = AtomicU64::new(u64::MAX);
    let switches = AtomicU64::new(0);
    let barrier = std::sync::Barrier::new(THREADS as usize);
    let per_thread: Vec<u64> = thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|id| {
                let (limiter, last, switches, barrier) = (&limiter, &last, &switches, &barrier);
                s.spawn(move || {
                    barrier.wait();
                    let mut mine = 0u64;
                    let mut rejections = 0;
                    while rejections < 1000 {
                        if limiter.try_acquire().is_ok() {
                            mine += 1;
                            if last.swap(id, Ordering::Relaxed) != id {
                                switches.fetch_add(1, Ordering::Relaxed);
                            }
                        } else {
                            rejections += 1;
                        }
                    }
                    mine
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(per_thread.iter().sum::<u64>(), burst, "{per_thread:?}");
    interleaving::report(
        "racing takers",
        switches.load(Ordering::Relaxed) > 10,
        format_args!("per thread {per_thread:?}"),
    );
    assert_eq!(limiter.available(), 0);
}

/// A ticker moves the clock 1 µs at a time for ~150 ms while threads take permits of
/// 1 µs each: after a final drain, admitted = burst + elapsed / interval, exactly.
#[test]
fn moving_clock_delivers_exactly_the_quota() {
    let clock = ManualClock::new();
    let burst = 1_000_000;
    let limiter = RateLimiter::with_clock(
        RateLimiterConfig::new(1_000_000, Duration::from_secs(1)).with_burst(burst),
        clock.clone(),
    )
    .unwrap();
    // Start empty so that no credit is lost to a full bucket while the ticker runs.
    limiter.try_acquire_n(burst).unwrap();
    let admitted = AtomicU64::new(burst);
    let stop = AtomicBool::new(false);
    let contended = AtomicU64::new(0);
    let running = AtomicU64::new(0);
    thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                running.fetch_add(1, Ordering::SeqCst);
                let mut mine = 0;
                while !stop.load(Ordering::Relaxed) {
                    if limiter.try_acquire().is_ok() {
                        mine += 1;
                        if running.load(Ordering::Relaxed) == 2 {
                            contended.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                running.fetch_sub(1, Ordering::SeqCst);
                admitted.fetch_add(mine, Ordering::Relaxed);
            });
        }
        let start = Instant::now();
        while start.elapsed() < Duration::from_millis(150) {
            clock.advance(Duration::from_micros(1));
        }
        stop.store(true, Ordering::Relaxed);
    });
    while limiter.try_acquire().is_ok() {
        admitted.fetch_add(1, Ordering::Relaxed);
    }
    let elapsed_us = clock.now() / 1000; // the clock started at 1 ns
    let admitted = admitted.load(Ordering::Relaxed);
    assert_eq!(admitted, burst + elapsed_us, "at {} ns", clock.now());
    interleaving::report(
        "moving clock",
        contended.load(Ordering::Relaxed) > 0,
        format_args!(
            "{} admissions while both threads ran",
            contended.load(Ordering::Relaxed)
        ),
    );
}
