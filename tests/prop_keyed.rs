//! Per-key limits against an exact model: an unbounded map of GCRA states (and
//! permits held) per key.
//!
//! - In a table too small for the keys (one bucket, or a few, each key in either of its
//!   two), evictions happen: every call the keyed
//!   limiter lets through beyond the model's is paid for by the debt of an evicted key
//!   (`evicted_debt`, in permits), checked after every call; and until the first
//!   eviction every decision is the model's.
//! - In a table big enough, with concurrency limits and permits held and given back in
//!   any order, every decision is the model's, reason and wait included.
#![cfg(not(loom))]

use std::collections::HashMap;
use std::time::Duration;

use breakwater::clock::ManualClock;
use breakwater::keyed::{KeySlot, KeyedLimiter, PerKeyConfig};
use breakwater::RejectReason;
use proptest::prelude::*;

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(256)
}

/// One emission interval, in nanoseconds (rate = 1 per `I` ns: exact units).
const I: u64 = 10;

/// The exact per-key limiter: GCRA per key with no bound on keys.
#[derive(Default)]
struct Model {
    tat: HashMap<u16, u64>,
    held: HashMap<u16, u32>,
}

impl Model {
    fn acquire(
        &mut self,
        key: u16,
        now: u64,
        burst: u64,
        max_held: Option<u32>,
    ) -> Result<(), (RejectReason, Option<Duration>)> {
        let held = self.held.entry(key).or_default();
        if max_held.is_some_and(|m| *held >= m) {
            return Err((RejectReason::BulkheadFull, None));
        }
        let tat = self.tat.entry(key).or_default();
        let new_tat = (*tat).max(now) + I;
        if new_tat > now + burst * I {
            return Err((
                RejectReason::RateLimited,
                Some(Duration::from_nanos(new_tat - now - burst * I)),
            ));
        }
        *tat = new_tat;
        if max_held.is_some() {
            *held += 1;
        }
        Ok(())
    }
}

fn seed() -> impl Strategy<Value = [u64; 2]> {
    any::<[u64; 2]>()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn evictions_bound_every_extra_admission(
        burst in 1u64..5,
        // One bucket of 7 slots, two (a key in either) or four, for 16 keys.
        max_keys in prop::sample::select(vec![3u32, 5, 9]),
        seed in seed(),
        // Mostly calls a fraction of an interval apart, so that 16 keys keep debts
        // in 7 slots and evictions are common.
        calls in prop::collection::vec(
            (0u16..16, prop_oneof![6 => 0u64..2, 1 => 0u64..4 * I]),
            1..300,
        ),
    ) {
        let clock = ManualClock::new();
        let config = PerKeyConfig::new(1, Duration::from_nanos(I)).with_burst(burst).with_max_keys(max_keys);
        let limiter = KeyedLimiter::with_clock_and_seed(config, clock.clone(), seed).unwrap();
        let mut model = Model::default();
        let mut extra: HashMap<u16, i64> = HashMap::new();
        for (i, &(key, dt)) in calls.iter().enumerate() {
            clock.advance(Duration::from_nanos(dt));
            let now = breakwater::clock::Clock::now(&clock);
            let evicted_before = limiter.snapshot().evictions;
            let ours = limiter.try_acquire(&key.to_le_bytes()).map(drop).map_err(|r| (r.reason, r.retry_after));
            let exact = model.acquire(key, now, burst, None);
            if evicted_before == 0 {
                prop_assert_eq!(ours, exact, "call {} key {} at {}", i, key, now);
            }
            *extra.entry(key).or_default() += i64::from(ours.is_ok()) - i64::from(exact.is_ok());
            let over: i64 = extra.values().map(|&e| e.max(0)).sum();
            let s = limiter.snapshot();
            prop_assert!(over as u64 <= s.evicted_debt,
                "call {i}: {over} extra admissions, evicted debt {} ({} evictions)",
                s.evicted_debt, s.evictions);
            prop_assert!(s.evicted_debt <= s.evictions * burst);
        }

    }

    #[test]
    fn a_big_enough_table_is_exact_with_permits_held(
        burst in 1u64..4,
        max_held in 1u32..3,
        seed in seed(),
        ops in prop::collection::vec((0u16..6, 0u64..2 * I, any::<bool>(), any::<usize>()), 1..300),
    ) {
        let clock = ManualClock::new();
        let config = PerKeyConfig::new(1, Duration::from_nanos(I))
            .with_burst(burst)
            .with_max_concurrent(max_held)
            .with_max_keys(64);
        let limiter = KeyedLimiter::with_clock_and_seed(config, clock.clone(), seed).unwrap();
        let mut model = Model::default();
        let mut out: Vec<(u16, KeySlot)> = Vec::new();
        for (i, &(key, dt, release, which)) in ops.iter().enumerate() {
            clock.advance(Duration::from_nanos(dt));
            if release && !out.is_empty() {
                let (k, slot) = out.swap_remove(which % out.len());
                prop_assert!(limiter.release_raw(slot));
                let held = model.held.get_mut(&k).unwrap();
                *held -= 1;
                if *held == 0 {
                    // A slot names its key, not one permit: a second release is
                    // refused only when the key holds nothing.
                    prop_assert!(!limiter.release_raw(slot), "released twice");
                }
                continue;
            }
            let now = breakwater::clock::Clock::now(&clock);
            let ours = limiter.try_acquire_raw(&key.to_le_bytes());
            let exact = model.acquire(key, now, burst, Some(max_held));
            prop_assert_eq!(ours.map(|_| ()).map_err(|r| (r.reason, r.retry_after)), exact,
                "op {} key {} at {}", i, key, now);
            if let Ok(slot) = ours {
                out.push((key, slot));
            }
        }
        let s = limiter.snapshot();
        prop_assert_eq!((s.held, s.evictions, s.shed), (out.len() as u64, 0, 0));
    }
}
