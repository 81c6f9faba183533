//! The cost of trace context on a call: a policy's acquire+complete untraced (what every
//! call pays, unchanged by telemetry), traced (the caller's trace context set as the
//! cause around the acquire and the completion), and the OpenTelemetry span read is the
//! application's, not measured here. Same policy as `pipeline` (breaker, rate limiter,
//! bulkhead), one thread.

use std::time::Duration;

use breakwater::adaptive::Priority;
use breakwater::breaker::BreakerConfig;
use breakwater::bulkhead::BulkheadConfig;
use breakwater::clock::AnyClock;
use breakwater::limiter::RateLimiterConfig;
use breakwater::policy::{Policy, PolicyConfig};
use breakwater::telemetry::TraceContext;
use breakwater::Outcome;
use criterion::{black_box, criterion_group, criterion_main, Criterion};

fn bench(c: &mut Criterion) {
    let policy = Policy::with_clock(
        PolicyConfig::new("bench")
            .with_circuit_breaker(BreakerConfig::default())
            .with_rate_limiter(
                RateLimiterConfig::new(1_000_000_000, Duration::from_secs(1)).with_burst(1_000_000),
            )
            .with_bulkhead(BulkheadConfig::new(64)),
        AnyClock::Coarse,
    )
    .unwrap();
    let trace = TraceContext::new([0x4b; 16], [0xb7; 8], 1).unwrap();

    let mut g = c.benchmark_group("telemetry/1t");
    g.bench_function("untraced", |b| {
        b.iter(|| {
            let p = policy.acquire_raw(Priority::Default).unwrap();
            policy.complete_raw(p, Outcome::Success, None);
        })
    });
    g.bench_function("traced", |b| {
        b.iter(|| {
            let t = black_box(trace);
            let p = policy.acquire_raw_traced(Priority::Default, t).unwrap();
            policy.complete_raw_traced(p, Outcome::Success, None, t);
        })
    });
    g.bench_function("traced_permit", |b| {
        b.iter(|| {
            policy
                .acquire_traced(Priority::Default, black_box(trace))
                .unwrap()
                .success()
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
