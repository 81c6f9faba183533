//! Per-key limits: exact behaviour on the manual clock, through the policy and alone;
//! concurrency slots given back however a call ends; the most-rejected keys in the
//! snapshot and the Prometheus text with a bounded label set.
#![cfg(not(loom))]

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use breakwater::bulkhead::BulkheadConfig;
use breakwater::clock::{AnyClock, Clock, ManualClock};
use breakwater::engine::Engine;
use breakwater::keyed::{KeyedLimiter, PerKeyConfig};
use breakwater::policy::{Policy, PolicyConfig};
use breakwater::RejectReason;

fn keyed_policy(clock: &ManualClock, per_key: PerKeyConfig) -> Policy {
    Policy::with_clock(
        PolicyConfig::new("api").with_per_key(per_key),
        AnyClock::Manual(clock.clone()),
    )
    .unwrap()
}

#[test]
fn each_key_gets_exactly_its_burst_then_one_permit_per_interval() {
    let clock = ManualClock::new();
    // 10 per second: one every 100 ms, bursts of 3.
    let policy = keyed_policy(
        &clock,
        PerKeyConfig::new(10, Duration::from_secs(1)).with_burst(3),
    );
    for _ in 0..3 {
        policy.acquire_keyed(b"alice").unwrap().success();
    }
    let refused = policy.acquire_keyed(b"alice").unwrap_err();
    assert_eq!(refused.reason, RejectReason::RateLimited);
    assert_eq!(
        refused.retry_after,
        Some(Duration::from_millis(100)),
        "at {}",
        clock.now()
    );
    // Bob is untouched by Alice's spending.
    for _ in 0..3 {
        policy.acquire_keyed(b"bob").unwrap().success();
    }
    clock.advance(Duration::from_millis(99));
    let refused = policy.acquire_keyed(b"alice").unwrap_err();
    assert_eq!(
        refused.retry_after,
        Some(Duration::from_millis(1)),
        "at {}",
        clock.now()
    );
    clock.advance(Duration::from_millis(1));
    policy.acquire_keyed(b"alice").unwrap().success();
    assert!(
        policy.acquire_keyed(b"alice").is_err(),
        "at {}",
        clock.now()
    );
    // Idle for a second: the whole burst is back, and nothing else.
    clock.advance(Duration::from_secs(1));
    for _ in 0..3 {
        policy.acquire_keyed(b"alice").unwrap().success();
    }
    assert!(
        policy.acquire_keyed(b"alice").is_err(),
        "at {}",
        clock.now()
    );
    // Unkeyed calls skip the per-key stage; every refusal is counted by the policy.
    policy.acquire().unwrap().success();
    let m = policy.metrics().snapshot();
    assert_eq!(m.rejected_by(RejectReason::RateLimited), 4);
    assert_eq!(m.permitted, 3 + 3 + 1 + 3 + 1);
}

#[test]
fn keys_are_bytes_empty_and_long_ones_included() {
    let clock = ManualClock::new();
    let policy = keyed_policy(&clock, PerKeyConfig::new(1, Duration::from_secs(60)));
    let long = vec![0xABu8; 10_000];
    for key in [&b""[..], b"\x00", b"\x00\x00", &long] {
        policy.acquire_keyed(key).unwrap().success();
    }
    for key in [&b""[..], b"\x00", b"\x00\x00", &long] {
        assert!(
            policy.acquire_keyed(key).is_err(),
            "{:?}",
            &key[..key.len().min(4)]
        );
    }
}

#[test]
fn a_keys_concurrency_slot_comes_back_however_the_call_ends() {
    let clock = ManualClock::new();
    let policy = keyed_policy(
        &clock,
        PerKeyConfig::new(1_000, Duration::from_secs(1)).with_max_concurrent(1),
    );
    let held = policy.acquire_keyed(b"t").unwrap();
    assert_eq!(
        policy.acquire_keyed(b"t").unwrap_err().reason,
        RejectReason::BulkheadFull
    );
    held.failure();
    drop(policy.acquire_keyed(b"t").unwrap()); // dropped: Ignored
    let raw = policy.acquire_keyed_raw(b"t", Default::default()).unwrap();
    assert!(raw.key_slot().is_some());
    assert!(policy.acquire_keyed(b"t").is_err());
    policy.complete_raw(raw, breakwater::Outcome::Success, None);
    let p = policy.acquire_keyed(b"t").unwrap();
    assert_eq!(policy.snapshot().per_key.unwrap().held, 1);
    p.success();
    assert_eq!(policy.snapshot().per_key.unwrap().held, 0);
}

#[test]
fn a_later_stage_refusing_gives_the_keys_slot_and_quota_back() {
    let clock = ManualClock::new();
    let policy = Policy::with_clock(
        PolicyConfig::new("api")
            .with_per_key(
                PerKeyConfig::new(1, Duration::from_secs(60))
                    .with_burst(2)
                    .with_max_concurrent(2),
            )
            .with_bulkhead(BulkheadConfig::new(1)),
        AnyClock::Manual(clock.clone()),
    )
    .unwrap();
    let first = policy.acquire_keyed(b"t").unwrap();
    // The bulkhead refuses: the key's second permit and its quota go back.
    for _ in 0..5 {
        assert_eq!(
            policy.acquire_keyed(b"t").unwrap_err().reason,
            RejectReason::BulkheadFull
        );
    }
    assert_eq!(policy.snapshot().per_key.unwrap().held, 1);
    first.success();
    policy.acquire_keyed(b"t").unwrap().success();
    assert_eq!(
        policy.acquire_keyed(b"t").unwrap_err().reason,
        RejectReason::RateLimited,
        "exactly the burst of 2 was spent"
    );
}

#[test]
fn threads_never_exceed_a_keys_concurrency_and_give_every_slot_back() {
    const THREADS: usize = 4;
    const KEYS: usize = 8;
    const MAX: u32 = 2;
    let limiter = Arc::new(
        KeyedLimiter::new(
            PerKeyConfig::new(1_000_000_000, Duration::from_secs(1))
                .with_max_concurrent(MAX)
                .with_max_keys(64),
        )
        .unwrap(),
    );
    let inside: Arc<Vec<AtomicU32>> = Arc::new((0..KEYS).map(|_| AtomicU32::new(0)).collect());
    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            let (limiter, inside) = (limiter.clone(), inside.clone());
            std::thread::spawn(move || {
                for i in 0..5_000 {
                    let k = (i * 7 + t) % KEYS;
                    if let Ok(permit) = limiter.try_acquire(format!("key-{k}").as_bytes()) {
                        let now = inside[k].fetch_add(1, Ordering::SeqCst) + 1;
                        assert!(now <= MAX, "key {k} had {now} permits out");
                        inside[k].fetch_sub(1, Ordering::SeqCst);
                        drop(permit);
                    }
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    let s = limiter.snapshot();
    assert_eq!((s.held, s.shed, s.evictions), (0, 0, 0), "{s:?}");
}

#[test]
fn the_most_rejected_keys_reach_the_snapshot_and_prometheus_with_bounded_labels() {
    let engine = Engine::from_toml_str(
        r#"
        [policies.api.per_key]
        rate = 1
        period = "1h"
        max_keys = 10000
        top_keys = 10
        "#,
    )
    .unwrap();
    let policy = engine.policy("api").unwrap();
    for _ in 0..300 {
        let _ = policy.acquire_keyed(b"noisy\n\"one\"");
    }
    for _ in 0..200 {
        let _ = policy.acquire_keyed(b"second");
    }
    // 500 keys rejected once each: 998 rejections in all, so every key rejected more
    // than 99.8 times is among the 10 counters (the sketch's guarantee), counted
    // exactly here since neither heavy key was ever the smallest counter.
    for i in 0..500 {
        let key = format!("drive-by-{i}");
        let _ = policy.acquire_keyed(key.as_bytes());
        let _ = policy.acquire_keyed(key.as_bytes());
    }
    let top = policy.snapshot().per_key.unwrap().top_rejected;
    assert_eq!(top.len(), 10);
    assert_eq!(top[0].key, b"noisy\n\"one\"");
    assert_eq!((top[0].rejections, top[0].overestimate), (299, 0));
    assert_eq!((&top[1].key[..], top[1].rejections), (&b"second"[..], 199));
    let text = engine.prometheus();
    let series: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("breakwater_per_key_top_rejections{"))
        .collect();
    assert_eq!(series.len(), 10, "502 keys rejected, 10 series: {text}");
    assert_eq!(
        series[0],
        r#"breakwater_per_key_top_rejections{policy="api",rank="1",key="noisy\\x0a\"one\""} 299"#
    );
    assert!(
        text.contains("breakwater_per_key_active_keys{policy=\"api\"} 502"),
        "{text}"
    );
    assert!(text.contains("breakwater_per_key_evictions_total{policy=\"api\"} 0"));
}

/// `max_keys` keys all active at once fit their table: each may live in either of two
/// buckets, so the few buckets that chance fills past their 7 slots spill into their
/// keys' other bucket instead of evicting. 1 000 keys (256 buckets, 56% of the slots
/// used), 4 480 (1 024 buckets, 62.5%, the most loaded a table gets) and 100 000, under
/// many seeds.
/// Threads refusing the same keys at once, most refusals read without the bucket's
/// lock and counted in each thread's tally, the rest in the slot or the sketch: once
/// they are done, the snapshot counts every rejection of every key exactly.
#[test]
fn rejections_from_many_threads_are_counted_exactly() {
    const THREADS: usize = 4;
    const CALLS: usize = 3_000;
    let limiter = Arc::new(
        KeyedLimiter::with_clock(
            PerKeyConfig::new(1, Duration::from_secs(3600)).with_top_keys(8),
            ManualClock::new(),
        )
        .unwrap(),
    );
    let keys: Vec<Vec<u8>> = (0..5).map(|k| format!("tenant-{k}").into_bytes()).collect();
    for key in &keys {
        assert!(
            limiter.try_acquire_raw(key).is_ok(),
            "each key's one permit"
        );
    }
    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            let (limiter, keys) = (limiter.clone(), keys.clone());
            std::thread::spawn(move || {
                for i in 0..CALLS {
                    let key = &keys[(i + t) % keys.len()];
                    let refused = limiter.try_acquire_raw(key).unwrap_err();
                    assert_eq!(refused.reason, RejectReason::RateLimited);
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    let top = limiter.snapshot().top_rejected;
    assert_eq!(top.len(), keys.len());
    for hitter in &top {
        assert_eq!(
            (hitter.rejections, hitter.overestimate),
            ((THREADS * CALLS / keys.len()) as u64, 0),
            "{}",
            hitter.display_key()
        );
    }
}

#[test]
fn max_keys_active_keys_cause_no_eviction() {
    for (max_keys, seeds) in [(1_000u32, 64u64), (4_480, 16), (100_000, 2)] {
        for seed in 0..seeds {
            let clock = ManualClock::new();
            // One permit a minute: every key stays active through the test.
            let config = PerKeyConfig::new(1, Duration::from_secs(60)).with_max_keys(max_keys);
            let l = KeyedLimiter::with_clock_and_seed(config, clock, [seed, !seed]).unwrap();
            for i in 0..max_keys {
                let key = format!("client-{i}");
                drop(l.try_acquire(key.as_bytes()).expect("a fresh key passes"));
            }
            let s = l.snapshot();
            assert_eq!(
                (s.active_keys, s.evictions, s.shed),
                (u64::from(max_keys), 0, 0),
                "max_keys {max_keys}, seed {seed}"
            );
        }
    }
}
