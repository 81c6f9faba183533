//! Threads racing on one bulkhead, with and without waiting: the limit holds, waiters
//! are served, and nothing leaks.

#![cfg(not(loom))]

#[allow(dead_code)]
mod common;
use common::interleaving;

use breakwater::bulkhead::{Bulkhead, BulkheadConfig};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

#[test]
fn limit_holds_and_nothing_leaks() {
    let max = 2;
    let b = Bulkhead::new(BulkheadConfig::new(max)).unwrap();
    let inside = AtomicU32::new(0);
    let peak = AtomicU32::new(0);
    let rejected = AtomicU64::new(0);
    let waited_ok = AtomicU64::new(0);
    let granted = AtomicU64::new(0);
    let run = Duration::from_millis(200);
    thread::scope(|s| {
        for id in 0..4u32 {
            let (b, inside, peak, rejected, waited_ok, granted) =
                (&b, &inside, &peak, &rejected, &waited_ok, &granted);
            s.spawn(move || {
                let start = Instant::now();
                let mut i = 0u64;
                while start.elapsed() < run {
                    i += 1;
                    let waiting = (i + u64::from(id)) % 3 == 0;
                    let permit = if waiting {
                        b.try_acquire_for(Duration::from_micros(200))
                    } else {
                        b.try_acquire()
                    };
                    match permit {
                        Ok(p) => {
                            let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                            assert!(now <= max, "{now} inside a bulkhead of {max}");
                            peak.fetch_max(now, Ordering::Relaxed);
                            granted.fetch_add(1, Ordering::Relaxed);
                            if waiting {
                                waited_ok.fetch_add(1, Ordering::Relaxed);
                            }
                            for _ in 0..50 {
                                std::hint::spin_loop();
                            }
                            inside.fetch_sub(1, Ordering::SeqCst);
                            drop(p);
                        }
                        Err(_) => {
                            rejected.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            });
        }
    });
    // Never more than the limit at once, however the threads were scheduled.
    assert!(peak.load(Ordering::Relaxed) <= max, "over the limit");
    interleaving::report(
        "bulkhead",
        peak.load(Ordering::Relaxed) == max && rejected.load(Ordering::Relaxed) > 0,
        format_args!(
            "peak {} of {max}, {} rejected, {} granted after a wait",
            peak.load(Ordering::Relaxed),
            rejected.load(Ordering::Relaxed),
            waited_ok.load(Ordering::Relaxed)
        ),
    );
    assert!(granted.load(Ordering::Relaxed) > 1000);
    let s = b.snapshot();
    assert_eq!(
        (s.in_flight, s.waiting, s.available),
        (0, 0, max),
        "leaked: {s:?}"
    );
}
