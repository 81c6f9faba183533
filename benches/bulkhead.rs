//! Bulkhead try_acquire + release beside a std Mutex counter, a parking_lot Mutex
//! counter (the peer of issue 14's table), a parking_lot Mutex + Condvar semaphore, and
//! the floor: one atomic add + sub. 1 and 2 threads; at 2 both threads share the one
//! bulkhead (time per call per thread).

mod common;
use common::threaded;

use breakwater::bulkhead::{Bulkhead, BulkheadConfig};
use criterion::{black_box, criterion_group, Criterion};
use std::sync::atomic::{AtomicU32, Ordering};

const MAX: u32 = 64;

/// A std Mutex counter.
struct StdCounter(std::sync::Mutex<u32>);

impl StdCounter {
    fn try_acquire(&self) -> bool {
        let mut n = self.0.lock().unwrap();
        if *n < MAX {
            *n += 1;
            true
        } else {
            false
        }
    }
    fn release(&self) {
        *self.0.lock().unwrap() -= 1;
    }
}

/// A parking_lot Mutex counter: the same counter as `StdCounter` under the faster lock.
struct PlCounter(parking_lot::Mutex<u32>);

impl PlCounter {
    fn try_acquire(&self) -> bool {
        let mut n = self.0.lock();
        if *n < MAX {
            *n += 1;
            true
        } else {
            false
        }
    }
    fn release(&self) {
        *self.0.lock() -= 1;
    }
}

/// A parking_lot semaphore in the classic shape: count + waiters under a mutex, a
/// condvar notified on release when someone waits.
struct PlSemaphore {
    state: parking_lot::Mutex<(u32, u32)>,
    cv: parking_lot::Condvar,
}

impl PlSemaphore {
    fn try_acquire(&self) -> bool {
        let mut s = self.state.lock();
        if s.0 < MAX {
            s.0 += 1;
            true
        } else {
            false
        }
    }
    fn release(&self) {
        let mut s = self.state.lock();
        s.0 -= 1;
        if s.1 > 0 {
            self.cv.notify_one();
        }
    }
}

fn bench(c: &mut Criterion) {
    for threads in [1usize, 2] {
        let mut g = c.benchmark_group(format!("bulkhead/acquire_release/{threads}t"));
        let b = Bulkhead::new(BulkheadConfig::new(MAX)).unwrap();
        g.bench_function("breakwater", |bench| {
            bench.iter_custom(|iters| {
                threaded(threads, iters, &|| {
                    drop(black_box(b.try_acquire()));
                })
            })
        });
        g.bench_function("breakwater_raw", |bench| {
            bench.iter_custom(|iters| {
                threaded(threads, iters, &|| {
                    if black_box(b.try_acquire_raw()).is_ok() {
                        b.release_raw();
                    }
                })
            })
        });
        let m = StdCounter(std::sync::Mutex::new(0));
        g.bench_function("std_mutex_counter", |bench| {
            bench.iter_custom(|iters| {
                threaded(threads, iters, &|| {
                    if black_box(m.try_acquire()) {
                        m.release();
                    }
                })
            })
        });
        let plc = PlCounter(parking_lot::Mutex::new(0));
        g.bench_function("parking_lot_mutex_counter", |bench| {
            bench.iter_custom(|iters| {
                threaded(threads, iters, &|| {
                    if black_box(plc.try_acquire()) {
                        plc.release();
                    }
                })
            })
        });
        let pl = PlSemaphore {
            state: parking_lot::Mutex::new((0, 0)),
            cv: parking_lot::Condvar::new(),
        };
        g.bench_function("parking_lot_semaphore", |bench| {
            bench.iter_custom(|iters| {
                threaded(threads, iters, &|| {
                    if black_box(pl.try_acquire()) {
                        pl.release();
                    }
                })
            })
        });
        let a = AtomicU32::new(0);
        g.bench_function("atomic_add_sub", |bench| {
            bench.iter_custom(|iters| {
                threaded(threads, iters, &|| {
                    black_box(a.fetch_add(1, Ordering::Acquire));
                    a.fetch_sub(1, Ordering::Release);
                })
            })
        });
        g.finish();
    }
}

#[inline(never)]
fn count_breakwater(b: &Bulkhead, iters: u64) {
    for _ in 0..iters {
        drop(black_box(b.try_acquire()));
    }
}

#[inline(never)]
fn count_parking_lot(c: &PlCounter, iters: u64) {
    for _ in 0..iters {
        if black_box(c.try_acquire()) {
            c.release();
        }
    }
}

criterion_group!(benches, bench);

/// `BW_COUNT_ITERS=N` under callgrind: one thread, each contender in its own out-of-line
/// loop (inclusive cost of `count_*` / N = instructions per acquire + release).
fn main() {
    if let Some(iters) = std::env::var("BW_COUNT_ITERS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        count_breakwater(&Bulkhead::new(BulkheadConfig::new(MAX)).unwrap(), iters);
        count_parking_lot(&PlCounter(parking_lot::Mutex::new(0)), iters);
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
