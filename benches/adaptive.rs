//! Adaptive limit acquire + complete beside a plain bulkhead counter (`AtomicU32`
//! fetch_add / fetch_sub, the whole cost of a bulkhead's fast path), with 1 and 2
//! threads; plus the client throttle and chaos `decide` for reference.
//!
//! Run: `cargo bench --bench adaptive -- --warm-up-time 1 --measurement-time 3`

mod common;
use common::threaded;

use breakwater::adaptive::{
    AdaptiveAlgorithm, AdaptiveConfig, AdaptiveLimiter, AimdConfig, ClientThrottle, Priority,
    ThrottleConfig,
};
use breakwater::chaos::{Chaos, ChaosConfig, LatencyFault};
use breakwater::clock::{Clock, MonotonicClock};
use breakwater::Outcome;
use criterion::{black_box, criterion_group, criterion_main, Criterion};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// The plain bulkhead: admit if the incremented count is within the limit.
struct PlainBulkhead {
    in_flight: AtomicU32,
    max: u32,
}

impl PlainBulkhead {
    #[inline]
    fn try_acquire(&self) -> bool {
        if self.in_flight.fetch_add(1, Ordering::Acquire) < self.max {
            true
        } else {
            self.in_flight.fetch_sub(1, Ordering::Release);
            false
        }
    }

    #[inline]
    fn release(&self) {
        self.in_flight.fetch_sub(1, Ordering::Release);
    }
}

fn config(algorithm: AdaptiveAlgorithm) -> AdaptiveConfig {
    AdaptiveConfig::default()
        .with_algorithm(algorithm)
        .with_initial_limit(100)
        .with_max_limit(1_000)
}

fn aimd() -> AdaptiveAlgorithm {
    AdaptiveAlgorithm::Aimd(AimdConfig::default())
}

fn gradient() -> AdaptiveAlgorithm {
    AdaptiveAlgorithm::Gradient2(Default::default())
}

fn adaptive_limit<C: Clock>(limiter: &AdaptiveLimiter<C>) {
    if let Ok(p) = limiter.try_acquire_raw(black_box(Priority::Default)) {
        limiter.complete_raw(p, Outcome::Success, None);
    }
}

/// As a pipeline uses it: the caller read the clock once for all stages and passes the
/// start time in and the measured RTT out, so the limiter reads no clock.
fn adaptive_limit_caller_time<C: Clock>(limiter: &AdaptiveLimiter<C>) {
    if let Ok(p) = limiter.try_acquire_raw_at(black_box(Priority::Default), black_box(1_000)) {
        limiter.complete_raw(p, Outcome::Success, Some(Duration::from_micros(250)));
    }
}

fn bench_acquire_complete(c: &mut Criterion) {
    for threads in [1usize, 2] {
        let mut group = c.benchmark_group(format!("adaptive_acquire_complete/{threads}_thread"));
        let bulkhead = PlainBulkhead {
            in_flight: AtomicU32::new(0),
            max: 100,
        };
        group.bench_function("plain_bulkhead_atomic_u32", |b| {
            b.iter_custom(|iters| {
                threaded(threads, iters, &|| {
                    if bulkhead.try_acquire() {
                        bulkhead.release();
                    }
                })
            })
        });
        for (name, algorithm) in [("aimd", aimd()), ("gradient2", gradient())] {
            // Production: CLOCK_MONOTONIC read at acquire and at complete.
            let precise = AdaptiveLimiter::with_clock(config(algorithm), MonotonicClock).unwrap();
            group.bench_function(format!("{name}_monotonic_clock"), |b| {
                b.iter_custom(|iters| threaded(threads, iters, &|| adaptive_limit(&precise)))
            });
            // The limiter's own cost: the caller supplies time (see above).
            group.bench_function(format!("{name}_caller_time"), |b| {
                b.iter_custom(|iters| {
                    threaded(threads, iters, &|| adaptive_limit_caller_time(&precise))
                })
            });
        }
        group.finish();
    }
}

fn bench_throttle_and_chaos(c: &mut Criterion) {
    for threads in [1usize, 2] {
        let mut group = c.benchmark_group(format!("throttle_and_chaos/{threads}_thread"));
        let throttle = ClientThrottle::new(ThrottleConfig::default()).unwrap();
        group.bench_function("client_throttle_acquire_accept", |b| {
            b.iter_custom(|iters| {
                threaded(threads, iters, &|| {
                    if throttle.try_acquire().is_ok() {
                        throttle.record_accepted();
                    }
                })
            })
        });
        let chaos = Chaos::new(
            ChaosConfig::default()
                .with_enabled(true)
                .with_failure_probability(0.1)
                .with_rejection_probability(0.1)
                .with_latency_probability(0.1)
                .with_latency(LatencyFault::Uniform {
                    min: Duration::from_millis(1),
                    max: Duration::from_millis(5),
                })
                .with_seed(1),
        )
        .unwrap();
        group.bench_function("chaos_decide_enabled", |b| {
            b.iter_custom(|iters| {
                threaded(threads, iters, &|| {
                    black_box(chaos.decide());
                })
            })
        });
        group.finish();
    }
}

criterion_group!(benches, bench_acquire_complete, bench_throttle_and_chaos);
criterion_main!(benches);
