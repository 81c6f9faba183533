//! loom models of the adaptive limiter: the in-flight counter against the limit, and
//! concurrent limit updates (AIMD's compare-exchange loop, Gradient2's try-lock).
#![cfg(loom)]

use breakwater::adaptive::{
    AdaptiveAlgorithm, AdaptiveConfig, AdaptiveLimiter, AimdConfig, Gradient2Config, Priority,
};
use breakwater::clock::ManualClock;
use breakwater::Outcome;
use loom::sync::atomic::{AtomicU32, Ordering};
use loom::sync::Arc;
use loom::thread;
use std::time::Duration;

fn aimd(initial: u32, min: u32, max: u32) -> AdaptiveConfig {
    AdaptiveConfig::default()
        .with_algorithm(AdaptiveAlgorithm::Aimd(AimdConfig::default()))
        .with_initial_limit(initial)
        .with_min_limit(min)
        .with_max_limit(max)
}

/// Never more permits out than the limit: two threads, each acquiring twice, against a
/// limit of 1, with a shadow counter of permits actually held.
#[test]
fn never_more_than_limit_in_flight() {
    loom::model(|| {
        let limiter =
            Arc::new(AdaptiveLimiter::with_clock(aimd(1, 1, 1), ManualClock::new()).unwrap());
        let held = Arc::new(AtomicU32::new(0));
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let limiter = limiter.clone();
                let held = held.clone();
                thread::spawn(move || {
                    let mut granted = 0;
                    for _ in 0..2 {
                        if let Ok(p) = limiter.try_acquire_raw(Priority::Critical) {
                            granted += 1;
                            let now = held.fetch_add(1, Ordering::SeqCst) + 1;
                            assert!(now <= 1, "{now} permits held under limit 1");
                            held.fetch_sub(1, Ordering::SeqCst);
                            limiter.complete_raw(p, Outcome::Success, None);
                        }
                    }
                    granted
                })
            })
            .collect();
        let granted: u32 = threads.into_iter().map(|t| t.join().unwrap()).sum();
        assert!(granted >= 1, "the first acquire always finds room");
        assert_eq!(limiter.in_flight(), 0);
        assert_eq!(limiter.limit(), 1);
    });
}

/// Concurrent drops compose: both back-offs apply whatever the interleaving
/// (10 → 9 → 8), and both slots are released.
#[test]
fn aimd_concurrent_drops_are_not_lost() {
    loom::model(|| {
        let limiter =
            Arc::new(AdaptiveLimiter::with_clock(aimd(10, 1, 10), ManualClock::new()).unwrap());
        let permits = [
            limiter.try_acquire_raw(Priority::Default).unwrap(),
            limiter.try_acquire_raw(Priority::Default).unwrap(),
        ];
        let threads: Vec<_> = permits
            .into_iter()
            .map(|p| {
                let limiter = limiter.clone();
                thread::spawn(move || limiter.complete_raw(p, Outcome::Failure, None))
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(limiter.limit(), 8);
        assert_eq!(limiter.in_flight(), 0);
    });
}

/// Gradient2's try-lock: of two concurrent completions, each sample is either applied
/// or counted as skipped, never half-applied, and the state stays consistent.
#[test]
fn gradient_samples_are_applied_or_skipped_whole() {
    loom::model(|| {
        let config = AdaptiveConfig::default()
            .with_algorithm(AdaptiveAlgorithm::Gradient2(Gradient2Config::default()))
            .with_initial_limit(4)
            .with_min_limit(1)
            .with_max_limit(8);
        let limiter = Arc::new(AdaptiveLimiter::with_clock(config, ManualClock::new()).unwrap());
        let permits = [
            (limiter.try_acquire_raw(Priority::Critical).unwrap(), 100),
            (limiter.try_acquire_raw(Priority::Critical).unwrap(), 300),
        ];
        let threads: Vec<_> = permits
            .into_iter()
            .map(|(p, rtt)| {
                let limiter = limiter.clone();
                thread::spawn(move || {
                    limiter.complete_raw(p, Outcome::Success, Some(Duration::from_nanos(rtt)))
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let snap = limiter.snapshot();
        let baseline = snap.baseline_rtt.map(|d| d.as_nanos());
        match snap.skipped_samples {
            0 => assert_eq!(baseline, Some(200), "both samples averaged"),
            1 => assert!(matches!(baseline, Some(100) | Some(300)), "{baseline:?}"),
            n => panic!("{n} samples skipped of 2"),
        }
        assert!((1..=8).contains(&snap.limit));
        assert_eq!(snap.in_flight, 0);
    });
}

/// An acquire racing a completion that lowers the limit: the acquire is admitted only
/// against a limit it read, so at most the old limit is ever out, and the counter ends
/// exact.
#[test]
fn acquire_racing_a_limit_decrease() {
    loom::model(|| {
        let limiter =
            Arc::new(AdaptiveLimiter::with_clock(aimd(2, 1, 2), ManualClock::new()).unwrap());
        let first = limiter.try_acquire_raw(Priority::Critical).unwrap();
        let second = limiter.try_acquire_raw(Priority::Critical).unwrap();
        let completer = {
            let limiter = limiter.clone();
            thread::spawn(move || limiter.complete_raw(first, Outcome::Failure, None))
        };
        let acquirer = {
            let limiter = limiter.clone();
            thread::spawn(move || limiter.try_acquire_raw(Priority::Critical).ok())
        };
        completer.join().unwrap();
        let third = acquirer.join().unwrap();
        assert_eq!(limiter.limit(), 1, "2 backs off to 1");
        let out = 1 + u32::from(third.is_some());
        assert_eq!(limiter.in_flight(), out);
        assert!(out <= 2);
        limiter.complete_raw(second, Outcome::Ignored, None);
        if let Some(p) = third {
            limiter.complete_raw(p, Outcome::Ignored, None);
        }
        assert_eq!(limiter.in_flight(), 0);
    });
}
