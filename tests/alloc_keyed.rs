//! Per-key limits allocate nothing once the policy is built (the table and the
//! heavy-hitter sketch are allocated up front for `max_keys` and `top_keys`): after the
//! first call on a thread (which creates that thread's metrics shard in the policy,
//! once) and its first rejection read without the bucket's lock (which creates the
//! thread's rejection tally, once), new keys, rejections, the heavy-hitter records they make, evictions, load
//! shedding, and the slots given back allocate nothing, through `acquire_keyed` and the
//! raw calls alike.
#![cfg(not(loom))]

mod common;

use std::time::Duration;

use breakwater::adaptive::Priority;
use breakwater::clock::{AnyClock, ManualClock};
use breakwater::keyed::PerKeyConfig;
use breakwater::policy::{Policy, PolicyConfig, PolicyPermit};
use breakwater::{Outcome, RejectReason};
use common::counting_alloc::{allocations_in, assert_no_alloc, Counting};

#[global_allocator]
static GLOBAL: Counting = Counting;

/// One permit an hour per key, one call in flight per key, and a table for 8 keys: a
/// key's second call is rejected, and a few dozen keys overflow the table.
fn policy(clock: &ManualClock) -> Policy {
    let per_key = PerKeyConfig::new(1, Duration::from_secs(3600))
        .with_max_concurrent(1)
        .with_max_keys(8)
        .with_top_keys(4);
    Policy::with_clock(
        PolicyConfig::new("api").with_per_key(per_key),
        AnyClock::Manual(clock.clone()),
    )
    .unwrap()
}

#[test]
fn keyed_acquire_and_complete_allocate_nothing() {
    let clock = ManualClock::new();
    let policy = policy(&clock);
    // Every key and the vector of held permits are made before counting.
    let keys: Vec<Vec<u8>> = (0..2000)
        .map(|i| format!("client-{i}").into_bytes())
        .collect();
    let mut held: Vec<PolicyPermit<'_>> = Vec::with_capacity(keys.len());

    let first = allocations_in(|| policy.acquire_keyed(b"warm-up").unwrap().success());
    assert_eq!(
        first, 1,
        "the first call allocates only this thread's shard"
    );
    // The key's first rejection is decided under the lock and reported to the sketch;
    // the next is read without it and counted in the thread's tally, created now.
    let tally = allocations_in(|| {
        for _ in 0..2 {
            let refused = policy.acquire_keyed(b"warm-up").unwrap_err();
            assert_eq!(refused.reason, RejectReason::RateLimited);
        }
    });
    assert_eq!(
        tally, 2,
        "the first unlocked rejection allocates the tally (its words and its header)"
    );

    assert_no_alloc("new keys, then each key's rejection", || {
        for key in &keys[..500] {
            policy.acquire_keyed(key).unwrap().success();
            let refused = policy.acquire_keyed(key).unwrap_err();
            assert_eq!(refused.reason, RejectReason::RateLimited);
        }
    });
    assert_no_alloc("a heavy hitter rejected again and again", || {
        // (Evicted by the keys after it, it may be admitted once more: a fresh key.)
        for _ in 0..1000 {
            if let Ok(permit) = policy.acquire_keyed(&keys[0]) {
                permit.success();
            }
        }
    });
    assert_no_alloc(
        "keys holding permits fill the table: shed, then released",
        || {
            for key in &keys[500..1000] {
                match policy.acquire_keyed(key) {
                    Ok(permit) => held.push(permit),
                    Err(r) => assert_eq!(r.reason, RejectReason::LoadShed),
                }
            }
            for permit in held.drain(..) {
                permit.success();
            }
        },
    );
    assert_no_alloc("raw acquire and complete at every priority", || {
        for (key, priority) in keys[1000..1300].iter().zip(
            [Priority::Critical, Priority::Default, Priority::Sheddable]
                .iter()
                .cycle(),
        ) {
            let raw = policy.acquire_keyed_raw(key, *priority).unwrap();
            policy.complete_raw(raw, Outcome::Failure, Some(Duration::from_millis(1)));
        }
    });
    // An hour on: every key's quota is back, so old keys are dropped as they are met.
    clock.advance(Duration::from_secs(3601));
    assert_no_alloc("expired keys replaced by new ones", || {
        for key in &keys[1300..] {
            policy.acquire_keyed(key).unwrap().success();
        }
    });

    let s = policy.snapshot().per_key.unwrap();
    assert!(s.evictions > 0, "the table overflowed: {s:?}");
    assert!(s.shed > 0, "keys holding permits filled a bucket: {s:?}");
    assert_eq!(s.top_rejected[0].key, keys[0], "{s:?}");
    assert_eq!(s.held, 0, "every slot came back: {s:?}");
}
