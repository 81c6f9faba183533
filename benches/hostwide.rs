//! Host scope beside process scope: acquire + complete on the same stage, its state on
//! the heap or in a shared segment, one process. Goal: host ≤ 1.5× process.
//!
//! Run: `cargo bench --bench hostwide -- --warm-up-time 1 --measurement-time 3`

use breakwater::breaker::BreakerConfig;
use breakwater::bulkhead::BulkheadConfig;
use breakwater::limiter::RateLimiterConfig;
use breakwater::policy::{Policy, PolicyConfig};
use breakwater::shm;
use criterion::{black_box, criterion_group, criterion_main, Criterion};
use std::time::Duration;

/// The same policy in process scope and in host scope (a segment of this run, removed
/// at the end).
fn pair(name: &str, config: PolicyConfig) -> (Policy, Policy, String) {
    let segment = format!("bench-{}-{name}", std::process::id());
    let _ = shm::remove_segment(&segment);
    let local = Policy::new(config.clone()).unwrap();
    let host = Policy::new(config.with_host_scope(segment.clone())).unwrap();
    (local, host, segment)
}

fn bench(c: &mut Criterion) {
    let (local, host, seg_b) = pair(
        "breaker",
        PolicyConfig::new("b").with_circuit_breaker(BreakerConfig::default()),
    );
    let mut g = c.benchmark_group("hostwide_breaker");
    for (label, p) in [("process", &local), ("host", &host)] {
        let b = p.breaker().unwrap();
        g.bench_function(label, |bench| {
            bench.iter(|| black_box(b.try_acquire()).unwrap().success())
        });
    }
    g.finish();

    let (local, host, seg_l) = pair(
        "limiter",
        PolicyConfig::new("l").with_rate_limiter(RateLimiterConfig::new(
            1_000_000_000,
            Duration::from_secs(1),
        )),
    );
    let mut g = c.benchmark_group("hostwide_limiter");
    for (label, p) in [("process", &local), ("host", &host)] {
        let l = p.limiter().unwrap();
        g.bench_function(label, |bench| {
            bench.iter(|| black_box(l.try_acquire()).unwrap())
        });
    }
    g.finish();

    let (local, host, seg_k) = pair(
        "bulkhead",
        PolicyConfig::new("k").with_bulkhead(BulkheadConfig::new(64)),
    );
    let mut g = c.benchmark_group("hostwide_bulkhead");
    for (label, p) in [("process", &local), ("host", &host)] {
        let k = p.bulkhead().unwrap();
        g.bench_function(label, |bench| {
            bench.iter(|| {
                k.try_acquire_raw().unwrap();
                black_box(k.release_raw())
            })
        });
    }
    g.finish();

    for s in [seg_b, seg_l, seg_k] {
        shm::remove_segment(&s).unwrap();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
