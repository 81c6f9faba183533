//! Per-key limits beside governor's keyed limiter (`RateLimiter::keyed`, a DashMap of
//! GCRA states), same quota, string keys as a gateway sees them (`client-N`): 1 000
//! and 1 000 000 distinct keys, 1 and 2 threads, every call on the next key of a
//! fixed shuffled sequence. Before the timings, the memory each holds once it has seen
//! every key (resident set growth, `/proc/self/statm`), printed as
//! `memory/keyed/<keys>: ...`.
//!
//! Ours is sized for the keys (`max_keys` = the key count); each key may live in either
//! of two buckets, so all of them fit (the memory line prints the evictions of one
//! pass: 0) and the two limiters' decisions are the same. At 1 000 000 keys a key's
//! state has expired by its next visit; it is found in its slot all the same (a new
//! key takes an empty slot before an expired one), so most calls take one bucket lock.
//! At 1 000 keys most calls are refusals, read without a lock.
//!
//! With `BW_CALLGRIND=<keys>/<ours|governor>` set, the binary warms that one limiter
//! with every key, runs `BW_CALLS` calls (a million) and exits: the driver to run under
//! `valgrind --tool=callgrind` (instruction counts minus the warm-up's; `BW_RATE`
//! lowers the rate to match valgrind's slower time).

mod common;
use common::threaded_indexed;

use breakwater::keyed::{KeyedLimiter, PerKeyConfig};
use criterion::{black_box, criterion_group, Criterion};
use governor::{Quota, RateLimiter as Governor};
use std::num::NonZeroU32;
use std::time::Duration;

const RATE: u32 = 1_000;
const SIZES: [usize; 2] = [1_000, 1_000_000];

fn keys(n: usize) -> Vec<String> {
    // A fixed odd multiplier walks every index once in a scattered order.
    (0..n)
        .map(|i| format!("client-{}", (i as u64).wrapping_mul(0x9E37_79B9) % n as u64))
        .collect()
}

fn ours(n: usize) -> KeyedLimiter {
    ours_at(n, RATE)
}

fn ours_at(n: usize, rate: u32) -> KeyedLimiter {
    KeyedLimiter::new(
        PerKeyConfig::new(rate.into(), Duration::from_secs(1)).with_max_keys(n as u32),
    )
    .unwrap()
}

fn governor() -> governor::DefaultKeyedRateLimiter<String> {
    governor_at(RATE)
}

fn governor_at(rate: u32) -> governor::DefaultKeyedRateLimiter<String> {
    Governor::keyed(Quota::per_second(NonZeroU32::new(rate).unwrap()))
}

fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

fn memory_report() {
    for n in SIZES {
        let keys = keys(n);
        let before = resident_bytes();
        let g = governor();
        for k in &keys {
            let _ = g.check_key(k);
        }
        let gov = resident_bytes().saturating_sub(before);
        drop(g);
        let before = resident_bytes();
        let l = ours(n);
        for k in &keys {
            let _ = l.try_acquire(k.as_bytes()).map(drop);
        }
        let mine = resident_bytes().saturating_sub(before);
        let s = l.snapshot();
        println!(
            "memory/keyed/{n}: breakwater {} KiB ({} slots, {} keys, {} evictions), governor {} KiB",
            mine / 1024,
            s.capacity,
            s.active_keys,
            s.evictions,
            gov / 1024
        );
    }
}

fn bench(c: &mut Criterion) {
    for n in SIZES {
        let keys = keys(n);
        let l = ours(n);
        let g = governor();
        // Warm both with every key, so the timings are of lookups, not first inserts.
        for k in &keys {
            let _ = l.try_acquire(k.as_bytes()).map(drop);
            let _ = g.check_key(k);
        }
        for threads in [1usize, 2] {
            let mut group = c.benchmark_group(format!("keyed/{n}_keys/{threads}t"));
            let pick = |t: usize, i: u64| &keys[(i as usize).wrapping_add(t * n / 2) % n];
            group.bench_function("breakwater", |b| {
                b.iter_custom(|iters| {
                    threaded_indexed(threads, iters, &|t, i| {
                        let _ = black_box(l.try_acquire(pick(t, i).as_bytes()).map(drop));
                    })
                })
            });
            group.bench_function("governor", |b| {
                b.iter_custom(|iters| {
                    threaded_indexed(threads, iters, &|t, i| {
                        let _ = black_box(g.check_key(pick(t, i)));
                    })
                })
            });
            group.finish();
        }
    }
}

criterion_group!(benches, bench);

/// `BW_CALLGRIND=min`: the cost per call as the fastest of many short batches, ours
/// and governor's alternating, one thread, each on its next keys of the sequence. On a
/// loaded machine a batch that ran without being preempted shows the cost, where
/// criterion's mean shows the load.
fn min_batches() {
    const BATCH: usize = 10_000;
    for n in SIZES {
        let keys = keys(n);
        let (l, g) = (ours(n), governor());
        for k in &keys {
            let _ = l.try_acquire(k.as_bytes()).map(drop);
            let _ = g.check_key(k);
        }
        let (mut next_ours, mut next_gov) = (0usize, 0usize);
        let (mut mine, mut theirs) = (f64::MAX, f64::MAX);
        for _ in 0..300 {
            let start = std::time::Instant::now();
            for _ in 0..BATCH {
                let _ = black_box(l.try_acquire(keys[next_ours % n].as_bytes()).map(drop));
                next_ours += 1;
            }
            mine = mine.min(start.elapsed().as_nanos() as f64 / BATCH as f64);
            let start = std::time::Instant::now();
            for _ in 0..BATCH {
                let _ = black_box(g.check_key(&keys[next_gov % n]));
                next_gov += 1;
            }
            theirs = theirs.min(start.elapsed().as_nanos() as f64 / BATCH as f64);
        }
        println!(
            "min/keyed/{n}_keys/1t: breakwater {mine:.2} ns, governor {theirs:.2} ns, ratio {:.2}",
            mine / theirs
        );
    }
}

/// The callgrind driver (see the module docs); false when not asked for.
fn callgrind_driver() -> bool {
    let (n, peer, calls) = match common::driver("BW_CALLGRIND=<keys>/<ours|governor>") {
        None => return false,
        Some(common::Driver::Min) => {
            min_batches();
            return true;
        }
        Some(common::Driver::Loop { case, peer, calls }) => {
            let n: usize = case.parse().expect("a key count");
            (n, peer, calls as usize)
        }
    };
    let keys = keys(n);
    // Under valgrind time runs ~50 times slower: `BW_RATE` (per second) puts the
    // driver in the regime the bench times (each key's refill per visit).
    let rate = common::env_number("BW_RATE", RATE.into()) as u32;
    if peer {
        let g = governor_at(rate);
        for k in keys.iter().cycle().take(n + calls) {
            let _ = black_box(g.check_key(k));
        }
    } else {
        let l = ours_at(n, rate);
        for k in keys.iter().cycle().take(n + calls) {
            let _ = black_box(l.try_acquire(k.as_bytes()).map(drop));
        }
    }
    true
}

fn main() {
    if callgrind_driver() {
        return;
    }
    memory_report();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
