//! What the metrics path adds to one acquire + complete.
//!
//! Each group runs a stand-in permit (a bulkhead-like in-flight counter: one `fetch_add`
//! on acquire, one `fetch_sub` on complete) without metrics, with [`PolicyMetrics`]
//! (`on_permitted` + `on_complete` with a duration), and with a mutex-guarded counter
//! block as the naive reference, and with a single extra `fetch_add` to calibrate what
//! one locked add costs on the machine. The budget: `with_metrics − baseline
//! ≤ 5 ns`. The bench threads own metrics slots, so the metrics path is plain stores into
//! their own shards (`permitted`; the outcome, the bucket, the sum) and no locked add;
//! each run builds a new `PolicyMetrics`, so its first call on each thread creates that
//! thread's shard (once per run, amortized over the run's iterations).
//!
//! `snapshot` reads a policy one thread recorded on (one shard).
//!
//! Run: `cargo bench --bench metrics -- --warm-up-time 1 --measurement-time 3`
//!
//! With `BW_CALLGRIND=<baseline|with_metrics|snapshot>/ours` the binary runs that case
//! `BW_CALLS` times (a million by default) on one thread and exits: the driver for
//! `valgrind --tool=callgrind` instruction counts (the metrics cost per call is
//! `with_metrics − baseline`). `BW_CALLGRIND=min` prints each case's fastest batch,
//! the cases alternating.
use breakwater::metrics::PolicyMetrics;
use breakwater::Outcome;
use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion};

mod common;
use common::threaded_indexed;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// A stand-in for a primitive's acquire/complete: one in-flight counter.
#[derive(Default)]
struct Permits {
    in_flight: AtomicU64,
}

impl Permits {
    #[inline]
    fn acquire(&self) {
        self.in_flight.fetch_add(1, Ordering::Acquire);
    }
    #[inline]
    fn complete(&self) {
        self.in_flight.fetch_sub(1, Ordering::Release);
    }
}

/// The naive alternative: every counter behind one mutex.
#[derive(Default)]
struct MutexCounters {
    inner: Mutex<(u64, [u64; 4], Vec<u64>)>,
}

impl MutexCounters {
    fn new() -> Self {
        Self {
            inner: Mutex::new((
                0,
                [0; 4],
                vec![0; breakwater::metrics::LatencyHistogram::BUCKETS],
            )),
        }
    }
    fn on_permitted(&self) {
        self.inner.lock().unwrap().0 += 1;
    }
    fn on_complete(&self, outcome: Outcome, nanos: u64) {
        let mut g = self.inner.lock().unwrap();
        g.1[outcome as usize] += 1;
        let i = breakwater::metrics::LatencyHistogram::bucket_index(nanos);
        g.2[i] += 1;
    }
}

/// A varying duration so different buckets are hit, as in real traffic.
#[inline]
fn duration_of(i: u64) -> u64 {
    20_000 + (i.wrapping_mul(0x9e37_79b9) & 0xF_FFFF) * 16
}

#[derive(Clone, Copy)]
enum Variant {
    Baseline,
    /// The baseline plus one relaxed `fetch_add`: the unit every counter costs.
    OneMoreAtomicAdd,
    WithMetrics,
    WithMutexCounters,
}

struct Shared {
    permits: Permits,
    metrics: PolicyMetrics,
    mutex: MutexCounters,
    extra: AtomicU64,
}

#[inline]
fn one_call(s: &Shared, variant: Variant, i: u64) {
    match variant {
        Variant::Baseline => {
            s.permits.acquire();
            black_box(duration_of(i));
            s.permits.complete();
        }
        Variant::OneMoreAtomicAdd => {
            s.permits.acquire();
            let d = black_box(duration_of(i));
            s.permits.complete();
            s.extra.fetch_add(d, Ordering::Relaxed);
        }
        Variant::WithMetrics => {
            s.permits.acquire();
            s.metrics.on_permitted();
            let d = black_box(duration_of(i));
            s.permits.complete();
            s.metrics.on_complete(Outcome::Success, Some(d), false);
        }
        Variant::WithMutexCounters => {
            s.permits.acquire();
            s.mutex.on_permitted();
            let d = black_box(duration_of(i));
            s.permits.complete();
            s.mutex.on_complete(Outcome::Success, d);
        }
    }
}

fn run(threads: usize, variant: Variant, iters: u64) -> Duration {
    let shared = Shared {
        permits: Permits::default(),
        metrics: PolicyMetrics::new(),
        mutex: MutexCounters::new(),
        extra: AtomicU64::new(0),
    };
    // Per-call time per thread: the slowest thread's wall time over its `iters` calls.
    threaded_indexed(threads, iters, &|t, i| {
        one_call(&shared, variant, i ^ (t as u64) << 40)
    })
}

/// A policy's metrics after 10 000 recorded calls on this thread: what `snapshot` reads.
fn recorded() -> PolicyMetrics {
    let m = PolicyMetrics::new();
    for i in 0..10_000 {
        m.on_permitted();
        m.on_complete(Outcome::Success, Some(duration_of(i)), false);
    }
    m
}

/// The callgrind and fastest-batch drivers (see the module docs); false when not asked for.
fn callgrind_driver() -> bool {
    let shared = Shared {
        permits: Permits::default(),
        metrics: PolicyMetrics::new(),
        mutex: MutexCounters::new(),
        extra: AtomicU64::new(0),
    };
    let m = recorded();
    let (case, calls) = match common::driver("BW_CALLGRIND=<baseline|with_metrics|snapshot>/ours") {
        None => return false,
        Some(common::Driver::Loop { case, calls, .. }) => (case, calls),
        Some(common::Driver::Min) => {
            let (mut base, mut with, mut snap) = (f64::MAX, f64::MAX, f64::MAX);
            let i = AtomicU64::new(0);
            for _ in 0..300 {
                base = base.min(common::batch_ns(1, 20_000, &|| {
                    one_call(
                        &shared,
                        Variant::Baseline,
                        i.fetch_add(1, Ordering::Relaxed),
                    )
                }));
                with = with.min(common::batch_ns(1, 20_000, &|| {
                    one_call(
                        &shared,
                        Variant::WithMetrics,
                        i.fetch_add(1, Ordering::Relaxed),
                    )
                }));
                snap = snap.min(common::batch_ns(1, 200, &|| {
                    black_box(m.snapshot());
                }));
            }
            println!(
                "min/metrics/1t: baseline {base:.2} ns, with_metrics {with:.2} ns, cost {:.2} ns; snapshot {snap:.0} ns",
                with - base
            );
            return true;
        }
    };
    for i in 0..calls {
        match case.as_str() {
            "baseline" => one_call(&shared, Variant::Baseline, i),
            "with_metrics" => one_call(&shared, Variant::WithMetrics, i),
            "snapshot" => {
                black_box(m.snapshot());
            }
            other => panic!("no case {other} in benches/metrics.rs"),
        }
    }
    true
}

fn overhead(c: &mut Criterion) {
    if callgrind_driver() {
        std::process::exit(0);
    }
    for threads in [1usize, 2] {
        let mut group = c.benchmark_group(format!("acquire_complete/{threads}_thread"));
        for (name, variant) in [
            ("baseline", Variant::Baseline),
            ("one_more_atomic_add", Variant::OneMoreAtomicAdd),
            ("with_metrics", Variant::WithMetrics),
            ("with_mutex_counters", Variant::WithMutexCounters),
        ] {
            group.bench_function(BenchmarkId::from_parameter(name), |b| {
                b.iter_custom(|iters| run(threads, variant, iters))
            });
        }
        group.finish();
    }
}

fn snapshot(c: &mut Criterion) {
    let m = recorded();
    c.bench_function("snapshot", |b| b.iter(|| black_box(m.snapshot())));
}

criterion_group!(benches, overhead, snapshot);
criterion_main!(benches);
