//! The full pipeline (breaker + rate limiter + bulkhead) acquire+complete beside the
//! same three stages called one after another by hand. Goal: the pipeline within 1.5×
//! the sum of its parts measured alone (`pipeline/1t`, ratio of `policy` to
//! `sum_of_parts`), so the pipeline's own bookkeeping (rejection unwinding, metrics,
//! permit plumbing) stays cheap. Also the policy alone with 2 threads.

mod common;
use common::threaded;

use std::time::Duration;

use breakwater::adaptive::Priority;
use breakwater::breaker::{BreakerConfig, CircuitBreaker};
use breakwater::bulkhead::{Bulkhead, BulkheadConfig};
use breakwater::clock::AnyClock;
use breakwater::limiter::{RateLimiter, RateLimiterConfig};
use breakwater::policy::{Policy, PolicyConfig};
use breakwater::Outcome;
use criterion::{black_box, criterion_group, criterion_main, Criterion};

fn configs() -> (BreakerConfig, RateLimiterConfig, BulkheadConfig) {
    (
        BreakerConfig::default(),
        // Always allowed: a billion per second with a large burst.
        RateLimiterConfig::new(1_000_000_000, Duration::from_secs(1)).with_burst(1_000_000),
        BulkheadConfig::new(64),
    )
}

fn policy() -> Policy {
    let (b, l, h) = configs();
    Policy::with_clock(
        PolicyConfig::new("bench")
            .with_circuit_breaker(b)
            .with_rate_limiter(l)
            .with_bulkhead(h),
        AnyClock::Coarse,
    )
    .unwrap()
}

fn bench(c: &mut Criterion) {
    let (bc, lc, hc) = configs();
    let breaker = CircuitBreaker::with_clock(bc, AnyClock::Coarse).unwrap();
    let limiter = RateLimiter::new(lc).unwrap();
    let bulkhead = Bulkhead::new(hc).unwrap();
    let policy = policy();

    let mut g = c.benchmark_group("pipeline/1t");
    g.bench_function("breaker", |b| {
        b.iter(|| {
            let p = breaker.try_acquire_raw().unwrap();
            breaker.complete_raw(p, Outcome::Success, None);
        })
    });
    g.bench_function("limiter", |b| {
        b.iter(|| black_box(limiter.try_acquire()).unwrap())
    });
    g.bench_function("bulkhead", |b| {
        b.iter(|| {
            bulkhead.try_acquire_raw().unwrap();
            bulkhead.release_raw();
        })
    });
    g.bench_function("sum_of_parts", |b| {
        b.iter(|| {
            let p = breaker.try_acquire_raw().unwrap();
            limiter.try_acquire().unwrap();
            bulkhead.try_acquire_raw().unwrap();
            breaker.complete_raw(p, Outcome::Success, None);
            bulkhead.release_raw();
        })
    });
    g.bench_function("policy", |b| {
        b.iter(|| {
            let p = policy.acquire_raw(Priority::Default).unwrap();
            policy.complete_raw(p, Outcome::Success, None);
        })
    });
    g.bench_function("policy_guard", |b| {
        b.iter(|| policy.acquire().unwrap().success())
    });
    g.finish();

    let mut g = c.benchmark_group("pipeline/2t");
    g.bench_function("sum_of_parts", |b| {
        b.iter_custom(|iters| {
            threaded(2, iters, &|| {
                let p = breaker.try_acquire_raw().unwrap();
                limiter.try_acquire().unwrap();
                bulkhead.try_acquire_raw().unwrap();
                breaker.complete_raw(p, Outcome::Success, None);
                bulkhead.release_raw();
            })
        })
    });
    g.bench_function("policy", |b| {
        b.iter_custom(|iters| {
            threaded(2, iters, &|| {
                let p = policy.acquire_raw(Priority::Default).unwrap();
                policy.complete_raw(p, Outcome::Success, None);
            })
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
