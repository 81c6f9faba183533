//! The limiter's decisions allocate nothing (counted per thread).
#![cfg(not(loom))]

use breakwater::clock::{AnyClock, ManualClock};
use breakwater::limiter::{RateLimiter, RateLimiterConfig};
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
fn hot_paths_allocate_nothing() {
    let clocks = [
        AnyClock::Coarse,
        AnyClock::Monotonic,
        AnyClock::Manual(ManualClock::new()),
    ];
    for clock in clocks {
        let limiter = RateLimiter::with_clock(
            RateLimiterConfig::new(1000, Duration::from_secs(1)).with_burst(10),
            clock,
        )
        .unwrap();
        let n = allocations_in(|| {
            for _ in 0..100 {
                let _ = std::hint::black_box(limiter.try_acquire()); // admitted, then rejected
                let _ = std::hint::black_box(limiter.try_acquire_n(3));
                let _ = std::hint::black_box(limiter.try_acquire_n(11)); // exceeds burst
                let _ = std::hint::black_box(limiter.available());
                let _ = std::hint::black_box(limiter.snapshot());
                if let Ok(r) = limiter.reserve(1, Duration::from_millis(5)) {
                    let _ = r.cancel();
                }
            }
        });
        assert_eq!(n, 0, "{:?} allocated {n} times", limiter.clock());
    }
    let auto = RateLimiter::new(RateLimiterConfig::new(100, Duration::from_secs(1))).unwrap();
    assert_eq!(
        allocations_in(|| for _ in 0..1000 {
            let _ = auto.try_acquire();
        }),
        0
    );
}
