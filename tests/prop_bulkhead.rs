//! The bulkhead against a plain counter, one thread at a time.
#![cfg(not(loom))]

use breakwater::bulkhead::{Bulkhead, BulkheadConfig};
use proptest::prelude::*;
use std::time::Duration;

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2000)
}

#[derive(Debug, Clone)]
enum Op {
    TryAcquire,
    TryAcquireRaw,
    AcquireNoWait,
    DropPermit(usize),
    ReleaseRaw,
    Forget,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => Just(Op::TryAcquire),
        2 => Just(Op::TryAcquireRaw),
        1 => Just(Op::AcquireNoWait),
        3 => any::<usize>().prop_map(Op::DropPermit),
        2 => Just(Op::ReleaseRaw),
        1 => Just(Op::Forget),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn matches_a_counter(max in 1u32..=5, ops in proptest::collection::vec(op(), 1..80)) {
        let b = Bulkhead::new(BulkheadConfig::new(max)).unwrap();
        let mut permits = Vec::new();
        let mut raw = 0u32;   // raw permits out
        let mut leaked = 0u32; // forgotten permits
        for op in ops {
            let out = permits.len() as u32 + raw + leaked;
            match op {
                Op::TryAcquire | Op::AcquireNoWait => {
                    let got = if matches!(op, Op::TryAcquire) { b.try_acquire() } else { b.try_acquire_for(Duration::ZERO) };
                    prop_assert_eq!(got.is_ok(), out < max);
                    if let Ok(p) = got { permits.push(p); }
                }
                Op::TryAcquireRaw => {
                    let ok = b.try_acquire_raw().is_ok();
                    prop_assert_eq!(ok, out < max);
                    raw += ok as u32;
                }
                Op::DropPermit(i) => {
                    if !permits.is_empty() { drop(permits.swap_remove(i % permits.len())); }
                }
                Op::ReleaseRaw => {
                    // Only a raw holder releases raw; with none out at all it must refuse.
                    if raw > 0 { prop_assert!(b.release_raw()); raw -= 1; }
                    else if out == 0 { prop_assert!(!b.release_raw()); }
                }
                Op::Forget => {
                    if let Some(p) = permits.pop() { std::mem::forget(p); leaked += 1; }
                }
            }
            let out = permits.len() as u32 + raw + leaked;
            let s = b.snapshot();
            prop_assert_eq!(s.in_flight, out);
            prop_assert_eq!(s.available, max - out);
            prop_assert_eq!(s.waiting, 0);
        }
    }
}
