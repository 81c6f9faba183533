//! (d) The client throttle's rejection rate matches the SRE formula, deterministically
//! for a fixed seed, with a manual clock.
#![cfg(not(loom))]

use breakwater::adaptive::{ClientThrottle, ThrottleConfig};
use breakwater::clock::ManualClock;
use breakwater::RejectReason;
use std::time::Duration;

fn config(seed: u64) -> ThrottleConfig {
    ThrottleConfig::default()
        .with_k(2.0)
        .with_window(Duration::from_secs(10))
        .with_buckets(10)
        .with_max_rejection_probability(0.9)
        .with_seed(seed)
}

fn formula(requests: u64, accepts: u64, k: f64, cap: f64) -> f64 {
    ((requests as f64 - k * accepts as f64) / (requests as f64 + 1.0)).clamp(0.0, cap)
}

/// Fills a window with `accepted` accepted requests then `failed` unaccepted ones.
fn filled(seed: u64, accepted: u64, failed: u64) -> (ClientThrottle<ManualClock>, ManualClock) {
    let clock = ManualClock::new();
    let t = ClientThrottle::with_clock(config(seed), clock.clone()).unwrap();
    for _ in 0..accepted {
        t.try_acquire()
            .expect("p is 0 while every request is accepted");
        t.record_accepted();
    }
    for _ in 0..failed {
        let _ = t.try_acquire();
    }
    (t, clock)
}

#[test]
fn probability_is_the_formula_of_the_window() {
    let (t, _clock) = filled(1, 1_000, 3_000);
    let snap = t.snapshot();
    assert_eq!((snap.requests, snap.accepts), (4_000, 1_000));
    assert_eq!(t.rejection_probability(), formula(4_000, 1_000, 2.0, 0.9));
    assert_eq!(t.rejection_probability(), 2_000.0 / 4_001.0);
    // The cap.
    let (t, _clock) = filled(1, 10, 10_000);
    assert_eq!(t.rejection_probability(), 0.9);
}

#[test]
fn rejection_rate_matches_the_formula_within_statistical_bounds() {
    for seed in [1u64, 2, 3, 0xDEAD_BEEF] {
        let (t, _clock) = filled(seed, 5_000, 15_000);
        // Every call counts one request (accepts stay at 5000), so call i sees
        // p_i = formula(20000 + i, 5000). Expected rejections: the sum of p_i.
        const N: u64 = 50_000;
        let mut expected = 0.0;
        let mut variance = 0.0;
        let mut rejected = 0u64;
        for i in 0..N {
            let p = formula(20_000 + i, 5_000, 2.0, 0.9);
            assert_eq!(t.rejection_probability(), p);
            expected += p;
            variance += p * (1.0 - p);
            if let Err(r) = t.try_acquire() {
                assert_eq!(r.reason, RejectReason::LoadShed);
                assert_eq!(r.retry_after, None);
                rejected += 1;
            }
        }
        let sigma = variance.sqrt();
        let z = (rejected as f64 - expected) / sigma;
        eprintln!(
            "seed {seed}: {rejected} rejected, expected {expected:.0} ± {sigma:.0} (z = {z:.2})"
        );
        assert!(z.abs() < 5.0, "seed {seed}: z = {z}");
    }
}

#[test]
fn same_seed_same_decisions() {
    let run = |seed| {
        let (t, _clock) = filled(seed, 100, 300);
        (0..2_000)
            .map(|_| t.try_acquire().is_ok())
            .collect::<Vec<_>>()
    };
    assert_eq!(run(9), run(9));
    assert_ne!(run(9), run(10));
    // Reseeding restarts the sequence: same window, reseeded to the same seed, same answers.
    let (t, _clock) = filled(9, 100, 300);
    let (u, _clock) = filled(1, 100, 300);
    t.reseed(4242);
    u.reseed(4242);
    let a: Vec<_> = (0..500).map(|_| t.try_acquire().is_ok()).collect();
    let b: Vec<_> = (0..500).map(|_| u.try_acquire().is_ok()).collect();
    assert_eq!(a, b);
}

#[test]
fn client_sends_about_k_times_what_the_backend_accepts() {
    // The application attempts 1000 calls a second; the backend accepts at most 100 a
    // second. In steady state p = 1 − k·100/1000 = 0.8: about 200 calls a second leave
    // the client, and the other 800 fail locally.
    let clock = ManualClock::new();
    let t = ClientThrottle::with_clock(config(77), clock.clone()).unwrap();
    let mut sent_per_second = Vec::new();
    for _second in 0..60 {
        let mut sent = 0;
        let mut accepted = 0;
        for _ in 0..1_000 {
            if t.try_acquire().is_ok() {
                sent += 1;
                if accepted < 100 {
                    accepted += 1;
                    t.record_accepted();
                }
            }
            clock.advance(Duration::from_millis(1));
        }
        sent_per_second.push(sent);
    }
    let late = &sent_per_second[20..];
    let mean = late.iter().sum::<u32>() as f64 / late.len() as f64;
    eprintln!("sent per second after warm-up: mean {mean:.1}, {late:?}");
    assert!((180.0..=220.0).contains(&mean), "mean {mean}");
    let p = t.rejection_probability();
    assert!((0.75..=0.85).contains(&p), "p = {p}");
}
