//! `breakwater bench`: acquire + complete of each primitive, on 1 and N threads, for a
//! fixed short time per case. A quick look at this machine; `cargo bench` (criterion,
//! `benches/`) gives the reference numbers with confidence intervals.

use std::hint::black_box;
use std::sync::{Barrier, OnceLock};
use std::time::{Duration, Instant};

use breakwater::adaptive::{AdaptiveConfig, AdaptiveLimiter, Priority};
use breakwater::breaker::{BreakerConfig, CircuitBreaker};
use breakwater::bulkhead::{Bulkhead, BulkheadConfig};
use breakwater::limiter::{RateLimiter, RateLimiterConfig};
use breakwater::policy::{Policy, PolicyConfig};

use crate::{exit, BenchArgs};

/// What one case measured.
struct Measured {
    ops: u64,
    admitted: u64,
    /// The timed window every counted operation finished in.
    window: Duration,
    /// Wall time of the whole case, thread start and join included.
    wall: Duration,
}

/// Operations a thread runs between two looks at the clock.
const BATCH: u64 = 64;

/// Runs `op` (one acquire + complete; returns whether it was admitted) on `threads`
/// threads and counts the operations of the batches that finished inside one timed
/// window of `duration`: a batch that ends after the window is not counted, and no
/// thread runs past it by more than one batch (each checks the clock between batches,
/// so a stop never waits for a thread to notice a flag).
fn measure(threads: u32, duration: Duration, op: &(dyn Fn() -> bool + Sync)) -> Measured {
    let began = Instant::now();
    let start = Barrier::new(threads as usize + 1);
    let go = Barrier::new(threads as usize + 1);
    let window: OnceLock<(Instant, Instant)> = OnceLock::new();
    let counts: Vec<(u64, u64)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let (mut ops, mut admitted) = (0u64, 0u64);
                    start.wait();
                    go.wait();
                    let (from, until) = *window.get().expect("set before `go`");
                    // A thread first scheduled after the window counts nothing.
                    let mut now = Instant::now();
                    while now < until {
                        let mut batch = 0;
                        for _ in 0..BATCH {
                            batch += u64::from(black_box(op()));
                        }
                        now = Instant::now();
                        if now <= until && now >= from {
                            ops += BATCH;
                            admitted += batch;
                        }
                    }
                    (ops, admitted)
                })
            })
            .collect();
        start.wait();
        let from = Instant::now();
        let _ = window.set((from, from + duration));
        go.wait();
        handles
            .into_iter()
            .map(|h| h.join().expect("bench thread"))
            .collect()
    });
    Measured {
        ops: counts.iter().map(|c| c.0).sum(),
        admitted: counts.iter().map(|c| c.1).sum(),
        window: duration,
        wall: began.elapsed(),
    }
}

/// A rate far above what any thread can take, so the limiter always admits and the
/// cost measured is the decision itself.
fn generous_limit() -> RateLimiterConfig {
    RateLimiterConfig::new(1_000_000_000, Duration::from_secs(1))
}

/// `breakwater bench`.
pub(crate) fn run(args: &BenchArgs) -> i32 {
    let duration = Duration::from_millis(args.duration_ms);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
    let n = args.threads.unwrap_or(cores);
    let built = (|| -> Result<_, breakwater::ConfigError> {
        Ok((
            CircuitBreaker::new(BreakerConfig::default())?,
            RateLimiter::new(generous_limit())?,
            Bulkhead::new(BulkheadConfig::new(100_000))?,
            AdaptiveLimiter::new(
                AdaptiveConfig::default()
                    .with_initial_limit(10_000)
                    .with_max_limit(10_000),
            )?,
            Policy::new(
                PolicyConfig::new("bench")
                    .with_timeout(Duration::from_secs(1))
                    .with_circuit_breaker(BreakerConfig::default())
                    .with_rate_limiter(generous_limit())
                    .with_bulkhead(BulkheadConfig::new(100_000)),
            )?,
        ))
    })();
    let (breaker, limiter, bulkhead, adaptive, policy) = match built {
        Ok(b) => b,
        Err(e) => {
            eprintln!(
                "breakwater: bench setup failed: `{}`: {}",
                e.field, e.reason
            );
            return exit::ERRORS;
        }
    };
    let cases: [(&str, &(dyn Fn() -> bool + Sync)); 5] = [
        ("circuit breaker", &|| {
            breaker.try_acquire().map(|p| p.success()).is_ok()
        }),
        ("rate limiter", &|| limiter.try_acquire().is_ok()),
        ("bulkhead", &|| bulkhead.try_acquire().map(drop).is_ok()),
        ("adaptive limit", &|| {
            adaptive
                .try_acquire(Priority::Default)
                .map(|p| p.success())
                .is_ok()
        }),
        ("policy (timeout+breaker+limiter+bulkhead)", &|| {
            policy.acquire().map(|p| p.success()).is_ok()
        }),
    ];
    let mut counts = vec![1];
    if n > 1 {
        counts.push(n);
    }
    eprintln!(
        "Quick benchmark: acquire + complete, {} ms per case, 1{} thread(s) on {cores} \
         core(s). For reference numbers run the criterion benches: cargo bench.",
        args.duration_ms,
        if n > 1 {
            format!(" and {n}")
        } else {
            String::new()
        }
    );
    let mut slowest = Duration::ZERO;
    let name_w = cases.iter().map(|c| c.0.len()).max().unwrap_or(0);
    println!(
        "{:name_w$}  {:>7}  {:>12}  {:>10}  {:>14}  {:>9}",
        "primitive", "threads", "ops", "ns/op", "ops/s (total)", "admitted"
    );
    for (name, op) in cases {
        for &threads in &counts {
            let m = measure(threads, duration, op);
            slowest = slowest.max(m.wall);
            let secs = m.window.as_secs_f64();
            // Per-thread cost: the wall time each thread spent per operation.
            let ns = secs * 1e9 * f64::from(threads) / m.ops.max(1) as f64;
            println!(
                "{name:name_w$}  {threads:>7}  {:>12}  {ns:>10.1}  {:>14.0}  {:>8.1}%",
                m.ops,
                m.ops as f64 / secs,
                100.0 * m.admitted as f64 / m.ops.max(1) as f64
            );
        }
    }
    println!(
        "ns/op is the wall time per operation per thread (window × threads / ops); only\n\
         operations that finished inside each case's timed window are counted."
    );
    if n > cores {
        println!(
            "{n} threads on {cores} cores: the threads take turns on the cores, so ops/s is what\n\
             {cores} cores did together under contention, and ns/op includes each thread's wait\n\
             for a core (about {n}/{cores} × the cost of one operation)."
        );
    }
    eprintln!(
        "slowest case took {:.2} s of wall time (its window: {} ms)",
        slowest.as_secs_f64(),
        args.duration_ms
    );
    if cfg!(debug_assertions) {
        eprintln!(
            "warning: this is a debug build; its numbers are meaningless (build with --release)."
        );
    }
    exit::OK
}
