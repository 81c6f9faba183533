//! Shared by the benchmarks: run one operation on several threads at once.

use std::time::{Duration, Instant};

/// Runs `op` `iters` times on each of `threads` threads, released together by a
/// barrier, and returns the slowest thread's time (criterion's `iter_custom` then
/// reports time per call per thread).
pub fn threaded(threads: usize, iters: u64, op: &(dyn Fn() + Sync)) -> Duration {
    let barrier = std::sync::Barrier::new(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    barrier.wait();
                    let start = Instant::now();
                    for _ in 0..iters {
                        op();
                    }
                    start.elapsed()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .max()
            .unwrap()
    })
}
