//! Events carry the trace context of the call that caused them: the trip of a breaker
//! (also when many threads fail at once), the half-open probe and its verdict, a
//! budget exhaustion and a load-shed rejection; untraced calls' events carry none.
#![cfg(not(loom))]

use std::cell::Cell;
use std::sync::{Arc, Barrier, Mutex};
use std::time::Duration;

use breakwater::adaptive::Priority;
use breakwater::clock::{AnyClock, ManualClock};
use breakwater::engine::Engine;
use breakwater::metrics::Event;
use breakwater::policy::RetryOn;
use breakwater::retry::RetryDecision;
use breakwater::telemetry::{with_cause, TraceContext};
use breakwater::RejectReason;

/// `(kind, from, to, trace)` of every event.
type Seen = Arc<
    Mutex<
        Vec<(
            &'static str,
            &'static str,
            &'static str,
            Option<TraceContext>,
        )>,
    >,
>;

fn engine(policy_file: &str) -> (Engine, ManualClock, Seen) {
    let clock = ManualClock::new();
    let engine = Engine::with_clock(AnyClock::from(clock.clone()));
    engine.reload_str(policy_file).expect("valid policy file");
    let seen: Seen = Arc::default();
    let sink = Arc::clone(&seen);
    engine
        .events()
        .set_listener(move |event: &Event<'_>| {
            let (from, to) = match *event {
                Event::Transition { from, to, .. } => (from, to),
                _ => ("", ""),
            };
            sink.lock()
                .unwrap()
                .push((event.kind(), from, to, event.trace()));
        })
        .unwrap();
    (engine, clock, seen)
}

fn trace(n: u8) -> TraceContext {
    TraceContext::new([n; 16], [n.wrapping_add(100); 8], 1).unwrap()
}

const BREAKER: &str = r#"
[policies.payments.circuit_breaker]
minimum_calls = 3
failure_rate_threshold = 50
open_duration = "10s"
half_open_permits = 1
"#;

#[test]
fn trip_probe_and_close_carry_the_trace_of_the_call_that_caused_each() {
    let (engine, clock, seen) = engine(BREAKER);
    let policy = engine.policy("payments").unwrap();
    for n in 1..=3 {
        policy
            .acquire_traced(Priority::Default, trace(n))
            .unwrap()
            .failure();
    }
    clock.advance(Duration::from_secs(10));
    let probe = policy.acquire_traced(Priority::Default, trace(4)).unwrap();
    probe.success();
    let events = seen.lock().unwrap().clone();
    assert_eq!(
        events,
        [
            ("transition", "closed", "open", Some(trace(3))),
            ("transition", "open", "half_open", Some(trace(4))),
            ("transition", "half_open", "closed", Some(trace(4))),
        ],
        "at {:?}",
        clock
    );
}

#[test]
fn events_of_untraced_calls_carry_no_trace_and_a_dropped_traced_permit_keeps_its_own() {
    let (engine, _clock, seen) = engine(BREAKER);
    let policy = engine.policy("payments").unwrap();
    policy.acquire().unwrap().failure();
    policy.acquire().unwrap().failure();
    policy.acquire().unwrap().failure();
    assert_eq!(
        seen.lock().unwrap()[0],
        ("transition", "closed", "open", None)
    );

    // Raw permits: the completion's trace, not the acquire's, is the cause of a trip.
    policy.breaker().unwrap().reset();
    seen.lock().unwrap().clear();
    for n in 1..=3 {
        let raw = policy
            .acquire_raw_traced(Priority::Default, trace(n))
            .unwrap();
        policy.complete_raw_traced(raw, breakwater::Outcome::Failure, None, trace(n + 10));
    }
    let events = seen.lock().unwrap().clone();
    assert_eq!(events.last().unwrap().3, Some(trace(13)));
}

std::thread_local! {
    static RUNNING: Cell<Option<TraceContext>> = const { Cell::new(None) };
}

#[test]
fn a_trip_among_many_failing_threads_carries_the_trace_of_the_completion_that_tripped_it() {
    let clock = ManualClock::new();
    let engine = Engine::with_clock(AnyClock::from(clock.clone()));
    engine
        .reload_str(
            "[policies.busy.circuit_breaker]\nminimum_calls = 64\nfailure_rate_threshold = 50\nopen_duration = \"1h\"\n",
        )
        .unwrap();
    let policy = engine.policy("busy").unwrap();
    // On the emitting thread, the listener pairs the event's trace with the call that
    // thread is completing, as the test itself recorded it (not through breakwater).
    let trips = Arc::new(Mutex::new(Vec::new()));
    let record = Arc::clone(&trips);
    engine
        .events()
        .set_listener(move |event: &Event<'_>| {
            if let Event::Transition { to: "open", .. } = event {
                let running = RUNNING.with(Cell::get);
                record.lock().unwrap().push((event.trace(), running));
            }
        })
        .unwrap();
    let threads = 8;
    let barrier = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let (policy, barrier) = (Arc::clone(&policy), Arc::clone(&barrier));
            std::thread::spawn(move || {
                barrier.wait();
                let mut permits = Vec::new();
                for i in 0..20u8 {
                    let mine = TraceContext::new([t as u8 + 1; 16], [i + 1; 8], 1).unwrap();
                    if let Ok(permit) = policy.acquire_traced(Priority::Default, mine) {
                        permits.push(permit);
                    }
                }
                for permit in permits {
                    RUNNING.with(|r| r.set(Some(permit.trace())));
                    permit.failure();
                    RUNNING.with(|r| r.set(None));
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let trips = trips.lock().unwrap().clone();
    assert_eq!(trips.len(), 1, "one trip, delivered once: {trips:?}");
    let (carried, running) = trips[0];
    assert!(carried.is_some(), "the trip carries a trace");
    assert_eq!(
        carried, running,
        "the trace of the completion that tripped it"
    );
    let snapshot = policy.metrics().snapshot();
    assert_eq!(snapshot.transitions[1], 1, "exactly one trip: {snapshot:?}");
    assert_eq!(
        snapshot.failure, snapshot.permitted,
        "every permit completed: {snapshot:?}"
    );
    assert_eq!(
        snapshot.permitted + snapshot.rejected_total(),
        160,
        "{snapshot:?}"
    );
}

#[test]
fn a_refused_retry_and_a_load_shed_acquire_carry_the_trace_of_their_call() {
    let (engine, _clock, seen) = engine(
        r#"
[policies.shed.adaptive]
algorithm = "aimd"
initial_limit = 1
min_limit = 1
max_limit = 1

[policies.budgeted.retry]
max_attempts = 5
budget = { ratio = 0.01, min_per_second = 0 }
"#,
    );
    let shed = engine.policy("shed").unwrap();
    let held = shed.acquire_with(Priority::Critical).unwrap();
    let refused = shed
        .acquire_traced(Priority::Default, trace(7))
        .unwrap_err();
    assert_eq!(refused.reason, RejectReason::LoadShed);
    drop(held);

    let budgeted = engine.policy("budgeted").unwrap();
    let mut state = budgeted.retry_begin(1, None).unwrap();
    let decision = with_cause(trace(8), || {
        budgeted.retry_next(&mut state, RetryOn::FAILURE, None)
    });
    assert!(matches!(decision, RetryDecision::GiveUp(_)), "{decision:?}");
    assert_eq!(
        seen.lock().unwrap().clone(),
        [
            ("rejected", "", "", Some(trace(7))),
            ("budget_exhausted", "", "", Some(trace(8))),
        ]
    );
}
