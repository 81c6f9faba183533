//! The retry hot paths allocate nothing: `RetryState::next_delay` (with and without a
//! budget), `BackoffConfig::delay`, `RetryBudget::record_request`, `try_withdraw` and
//! `snapshot`. A counting global allocator counts per thread, so other test threads do
//! not disturb the count.
#![cfg(not(loom))]

use breakwater::clock::{Clock, ManualClock};
use breakwater::retry::{
    BackoffConfig, BudgetConfig, Jitter, RetryBudget, RetryConfig, RetryDecision, RetryState,
};
use breakwater::rng::Rng;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::Duration;

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged, so
// `System`'s guarantees hold; the counter is a const-initialized thread-local `Cell`
// without a destructor, whose access never allocates or re-enters the allocator.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|c| c.set(c.get() + 1));
        // SAFETY: forwarded unchanged; see the impl's comment.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged; see the impl's comment.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|c| c.set(c.get() + 1));
        // SAFETY: forwarded unchanged; see the impl's comment.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.with(|c| c.set(c.get() + 1));
        // SAFETY: forwarded unchanged; see the impl's comment.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations made by this thread while running `f`.
fn allocations(f: impl FnOnce()) -> u64 {
    let before = ALLOCATIONS.with(Cell::get);
    f();
    ALLOCATIONS.with(Cell::get) - before
}

#[test]
fn counter_sees_allocations() {
    assert!(allocations(|| drop(std::hint::black_box(vec![1u8; 16]))) >= 1);
}

#[test]
fn backoff_delay_allocates_nothing() {
    let mut rng = Rng::new(3);
    for jitter in Jitter::ALL {
        let b = BackoffConfig::default().with_jitter(jitter);
        let n = allocations(|| {
            let mut previous = Duration::ZERO;
            for retry in 0..1_000 {
                previous = b.delay(retry, previous, &mut rng);
                std::hint::black_box(b.bounds(retry, previous));
            }
        });
        assert_eq!(n, 0, "{jitter}");
    }
}

#[test]
fn budget_hot_paths_allocate_nothing() {
    let clock = ManualClock::new();
    let budget = RetryBudget::with_clock(BudgetConfig::default(), clock.clone()).unwrap();
    let n = allocations(|| {
        for i in 0..10_000u32 {
            budget.record_request();
            std::hint::black_box(budget.try_withdraw());
            if i % 100 == 0 {
                clock.advance(Duration::from_millis(150));
                std::hint::black_box(budget.snapshot());
            }
        }
    });
    assert_eq!(n, 0);
}

#[test]
fn next_delay_allocates_nothing() {
    let clock = ManualClock::new();
    let budget = RetryBudget::with_clock(BudgetConfig::default(), clock.clone()).unwrap();
    let config = RetryConfig::default()
        .with_max_attempts(50)
        .with_max_elapsed(Some(Duration::from_secs(3600)));
    let mut decisions = 0;
    let n = allocations(|| {
        for seed in 0..200 {
            budget.record_request();
            let deadline = Some(clock.now() + 1_000_000_000_000);
            let mut state = RetryState::new(&config, seed, clock.now(), deadline);
            let with_budget = seed % 2 == 0;
            loop {
                let retry_after = (seed % 3 == 0).then_some(Duration::from_millis(5));
                let decision = if with_budget {
                    state.next_delay(clock.now(), retry_after, Some(&budget))
                } else {
                    state.next_delay::<ManualClock>(clock.now(), retry_after, None)
                };
                decisions += 1;
                match decision {
                    RetryDecision::RetryAfter(d) => clock.advance(d),
                    RetryDecision::GiveUp(_) => break,
                }
            }
        }
    });
    assert_eq!(n, 0);
    assert!(decisions > 1_000, "{decisions}");
}
