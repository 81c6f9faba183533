//! The limiter's decisions allocate nothing (counted per thread).
#![cfg(not(loom))]

mod common;

use common::counting_alloc::{allocations_in, Counting};

use breakwater::clock::{AnyClock, ManualClock};
use breakwater::limiter::{RateLimiter, RateLimiterConfig};
use std::time::Duration;

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn the_counter_counts() {
    assert_eq!(
        allocations_in(|| drop(std::hint::black_box(Box::new(1u64)))),
        1
    );
}

#[test]
fn hot_paths_allocate_nothing() {
    let clocks = [
        AnyClock::Coarse,
        AnyClock::Monotonic,
        AnyClock::Manual(ManualClock::new()),
    ];
    for clock in clocks {
        let limiter = RateLimiter::with_clock(
            RateLimiterConfig::new(1000, Duration::from_secs(1)).with_burst(10),
            clock,
        )
        .unwrap();
        let n = allocations_in(|| {
            for _ in 0..100 {
                let _ = std::hint::black_box(limiter.try_acquire()); // admitted, then rejected
                let _ = std::hint::black_box(limiter.try_acquire_n(3));
                let _ = std::hint::black_box(limiter.try_acquire_n(11)); // exceeds burst
                let _ = std::hint::black_box(limiter.available());
                let _ = std::hint::black_box(limiter.snapshot());
                if let Ok(r) = limiter.reserve(1, Duration::from_millis(5)) {
                    let _ = r.cancel();
                }
            }
        });
        assert_eq!(n, 0, "{:?} allocated {n} times", limiter.clock());
    }
    let auto = RateLimiter::new(RateLimiterConfig::new(100, Duration::from_secs(1))).unwrap();
    assert_eq!(
        allocations_in(|| for _ in 0..1000 {
            let _ = auto.try_acquire();
        }),
        0
    );
}
