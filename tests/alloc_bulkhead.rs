//! The bulkhead's try_acquire/release paths allocate nothing (counted per thread).
#![cfg(not(loom))]

use breakwater::bulkhead::{Bulkhead, BulkheadConfig};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::Duration;

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: forwarded unchanged to the system allocator, whose contract is ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` with this layout (see `alloc`).
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations_in(f: impl FnOnce()) -> u64 {
    let before = ALLOCATIONS.with(Cell::get);
    f();
    ALLOCATIONS.with(Cell::get) - before
}

#[test]
fn the_counter_counts() {
    assert_eq!(
        allocations_in(|| drop(std::hint::black_box(Box::new(1u64)))),
        1
    );
}

#[test]
fn try_acquire_and_release_allocate_nothing() {
    let b = Bulkhead::new(BulkheadConfig::new(2)).unwrap();
    let n = allocations_in(|| {
        for _ in 0..1000 {
            let p = b.try_acquire().unwrap();
            let q = b.acquire(Duration::ZERO).unwrap();
            assert!(b.try_acquire().is_err()); // full: the rejection path
            assert!(b.try_acquire_raw().is_err());
            drop((p, q));
            b.try_acquire_raw().unwrap();
            assert!(b.release_raw());
            assert!(!b.release_raw());
            std::hint::black_box(b.snapshot());
        }
    });
    assert_eq!(n, 0);
}
