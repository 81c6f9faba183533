//! Per-request overhead of `PolicyLayer` against tower-resilience's equivalent layers
//! and tower's built-ins, in one run, around the same trivial inner service on a
//! current-thread tokio runtime. Each stack holds a circuit breaker (where the library
//! has one), a bulkhead or concurrency limit of 1024, a rate limit that never binds
//! (10^9 per second), a 1 s timeout and (where the library has one) 3 attempts of retry
//! — the configuration a service would run, measured where nothing fails, so what is
//! timed is the layers' own work per call: `ready().await` then `call().await`.
//!
//! `cargo bench --bench overhead --target-dir <repo>/target` (from tests/tower-it).

use std::convert::Infallible;
use std::time::{Duration, Instant};

use breakwater::breaker::BreakerConfig;
use breakwater::bulkhead::BulkheadConfig;
use breakwater::limiter::RateLimiterConfig;
use breakwater::policy::{Policy, PolicyConfig};
use breakwater::retry::RetryConfig;
use breakwater::tower::{PolicyLayer, ResultClassifier};
use criterion::{criterion_group, criterion_main, Criterion};
use tower::{Service, ServiceBuilder, ServiceExt};

type Inner = tower::util::ServiceFn<fn(u64) -> std::future::Ready<Result<u64, Infallible>>>;

fn inner() -> Inner {
    tower::service_fn(|x: u64| std::future::ready(Ok(x)))
}

/// Times `iters` calls through one service built by `make`.
async fn run<S>(mut service: S, iters: u64) -> Duration
where
    S: Service<u64, Response = u64>,
    S::Error: std::fmt::Debug,
{
    let start = Instant::now();
    for i in 0..iters {
        let ready = service.ready().await.expect("ready");
        let answer = ready.call(i).await.expect("answered");
        std::hint::black_box(answer);
    }
    start.elapsed()
}

fn breakwater_policy() -> std::sync::Arc<Policy> {
    let config = PolicyConfig::new("bench")
        .with_circuit_breaker(BreakerConfig::default())
        .with_bulkhead(BulkheadConfig::new(1024))
        .with_rate_limiter(RateLimiterConfig::new(
            1_000_000_000,
            Duration::from_secs(1),
        ))
        .with_timeout(Duration::from_secs(1))
        .with_retry(RetryConfig::default().with_max_attempts(3));
    std::sync::Arc::new(Policy::new(config).expect("valid policy"))
}

fn overhead(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut group = c.benchmark_group("tower_overhead");

    group.bench_function("baseline (no layer)", |b| {
        b.to_async(&rt).iter_custom(|iters| run(inner(), iters));
    });

    let policy = breakwater_policy();
    group.bench_function("breakwater PolicyLayer", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let layer = PolicyLayer::new(policy.clone()).with_classifier(ResultClassifier);
            run(ServiceBuilder::new().layer(layer).service(inner()), iters)
        });
    });

    group.bench_function(
        "tower-resilience (retry, breaker, bulkhead, rate, time)",
        |b| {
            use tower_resilience::bulkhead::BulkheadLayer;
            use tower_resilience::circuitbreaker::CircuitBreakerLayer;
            use tower_resilience::ratelimiter::RateLimiterLayer;
            use tower_resilience::retry::RetryLayer;
            use tower_resilience::timelimiter::TimeLimiterLayer;
            b.to_async(&rt).iter_custom(|iters| {
                let stack = ServiceBuilder::new()
                    .layer(CircuitBreakerLayer::standard().build().expect("breaker"))
                    .layer(
                        BulkheadLayer::builder()
                            .max_concurrent_calls(1024)
                            .build()
                            .expect("bulkhead"),
                    )
                    .layer(
                        RateLimiterLayer::builder()
                            .limit_for_period(1_000_000_000)
                            .refresh_period(Duration::from_secs(1))
                            .build()
                            .expect("rate limiter"),
                    )
                    .layer(
                        TimeLimiterLayer::builder()
                            .timeout_duration(Duration::from_secs(1))
                            .build(),
                    )
                    .service(inner());
                let retry = RetryLayer::builder()
                    .max_attempts(3)
                    .exponential_backoff(Duration::from_millis(100))
                    .build();
                run(ServiceBuilder::new().layer(retry).service(stack), iters)
            });
        },
    );

    group.bench_function("tower ConcurrencyLimit + RateLimit + Timeout", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let stack = ServiceBuilder::new()
                .concurrency_limit(1024)
                .rate_limit(1_000_000_000, Duration::from_secs(1))
                .timeout(Duration::from_secs(1))
                .service(inner());
            run(stack, iters)
        });
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30);
    targets = overhead
}
criterion_main!(benches);
