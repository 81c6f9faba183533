//! Our GCRA limiter's `try_acquire` beside governor's direct `check()`, same quota, in
//! the same group: always allowed, mostly rejected (coarse clock by our rule), mostly
//! rejected with burst 1 at 1000/s (a bucket within the coarse lag: the TSC clock by our
//! rule) and at 1/s (coarse first, `CLOCK_MONOTONIC` near the boundary), with 1 and 2
//! threads. `limiter/clock_read` prices each clock beside quanta's (governor's clock).
//! `BW_CALLGRIND=min` also measures what tests do not assert because the hardware and
//! the kernel decide it: the coarse clock's lag, how far a TSC reading goes back between
//! threads and how far it strays from `CLOCK_MONOTONIC`.
//!
//! With `BW_CALLGRIND=<case>/<ours|governor>` set (a case name below), the binary runs
//! that one limiter `BW_CALLS` times (a million by default) and exits: the driver to run under
//! `valgrind --tool=callgrind` for instruction counts. `BW_CALLGRIND=min` prints each
//! case's fastest batch instead (see `min_batches`).

mod common;
use common::threaded;

use breakwater::clock::{AnyClock, Clock};
use breakwater::limiter::{RateLimiter, RateLimiterConfig};
use criterion::{black_box, criterion_group, criterion_main, Criterion};
use governor::{Quota, RateLimiter as Governor};
use std::num::NonZeroU32;
use std::time::Duration;

struct Case {
    name: &'static str,
    rate_per_sec: u32,
    burst: u32,
}

const CASES: [Case; 4] = [
    Case {
        name: "allowed",
        rate_per_sec: 1_000_000_000,
        burst: 1_000_000_000,
    },
    Case {
        name: "rejected",
        rate_per_sec: 10,
        burst: 10,
    },
    // Mostly rejected with an interval (1 ms) below the coarse tick: the precise clock
    // decides every refusal near the boundary.
    Case {
        name: "rejected_1000_burst1",
        rate_per_sec: 1000,
        burst: 1,
    },
    Case {
        name: "rejected_burst1",
        rate_per_sec: 1,
        burst: 1,
    },
];

fn ours(case: &Case) -> RateLimiter {
    RateLimiter::new(
        RateLimiterConfig::new(case.rate_per_sec.into(), Duration::from_secs(1))
            .with_burst(case.burst.into()),
    )
    .unwrap()
}

fn ours_coarse(case: &Case) -> RateLimiter {
    RateLimiter::with_clock(
        RateLimiterConfig::new(case.rate_per_sec.into(), Duration::from_secs(1))
            .with_burst(case.burst.into()),
        AnyClock::Coarse,
    )
    .unwrap()
}

fn governor(case: &Case) -> governor::DefaultDirectRateLimiter {
    let n = |v: u32| NonZeroU32::new(v).unwrap();
    Governor::direct(Quota::per_second(n(case.rate_per_sec)).allow_burst(n(case.burst)))
}

/// The callgrind driver (see the module docs); false when not asked for.
fn callgrind_driver() -> bool {
    let (name, peer, calls) = match common::driver("BW_CALLGRIND=<case>/<ours|governor>") {
        None => return false,
        Some(common::Driver::Min) => {
            min_batches();
            return true;
        }
        Some(common::Driver::Loop { case, peer, calls }) => (case, peer, calls),
    };
    let case = CASES
        .iter()
        .find(|c| c.name == name)
        .expect("a case name of benches/limiter.rs");
    if peer {
        let g = governor(case);
        for _ in 0..calls {
            let _ = black_box(g.check());
        }
    } else {
        let l = ours(case);
        for _ in 0..calls {
            let _ = black_box(l.try_acquire());
        }
    }
    true
}

/// How far a reading can go back when handed between two threads: each reads after
/// seeing the other's latest reading; the worst step back in ns over 2 000 000 readings.
/// For the TSC it is the counter's reordering (`rdtsc` is not serializing) and, on a
/// virtual machine, the skew between its vCPUs' counters; the kernel's
/// `CLOCK_MONOTONIC` orders its reads. Every reader tolerates an earlier reading.
fn cross_thread_step_back(read: &(dyn Fn() -> u64 + Sync)) -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    let (latest, worst) = (AtomicU64::new(0), AtomicU64::new(0));
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                for _ in 0..1_000_000 {
                    // Acquire/Release: a reading seen was taken before this one.
                    let seen = latest.load(Ordering::Acquire);
                    let now = read();
                    worst.fetch_max(seen.saturating_sub(now), Ordering::Relaxed);
                    latest.fetch_max(now, Ordering::Release);
                }
            });
        }
    });
    worst.into_inner()
}

/// How far `CLOCK_MONOTONIC_COARSE` lags `CLOCK_MONOTONIC` here: the worst of
/// `precise - coarse` over 50 ms of reading pairs (precise first, so a preemption
/// between the two can only hide lag), in ns, and the tick. The limiter's coarse-first
/// path takes the lag as under `COARSE_LAG_TICKS` ticks; a late tick (a busy or virtual
/// machine) is what could break that, so it is measured here, not asserted in a test.
fn coarse_lag() -> (u64, u64) {
    use breakwater::clock::{CoarseClock, MonotonicClock};
    let tick = CoarseClock::resolution().as_nanos() as u64;
    let mut worst = 0;
    let start = std::time::Instant::now();
    while start.elapsed() < Duration::from_millis(50) {
        let p = MonotonicClock.now();
        let c = CoarseClock.now();
        worst = worst.max(p.saturating_sub(c));
    }
    (worst, tick)
}

/// How far a TSC reading falls outside the two `CLOCK_MONOTONIC` readings that bracket
/// it, worst over 1 000 000 brackets, in ns, and the time since calibration: the scale's
/// error over that time plus any skew between the vCPUs' counters. The conversion math
/// is proptested (`tests/clock_tsc.rs`); the hardware's agreement is measured here.
fn tsc_off_monotonic(tsc: &breakwater::clock::TscClock) -> (u64, u64) {
    use breakwater::clock::MonotonicClock;
    let mut worst = 0;
    for _ in 0..1_000_000 {
        let before = MonotonicClock.now();
        let t = tsc.now();
        let after = MonotonicClock.now();
        worst = worst
            .max(before.saturating_sub(t))
            .max(t.saturating_sub(after));
    }
    let since = MonotonicClock.now() - tsc.calibration().ns0;
    (worst, since)
}

/// `BW_CALLGRIND=min`: each case's cost per call as the fastest of many short batches,
/// ours and governor's alternating, on one thread and on two threads sharing one limiter
/// (a round's time is its slower thread's). On a loaded machine a batch that ran without
/// being preempted shows the cost, where criterion's mean shows the load.
fn min_batches() {
    let fastest = |threads: usize, f: &(dyn Fn() + Sync)| {
        common::batch_ns(threads, if threads == 1 { 20_000 } else { 100_000 }, f)
    };
    let (lag, tick) = coarse_lag();
    println!(
        "min/clock/coarse_lag: worst {lag} ns, tick {tick} ns ({:.2} ticks; taken as < {})",
        lag as f64 / tick.max(1) as f64,
        breakwater::clock::COARSE_LAG_TICKS
    );
    if let AnyClock::Tsc(tsc) = AnyClock::Monotonic.precise_local() {
        let monotonic = AnyClock::Monotonic;
        println!(
            "min/clock/cross_thread_step_back: tsc {} ns, CLOCK_MONOTONIC {} ns",
            cross_thread_step_back(&|| tsc.now()),
            cross_thread_step_back(&|| monotonic.now())
        );
        let (off, since) = tsc_off_monotonic(&tsc);
        println!(
            "min/clock/tsc_off_monotonic: worst {off} ns outside its CLOCK_MONOTONIC bracket, {:.1} s after calibration",
            since as f64 / 1e9
        );
    }
    for threads in [1, 2] {
        // Two threads need batches long enough to overlap (about a millisecond).
        let rounds = if threads == 1 { 300 } else { 30 };
        for case in &CASES {
            let (l, g) = (ours(case), governor(case));
            let (mut mine, mut theirs) = (f64::MAX, f64::MAX);
            for _ in 0..rounds {
                mine = mine.min(fastest(threads, &|| {
                    let _ = black_box(l.try_acquire());
                }));
                theirs = theirs.min(fastest(threads, &|| {
                    let _ = black_box(g.check());
                }));
            }
            println!(
                "min/limiter/{}/{threads}t: breakwater ({:?}) {mine:.2} ns, governor {theirs:.2} ns, ratio {:.2}",
                case.name,
                l.clock(),
                mine / theirs
            );
        }
    }
}

fn bench(c: &mut Criterion) {
    if callgrind_driver() {
        std::process::exit(0);
    }
    {
        use breakwater::clock::{Clock, CoarseClock, ManualClock, MonotonicClock, TscClock};
        let mut g = c.benchmark_group("limiter/clock_read");
        g.bench_function("coarse", |b| b.iter(|| black_box(CoarseClock.now())));
        g.bench_function("monotonic", |b| b.iter(|| black_box(MonotonicClock.now())));
        if let Some(tsc) = TscClock::get() {
            g.bench_function("tsc", |b| b.iter(|| black_box(tsc.now())));
        }
        let quanta = quanta::Clock::new();
        g.bench_function("quanta", |b| b.iter(|| black_box(quanta.now())));
        #[cfg(target_arch = "x86_64")]
        g.bench_function("rdtsc_alone", |b| {
            // SAFETY: rdtsc exists on every x86-64 CPU and has no memory effects.
            b.iter(|| black_box(unsafe { core::arch::x86_64::_rdtsc() }))
        });
        g.bench_function("any_coarse", |b| {
            let clock = black_box(AnyClock::Coarse);
            b.iter(|| black_box(clock.now()))
        });
        let manual = RateLimiter::with_clock(
            RateLimiterConfig::new(1_000_000_000, Duration::from_secs(1)),
            ManualClock::new(),
        )
        .unwrap();
        g.bench_function("try_acquire_on_manual_clock", |b| {
            b.iter(|| black_box(manual.try_acquire()))
        });
        g.finish();
    }
    for threads in [1usize, 2] {
        for case in &CASES {
            let mut g = c.benchmark_group(format!("limiter/{}/{}t", case.name, threads));
            let l = ours(case);
            let clock = match l.clock() {
                AnyClock::Coarse => "coarse",
                AnyClock::Tsc(_) => "tsc",
                _ => "monotonic",
            };
            g.bench_function(format!("breakwater_{clock}"), |b| {
                b.iter_custom(|iters| {
                    threaded(threads, iters, &|| {
                        let _ = black_box(l.try_acquire());
                    })
                })
            });
            if clock != "coarse" {
                let l = ours_coarse(case);
                g.bench_function("breakwater_forced_coarse", |b| {
                    b.iter_custom(|iters| {
                        threaded(threads, iters, &|| {
                            let _ = black_box(l.try_acquire());
                        })
                    })
                });
            }
            let gov = governor(case);
            g.bench_function("governor", |b| {
                b.iter_custom(|iters| {
                    threaded(threads, iters, &|| {
                        let _ = black_box(gov.check());
                    })
                })
            });
            g.finish();
        }
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
