//! The bulkhead's try_acquire/release paths allocate nothing (counted per thread).
#![cfg(not(loom))]

mod common;

use common::counting_alloc::{allocations_in, Counting};

use breakwater::bulkhead::{Bulkhead, BulkheadConfig};
use std::time::Duration;

#[global_allocator]
static GLOBAL: Counting = Counting;

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
            let q = b.try_acquire_for(Duration::ZERO).unwrap();
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
