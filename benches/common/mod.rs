//! Shared by the benchmarks: run one operation on several threads at once, time a
//! batch for the fastest-batch drivers, read the callgrind drivers' settings.
#![allow(dead_code)] // each bench uses some of the entry points

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

/// What `BW_CALLGRIND` asks a bench binary to do instead of its criterion groups.
#[allow(dead_code)] // each bench uses the parts it needs
pub enum Driver {
    /// `min`: the fastest of many short batches per case.
    Min,
    /// `<case>/<ours|governor>`: one case in a loop of `calls` (`BW_CALLS`, default
    /// 1 000 000), for callgrind's instruction counts.
    Loop {
        case: String,
        peer: bool,
        calls: u64,
    },
}

/// The request in `BW_CALLGRIND`, if any (`usage` names the expected form).
#[allow(dead_code)]
pub fn driver(usage: &str) -> Option<Driver> {
    let what = std::env::var("BW_CALLGRIND").ok()?;
    if what == "min" {
        return Some(Driver::Min);
    }
    let (case, who) = what.split_once('/').unwrap_or_else(|| panic!("{usage}"));
    Some(Driver::Loop {
        case: case.to_string(),
        peer: who == "governor",
        calls: env_number("BW_CALLS", 1_000_000),
    })
}

/// The number in the environment variable `name`, or `default`.
#[allow(dead_code)]
pub fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One batch of `batch` calls of `op` on each of `threads` threads (released together
/// by a barrier), in ns per call: the slower thread's time. Each thread times its own
/// batch, so a main thread preempted at the barrier cannot shorten the round. The
/// fastest-batch drivers (`BW_CALLGRIND=min`, `BW_MIN=1`) keep the minimum over many
/// rounds: on a loaded machine a batch that ran without being preempted shows the cost,
/// where criterion's mean shows the load.
pub fn batch_ns(threads: usize, batch: u32, op: &(dyn Fn() + Sync)) -> f64 {
    let run = || {
        let start = Instant::now();
        for _ in 0..batch {
            op();
        }
        start.elapsed().as_nanos() as f64 / f64::from(batch)
    };
    if threads == 1 {
        return run();
    }
    let barrier = std::sync::Barrier::new(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    barrier.wait();
                    run()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .fold(0.0, f64::max)
    })
}
