//! Engine reload: all or nothing; unchanged policies keep their state, changed ones
//! start fresh, removed ones go away once their last handle does; events are delivered.
#![cfg(not(loom))]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use breakwater::breaker::BreakerState;
use breakwater::clock::{AnyClock, ManualClock};
use breakwater::engine::Engine;
use breakwater::metrics::Event;
use breakwater::RejectReason;

const FILE: &str = r#"
[policies.payments.circuit_breaker]
minimum_calls = 2
window = { type = "count", size = 10 }
open_duration = "30s"

[policies.api.rate_limiter]
rate = 2
period = "1s"

[policies.legacy.bulkhead]
max_concurrent = 1
"#;

fn engine() -> (Engine, ManualClock) {
    let clock = ManualClock::new();
    let engine = Engine::with_clock(AnyClock::Manual(clock.clone()));
    engine.reload_str(FILE).unwrap();
    (engine, clock)
}

#[test]
fn unchanged_policies_keep_their_state_across_a_reload() {
    let (engine, _clock) = engine();
    let payments = engine.policy("payments").unwrap();
    payments.acquire().unwrap().failure();
    payments.acquire().unwrap().failure();
    assert_eq!(payments.breaker().unwrap().state(), BreakerState::Open);
    let api = engine.policy("api").unwrap();
    api.acquire().unwrap().success();
    api.acquire().unwrap().success();
    assert_eq!(api.acquire().unwrap_err().reason, RejectReason::RateLimited);

    let report = engine.reload_str(FILE).unwrap();
    assert_eq!(report.unchanged, ["payments", "api", "legacy"]);
    let payments_after = engine.policy("payments").unwrap();
    assert!(
        Arc::ptr_eq(&payments, &payments_after),
        "same object, same state"
    );
    assert_eq!(
        payments_after.breaker().unwrap().state(),
        BreakerState::Open,
        "an open breaker stays open"
    );
    let api_after = engine.policy("api").unwrap();
    assert_eq!(
        api_after.acquire().unwrap_err().reason,
        RejectReason::RateLimited,
        "spent tokens stay spent"
    );
    assert!(!payments.is_superseded());
}

#[test]
fn changed_policies_start_fresh_and_old_handles_keep_working() {
    let (engine, _clock) = engine();
    let payments = engine.policy("payments").unwrap();
    payments.acquire().unwrap().failure();
    payments.acquire().unwrap().failure();
    let changed = FILE.replace("open_duration = \"30s\"", "open_duration = \"20s\"");
    let report = engine.reload_str(&changed).unwrap();
    assert_eq!(report.changed, ["payments"]);
    assert_eq!(report.unchanged, ["api", "legacy"]);
    let fresh = engine.policy("payments").unwrap();
    assert_eq!(fresh.breaker().unwrap().state(), BreakerState::Closed);
    assert_eq!(
        fresh
            .config()
            .circuit_breaker
            .as_ref()
            .unwrap()
            .open_duration,
        Duration::from_secs(20)
    );
    assert!(payments.is_superseded());
    // The old handle still answers with its own configuration and state.
    assert_eq!(
        payments.acquire().unwrap_err().reason,
        RejectReason::CircuitOpen
    );
}

#[test]
fn removed_policies_are_dropped_with_their_last_handle() {
    let (engine, _clock) = engine();
    let legacy = engine.policy("legacy").unwrap();
    let weak = Arc::downgrade(&legacy);
    let permit_holder = legacy.clone();
    let only_two = FILE.split("[policies.legacy").next().unwrap();
    let report = engine.reload_str(only_two).unwrap();
    assert_eq!(report.removed, ["legacy"]);
    assert!(engine.policy("legacy").is_none());
    assert!(legacy.is_superseded());
    let permit = permit_holder.acquire().unwrap();
    permit.success();
    drop(legacy);
    drop(permit_holder);
    assert!(
        weak.upgrade().is_none(),
        "dropped once the last handle went"
    );
}

#[test]
fn an_invalid_reload_changes_nothing() {
    let (engine, _clock) = engine();
    let before = engine.policies();
    let broken = format!("{FILE}\n[policies.extra.bulkhead]\nmax_concurrent = 0\n");
    let error = engine.reload_str(&broken).unwrap_err();
    assert_eq!(error.first().policy.as_deref(), Some("extra"));
    let after = engine.policies();
    assert_eq!(before.len(), after.len());
    assert!(before.iter().zip(&after).all(|(a, b)| Arc::ptr_eq(a, b)));
    assert!(engine.reload_str("").is_err());
    assert_eq!(engine.names(), ["payments", "api", "legacy"]);
}

#[test]
fn transition_and_reload_events_are_delivered_once_each() {
    let (engine, clock) = engine();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    engine
        .events()
        .set_listener(move |event| {
            let line = match event {
                Event::Transition {
                    policy, from, to, ..
                } => format!("{policy}: {from} -> {to}"),
                Event::Reload {
                    added,
                    removed,
                    changed,
                } => format!("reload +{added} -{removed} ~{changed}"),
                other => other.kind().to_string(),
            };
            sink.lock().unwrap().push(line);
        })
        .unwrap_or_else(|_| panic!("first listener"));
    let payments = engine.policy("payments").unwrap();
    payments.acquire().unwrap().failure();
    payments.acquire().unwrap().failure();
    clock.advance(Duration::from_secs(31));
    for _ in 0..5 {
        if let Ok(p) = payments.acquire() {
            p.success();
        }
    }
    engine.reload_str(FILE).unwrap();
    let seen = seen.lock().unwrap().clone();
    assert_eq!(
        seen,
        [
            "payments: closed -> open",
            "payments: open -> half_open",
            "payments: half_open -> closed",
            "reload +0 -0 ~0",
        ]
    );
    let m = payments.metrics().snapshot();
    assert_eq!(m.transitions, [1, 1, 1, 0, 0]);
}

#[test]
fn racing_threads_deliver_each_transition_exactly_once() {
    let (engine, clock) = engine();
    let transitions = Arc::new(AtomicUsize::new(0));
    let count = transitions.clone();
    engine
        .events()
        .set_listener(move |event| {
            if matches!(event, Event::Transition { .. }) {
                count.fetch_add(1, Ordering::Relaxed);
            }
        })
        .unwrap_or_else(|_| panic!("first listener"));
    let payments = engine.policy("payments").unwrap();
    for round in 0..50 {
        // Trip with racing failures, then race the half-open transition.
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..5 {
                        if let Ok(p) = payments.acquire() {
                            p.failure();
                        }
                    }
                });
            }
        });
        clock.advance(Duration::from_secs(31));
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..5 {
                        if let Ok(p) = payments.acquire() {
                            p.success();
                        }
                    }
                });
            }
        });
        let b = payments.breaker().unwrap().snapshot();
        let counted = b.transitions.to_open + b.transitions.to_half_open + b.transitions.to_closed;
        assert_eq!(
            transitions.load(Ordering::Relaxed) as u64,
            counted,
            "round {round}"
        );
    }
    let m = payments.metrics().snapshot();
    let b = payments.breaker().unwrap().snapshot();
    assert_eq!(m.transitions[1], b.transitions.to_open);
    assert_eq!(m.transitions[2], b.transitions.to_half_open);
    assert!(b.transitions.to_open >= 50);
}

#[test]
fn concurrent_reloads_leave_one_file_applied_and_no_current_policy_superseded() {
    let (engine, _clock) = engine();
    let a = FILE.replace("max_concurrent = 1", "max_concurrent = 2");
    let b = FILE.replace("rate = 2", "rate = 3");
    let done = AtomicUsize::new(0);
    let mut seen_superseded = 0;
    std::thread::scope(|s| {
        for i in 0..4 {
            let (engine, done, text) = (&engine, &done, if i % 2 == 0 { &a } else { &b });
            s.spawn(move || {
                for _ in 0..200 {
                    engine.reload_str(text).unwrap();
                }
                done.fetch_add(1, Ordering::SeqCst);
            });
        }
        // A current policy must never read as superseded. (A policy replaced after this
        // thread listed it is superseded by then, rightly: count only those still current
        // after the flag was read.)
        while done.load(Ordering::SeqCst) < 4 {
            for p in engine.policies() {
                if p.is_superseded() && engine.policy(p.name()).is_some_and(|c| Arc::ptr_eq(&c, &p))
                {
                    seen_superseded += 1;
                }
            }
        }
    });
    assert_eq!(seen_superseded, 0, "current policies read as superseded");
    for policy in engine.policies() {
        assert!(
            !policy.is_superseded(),
            "{} is current but marked superseded",
            policy.name()
        );
    }
    let legacy = engine.policy("legacy").unwrap();
    let api = engine.policy("api").unwrap();
    let from_a = legacy.config().bulkhead.unwrap().max_concurrent == 2;
    let from_b = api.config().rate_limiter.unwrap().rate == 3;
    assert!(
        from_a != from_b,
        "exactly one file's configuration is applied"
    );
}
