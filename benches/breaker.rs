//! Circuit breaker hot paths beside `failsafe` 1.3 and `recloser` 1.4, in the same groups.
//!
//! - `closed/1`: acquire + report success on a closed breaker, one thread.
//! - `open/1`: a rejected acquire on an open breaker, one thread.
//! - `closed/2`, `open/2`: the same work on one shared instance from two threads at
//!   once; the time is per call per thread (wall time of the two threads / iterations).
//!
//! Every breaker uses its crate's default configuration (ours: count window 100,
//! `CoarseClock`) except for a one-hour open period, and failsafe uses its cheapest
//! policy (consecutive failures). Open breakers are opened by failures, not forced, so
//! each rejection takes the same path a real one does (including the clock read).
//!
//! `cargo bench --bench breaker -- --warm-up-time 1 --measurement-time 3`
//!
//! Instruction counts instead of times (one thread, closed, each contender in its own
//! out-of-line loop): run the built binary with `BW_COUNT_ITERS=N` under
//! `valgrind --tool=callgrind` and read the inclusive cost of each `count_*` function in
//! `callgrind_annotate --inclusive=yes`, divided by N. `BW_MIN=1` prints the closed
//! case's fastest batch per call instead, on one and two threads (see `min_batches`).

mod common;

use breakwater::breaker::{BreakerConfig, CircuitBreaker};
use criterion::{black_box, criterion_group, BenchmarkId, Criterion};
use std::sync::Barrier;
use std::time::{Duration, Instant};

/// failsafe with its cheapest policy: consecutive failures only (its default adds a
/// success rate over a time window, which reads the clock on every call: ~80 ns here).
type Failsafe = failsafe::StateMachine<
    failsafe::failure_policy::ConsecutiveFailures<failsafe::backoff::Constant>,
    (),
>;

/// Open periods of the open groups: long enough that no breaker half-opens mid-run.
const LONG: Duration = Duration::from_secs(3600);

fn ours() -> CircuitBreaker {
    CircuitBreaker::new(BreakerConfig::default().with_open_duration(LONG))
        .expect("default configuration")
}

fn failsafe() -> Failsafe {
    let policy =
        failsafe::failure_policy::consecutive_failures(5, failsafe::backoff::constant(LONG));
    failsafe::Config::new().failure_policy(policy).build()
}

fn recloser() -> recloser::Recloser {
    recloser::Recloser::custom().open_wait(LONG).build()
}

#[inline]
fn ours_closed(b: &CircuitBreaker) {
    black_box(b).try_acquire().expect("closed").success();
}

#[inline]
fn ours_call(b: &CircuitBreaker) {
    let _ = black_box(black_box(b).call(|_| Ok::<u32, ()>(1)));
}

#[inline]
fn failsafe_closed(b: &Failsafe) {
    let b = black_box(b);
    assert!(b.is_call_permitted());
    b.on_success();
}

#[inline]
fn recloser_closed(b: &recloser::Recloser) {
    let _ = black_box(black_box(b).call(|| Ok::<u32, ()>(1)));
}

#[inline]
fn ours_open(b: &CircuitBreaker) {
    assert!(black_box(b).try_acquire().is_err());
}

#[inline]
fn failsafe_open(b: &Failsafe) {
    assert!(!black_box(b).is_call_permitted());
}

#[inline]
fn recloser_open(b: &recloser::Recloser) {
    assert!(black_box(b).call(|| Ok::<u32, ()>(1)).is_err());
}

fn open_ours() -> CircuitBreaker {
    let b = ours();
    for _ in 0..100 {
        if let Ok(p) = b.try_acquire() {
            p.failure();
        }
    }
    assert!(b.try_acquire().is_err(), "opened");
    b
}

fn open_failsafe() -> Failsafe {
    let b = failsafe();
    for _ in 0..100 {
        if b.is_call_permitted() {
            b.on_error();
        }
    }
    assert!(!b.is_call_permitted(), "opened");
    b
}

fn open_recloser() -> recloser::Recloser {
    let b = recloser();
    for _ in 0..1000 {
        let _ = b.call(|| Err::<(), ()>(()));
    }
    assert!(b.call(|| Ok::<(), ()>(())).is_err(), "opened");
    b
}

/// Runs `op` `iters` times on each of `threads` threads sharing `target`; returns the
/// wall time between the common start and the last thread's end.
fn threaded<T: Sync>(target: &T, threads: usize, iters: u64, op: fn(&T)) -> Duration {
    let barrier = Barrier::new(threads + 1);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let barrier = &barrier;
                s.spawn(move || {
                    barrier.wait();
                    for _ in 0..iters {
                        op(target);
                    }
                })
            })
            .collect();
        barrier.wait();
        let start = Instant::now();
        for h in handles {
            h.join().unwrap();
        }
        start.elapsed()
    })
}

/// A named extra contender: label, target, operation.
type Labelled<'a, T> = (&'a str, &'a T, fn(&T));

fn group<A: Sync, B: Sync, C: Sync>(
    c: &mut Criterion,
    name: &str,
    ours: (&A, fn(&A)),
    extra: Option<Labelled<'_, A>>,
    failsafe: (&B, fn(&B)),
    recloser: (&C, fn(&C)),
) {
    for threads in [1usize, 2] {
        let mut g = c.benchmark_group(format!("{name}/{threads}"));
        macro_rules! bench {
            ($label:expr, $target:expr, $op:expr) => {
                let (target, op) = ($target, $op);
                g.bench_function(BenchmarkId::from_parameter($label), |b| {
                    if threads == 1 {
                        b.iter(|| op(target))
                    } else {
                        b.iter_custom(|iters| threaded(target, threads, iters, op))
                    }
                });
            };
        }
        bench!("breakwater", ours.0, ours.1);
        if let Some((label, target, op)) = extra {
            bench!(label, target, op);
        }
        bench!("failsafe", failsafe.0, failsafe.1);
        bench!("recloser", recloser.0, recloser.1);
        g.finish();
    }
}

fn benches(c: &mut Criterion) {
    let (a, f, r) = (ours(), failsafe(), recloser());
    group(
        c,
        "closed",
        (&a, ours_closed),
        Some(("breakwater_call", &a, ours_call)),
        (&f, failsafe_closed),
        (&r, recloser_closed),
    );
    let (a, f, r) = (open_ours(), open_failsafe(), open_recloser());
    group(
        c,
        "open",
        (&a, ours_open),
        None,
        (&f, failsafe_open),
        (&r, recloser_open),
    );
}

#[inline(never)]
fn count_breakwater(b: &CircuitBreaker, iters: u64) {
    for _ in 0..iters {
        ours_closed(b);
    }
}

#[inline(never)]
fn count_failsafe(b: &Failsafe, iters: u64) {
    for _ in 0..iters {
        failsafe_closed(b);
    }
}

#[inline(never)]
fn count_recloser(b: &recloser::Recloser, iters: u64) {
    for _ in 0..iters {
        recloser_closed(b);
    }
}

criterion_group!(breaker, benches);

/// `BW_MIN=1`: the closed case's cost per call (acquire + success) as the fastest of
/// 30 batches (about a millisecond each, so that two threads overlap), ours and failsafe's alternating, on one thread and on two threads
/// sharing one breaker (a round's time is its slower thread's). On a loaded machine a
/// batch that ran without being preempted shows the cost, where criterion's mean shows
/// the load.
fn min_batches() {
    fn fastest<T: Sync>(target: &T, threads: usize, op: fn(&T)) -> f64 {
        common::batch_ns(threads, 200_000, &|| op(target))
    }
    let (a, f) = (ours(), failsafe());
    for threads in [1, 2] {
        let (mut mine, mut theirs) = (f64::MAX, f64::MAX);
        for _ in 0..30 {
            mine = mine.min(fastest(&a, threads, ours_closed));
            theirs = theirs.min(fastest(&f, threads, failsafe_closed));
        }
        println!(
            "min/breaker/closed/{threads}t: breakwater {mine:.2} ns, failsafe {theirs:.2} ns, ratio {:.2}",
            mine / theirs
        );
    }
}

fn main() {
    if std::env::var_os("BW_MIN").is_some() {
        min_batches();
        return;
    }
    if let Some(iters) = std::env::var("BW_COUNT_ITERS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        count_breakwater(&ours(), iters);
        count_failsafe(&failsafe(), iters);
        count_recloser(&recloser(), iters);
        return;
    }
    breaker();
    Criterion::default().configure_from_args().final_summary();
}
