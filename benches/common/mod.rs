//! Shared by the benchmarks: run one operation on several threads at once.
#![allow(dead_code)] // each bench uses one of the two entry points

use std::time::{Duration, Instant};

/// Runs `op` `iters` times on each of `threads` threads, released together by a
/// barrier, and returns the slowest thread's time (criterion's `iter_custom` then
/// reports time per call per thread).
pub fn threaded(threads: usize, iters: u64, op: &(dyn Fn() + Sync)) -> Duration {
    threaded_indexed(threads, iters, &|_, _| op())
}

/// [`threaded`] with `op(thread, iteration)`, for operations that vary their input.
/// One thread runs on the calling thread, without a spawn or a barrier.
pub fn threaded_indexed(threads: usize, iters: u64, op: &(dyn Fn(usize, u64) + Sync)) -> Duration {
    let run = |thread: usize| {
        let start = Instant::now();
        for i in 0..iters {
            op(thread, i);
        }
        start.elapsed()
    };
    if threads == 1 {
        return run(0);
    }
    let barrier = std::sync::Barrier::new(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (barrier, run) = (&barrier, &run);
                s.spawn(move || {
                    barrier.wait();
                    run(t)
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
