//! Recording metrics and emitting events allocate nothing.
#![cfg(not(loom))]

use breakwater::metrics::{Event, EventSink, LatencyHistogram, PolicyMetrics};
use breakwater::{Outcome, RejectReason};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Counts allocations made by the current thread only (other test threads don't count).
struct Counting;

thread_local! {
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.with(|c| c.set(c.get() + 1));
        // SAFETY: forwarded unchanged to the system allocator; same contract.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` with this `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.with(|c| c.set(c.get() + 1));
        // SAFETY: forwarded unchanged to the system allocator; same contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations_in(f: impl FnOnce()) -> u64 {
    let before = ALLOCS.with(Cell::get);
    f();
    ALLOCS.with(Cell::get) - before
}

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
