//! Recording metrics and emitting events allocate nothing.
#![cfg(not(loom))]

mod common;

use common::counting_alloc::{allocations_in, Counting};

use breakwater::metrics::{Event, EventSink, LatencyHistogram, PolicyMetrics};
use breakwater::{Outcome, RejectReason};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn recording_allocates_nothing() {
    let m = PolicyMetrics::new();
    let h = LatencyHistogram::new();
    let n = allocations_in(|| {
        for i in 0..10_000u64 {
            m.on_permitted();
            m.on_complete(Outcome::ALL[(i % 4) as usize], Some(i * 997), i % 5 == 0);
            m.on_complete(Outcome::Success, None, false);
            m.on_rejected(RejectReason::ALL[(i % 6) as usize]);
            m.on_retry();
            m.on_budget_refused();
            m.on_transition((i % 7) as u8);
            h.record_nanos(i.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        }
    });
    assert_eq!(n, 0, "hot path allocated {n} times");
    assert!(m.snapshot().permitted == 10_000);
}

#[test]
fn emitting_allocates_nothing_with_or_without_listener() {
    let sink = EventSink::new();
    let n = allocations_in(|| {
        for i in 0..1_000u64 {
            sink.emit(&Event::transition("payments", 0, 1, i, i));
        }
    });
    assert_eq!(n, 0, "emit without listener allocated {n} times");
    let seen = Arc::new(AtomicU64::new(0));
    let s = Arc::clone(&seen);
    sink.set_listener(move |_: &Event<'_>| {
        s.fetch_add(1, Ordering::Relaxed);
    })
    .unwrap();
    let n = allocations_in(|| {
        for i in 0..1_000u64 {
            sink.emit(&Event::transition("payments", 0, 1, i, i));
            sink.emit(&Event::Rejected {
                policy: "payments",
                reason: RejectReason::LoadShed,
                at_nanos: i,
            });
        }
    });
    assert_eq!(n, 0, "emit with listener allocated {n} times");
    assert_eq!(seen.load(Ordering::Relaxed), 2_000);
}

#[test]
fn a_threads_first_record_allocates_nothing_from_the_heap_allocator() {
    // The first record of a thread claims its metrics slot and registers the
    // thread-exit give-back. Neither goes through the global allocator; the one thing
    // allocated is glibc's own record of the thread-exit hook (a few bytes, once per
    // thread, freed at exit), which this allocator cannot see.
    let m = Arc::new(PolicyMetrics::new());
    let mm = Arc::clone(&m);
    let n = std::thread::spawn(move || {
        allocations_in(|| {
            mm.on_permitted();
            mm.on_complete(Outcome::Success, Some(5_000), false);
        })
    })
    .join()
    .unwrap();
    assert_eq!(n, 0, "a thread's first record allocated {n} times");
    assert_eq!(m.snapshot().success, 1);
}
