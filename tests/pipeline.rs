//! The policy pipeline: stage order, what a rejection releases, timeouts, retries with
//! budgets and deadlines, fallback, and fault injection.
#![cfg(not(loom))]

use std::time::Duration;

use breakwater::adaptive::{AdaptiveAlgorithm, AdaptiveConfig, AimdConfig, Priority};
use breakwater::breaker::{BreakerConfig, BreakerState, WindowConfig};
use breakwater::bulkhead::BulkheadConfig;
use breakwater::chaos::{ChaosConfig, LatencyFault};
use breakwater::clock::{AnyClock, Clock, ManualClock};
use breakwater::limiter::RateLimiterConfig;
use breakwater::policy::{CallError, CallOptions, Policy, PolicyConfig, RetryOn};
use breakwater::retry::{BackoffConfig, BudgetConfig, Jitter, RetryConfig};
use breakwater::{Outcome, RejectReason, Rejection};

fn manual() -> (ManualClock, AnyClock) {
    let clock = ManualClock::new();
    (clock.clone(), AnyClock::Manual(clock))
}

fn breaker(minimum_calls: u32) -> BreakerConfig {
    BreakerConfig::default()
        .with_window(WindowConfig::Count { size: 10 })
        .with_minimum_calls(minimum_calls)
        .with_half_open_permits(1)
}

#[test]
fn an_open_breaker_rejects_before_any_token_or_slot_is_spent() {
    let (clock, any) = manual();
    let policy = Policy::with_clock(
        PolicyConfig::new("p")
            .with_circuit_breaker(breaker(2))
            .with_rate_limiter(RateLimiterConfig::new(2, Duration::from_secs(1)))
            .with_bulkhead(BulkheadConfig::new(1)),
        any,
    )
    .unwrap();
    policy.acquire().unwrap().failure();
    policy.acquire().unwrap().failure();
    assert_eq!(policy.breaker().unwrap().state(), BreakerState::Open);
    let tokens_before = policy.limiter().unwrap().available();
    for _ in 0..5 {
        assert_eq!(
            policy.acquire().unwrap_err().reason,
            RejectReason::CircuitOpen
        );
    }
    assert_eq!(
        policy.limiter().unwrap().available(),
        tokens_before,
        "clock {}",
        clock.now()
    );
    assert_eq!(policy.bulkhead().unwrap().in_flight(), 0);
}

#[test]
fn a_limiter_rejection_frees_the_half_open_probe_slot() {
    let (clock, any) = manual();
    let policy = Policy::with_clock(
        PolicyConfig::new("p")
            .with_circuit_breaker(breaker(1).with_open_duration(Duration::from_secs(1)))
            .with_rate_limiter(RateLimiterConfig::new(1, Duration::from_secs(10))),
        any,
    )
    .unwrap();
    policy.acquire().unwrap().failure(); // trips (minimum 1), spends the only token
    clock.advance(Duration::from_secs(2));
    // Half-open: the breaker admits the one probe, the limiter refuses it; the probe
    // slot must come back, or the breaker would wedge half-open.
    assert_eq!(
        policy.acquire().unwrap_err().reason,
        RejectReason::RateLimited
    );
    let b = policy.breaker().unwrap().snapshot();
    assert_eq!(b.state, BreakerState::HalfOpen);
    assert_eq!(b.half_open_in_flight, 0, "probe slot released");
    clock.advance(Duration::from_secs(10));
    let probe = policy.acquire().expect("the probe slot is free again");
    probe.success();
    assert_eq!(policy.breaker().unwrap().state(), BreakerState::Closed);
}

#[test]
fn a_bulkhead_rejection_releases_the_breaker_permit() {
    let (_clock, any) = manual();
    let policy = Policy::with_clock(
        PolicyConfig::new("p")
            .with_circuit_breaker(breaker(5))
            .with_bulkhead(BulkheadConfig::new(1)),
        any,
    )
    .unwrap();
    let held = policy.acquire().unwrap();
    assert_eq!(
        policy.acquire().unwrap_err().reason,
        RejectReason::BulkheadFull
    );
    held.success();
    let s = policy.snapshot();
    // The rejected acquire reported its breaker permit as ignored: one recorded call.
    assert_eq!(s.breaker.unwrap().calls, 1);
    assert_eq!(s.metrics.permitted, 1);
    assert_eq!(s.metrics.rejected_by(RejectReason::BulkheadFull), 1);
}

/// The bug: a call that a later stage refused kept its rate-limiter token spent, so a
/// full bulkhead drained the quota of the calls it let through. The token now goes back
/// exactly: the limiter's schedule is as if the refused calls never came, also when
/// other calls took tokens after them.
#[test]
fn a_bulkhead_rejection_spent_a_rate_limiter_token() {
    let (clock, any) = manual();
    let limiter = RateLimiterConfig::new(10, Duration::from_secs(1)).with_burst(4);
    let policy = Policy::with_clock(
        PolicyConfig::new("p")
            .with_rate_limiter(limiter)
            .with_bulkhead(BulkheadConfig::new(1)),
        any.clone(),
    )
    .unwrap();
    let twin = breakwater::limiter::RateLimiter::with_clock(limiter, any).unwrap();
    clock.advance(Duration::from_millis(30));
    let held = policy.acquire().unwrap();
    twin.try_acquire().unwrap();
    for _ in 0..10 {
        assert_eq!(
            policy.acquire().unwrap_err().reason,
            RejectReason::BulkheadFull,
            "clock {}",
            clock.now()
        );
    }
    let l = policy.limiter().unwrap();
    assert_eq!(l.snapshot(), twin.snapshot(), "clock {}", clock.now());
    // A token taken after a refused one: the refund still gives back exactly one.
    let stacked = l.try_acquire_raw().unwrap();
    twin.try_acquire().unwrap();
    assert_eq!(
        policy.acquire().unwrap_err().reason,
        RejectReason::BulkheadFull
    );
    assert_eq!(l.snapshot(), twin.snapshot(), "clock {}", clock.now());
    assert!(l.cancel_raw(stacked));
    held.success();
    assert_eq!(l.available(), 3, "every token back but the held call's");
}

#[test]
fn an_adaptive_rejection_releases_the_bulkhead_slot_and_breaker_permit() {
    let (_clock, any) = manual();
    let adaptive = AdaptiveConfig::default()
        .with_algorithm(AdaptiveAlgorithm::Aimd(AimdConfig::default()))
        .with_initial_limit(1)
        .with_min_limit(1)
        .with_max_limit(1);
    let policy = Policy::with_clock(
        PolicyConfig::new("p")
            .with_circuit_breaker(breaker(5))
            .with_bulkhead(BulkheadConfig::new(10))
            .with_adaptive(adaptive),
        any,
    )
    .unwrap();
    let held = policy.acquire_with(Priority::Critical).unwrap();
    assert_eq!(
        policy.acquire_with(Priority::Critical).unwrap_err().reason,
        RejectReason::LoadShed
    );
    assert_eq!(
        policy.bulkhead().unwrap().in_flight(),
        1,
        "only the held permit's slot"
    );
    held.success();
    assert_eq!(policy.bulkhead().unwrap().in_flight(), 0);
    assert_eq!(policy.adaptive().unwrap().in_flight(), 0);
    assert_eq!(policy.breaker().unwrap().snapshot().calls, 1);
}

#[test]
fn an_injected_rejection_releases_every_earlier_stage() {
    let (_clock, any) = manual();
    let chaos = ChaosConfig::default()
        .with_enabled(true)
        .with_rejection_probability(1.0);
    let policy = Policy::with_clock(
        PolicyConfig::new("p")
            .with_circuit_breaker(breaker(5))
            .with_bulkhead(BulkheadConfig::new(1))
            .with_chaos(chaos),
        any,
    )
    .unwrap();
    for _ in 0..3 {
        assert_eq!(policy.acquire().unwrap_err().reason, RejectReason::Injected);
    }
    assert_eq!(policy.bulkhead().unwrap().in_flight(), 0);
    assert_eq!(policy.breaker().unwrap().snapshot().calls, 0);
    policy.chaos().unwrap().set_enabled(false);
    policy
        .acquire()
        .expect("chaos switched off at run time")
        .success();
}

#[test]
fn a_dropped_permit_is_ignored_and_frees_everything() {
    let policy = Policy::new(PolicyConfig::new("p").with_bulkhead(BulkheadConfig::new(1))).unwrap();
    drop(policy.acquire().unwrap());
    let s = policy.snapshot();
    assert_eq!(s.metrics.ignored, 1);
    assert_eq!(s.bulkhead.unwrap().in_flight, 0);
}

#[test]
fn a_call_longer_than_the_timeout_is_recorded_as_a_timeout() {
    let (clock, any) = manual();
    let policy = Policy::with_clock(
        PolicyConfig::new("p")
            .with_timeout(Duration::from_millis(100))
            .with_circuit_breaker(breaker(2)),
        any,
    )
    .unwrap();
    let permit = policy.acquire().unwrap();
    clock.advance(Duration::from_millis(150));
    permit.success();
    let permit = policy.acquire().unwrap();
    permit.record_with_duration(Outcome::Success, Duration::from_millis(101));
    let s = policy.snapshot();
    assert_eq!(s.metrics.timeout, 2);
    assert_eq!(s.metrics.success, 0);
    assert_eq!(
        s.breaker.unwrap().state,
        BreakerState::Open,
        "timeouts count as failures"
    );
}

fn fast_retry(attempts: u32) -> RetryConfig {
    RetryConfig::default()
        .with_max_attempts(attempts)
        .with_backoff(
            BackoffConfig::default()
                .with_initial(Duration::from_micros(10))
                .with_multiplier(1.0)
                .with_max(Duration::from_micros(10))
                .with_jitter(Jitter::None),
        )
}

#[test]
fn call_retries_failures_and_counts_them() {
    let policy = Policy::new(PolicyConfig::new("p").with_retry(fast_retry(4))).unwrap();
    let mut seen = Vec::new();
    let result = policy.call(|attempt| {
        seen.push(attempt);
        if attempt < 3 {
            Err("boom")
        } else {
            Ok(attempt * 10)
        }
    });
    assert_eq!(result, Ok(30));
    assert_eq!(seen, [1, 2, 3]);
    let m = policy.metrics().snapshot();
    assert_eq!((m.permitted, m.failure, m.success, m.retries), (3, 2, 1, 2));
}

#[test]
fn call_gives_up_after_max_attempts_with_the_last_error() {
    let policy = Policy::new(PolicyConfig::new("p").with_retry(fast_retry(3))).unwrap();
    let result: Result<(), _> = policy.call(Err);
    assert_eq!(result, Err(CallError::Failed(3)));
}

#[test]
fn call_does_not_retry_what_the_predicate_refuses() {
    let policy = Policy::new(PolicyConfig::new("p").with_retry(fast_retry(5))).unwrap();
    let mut calls = 0;
    let result: Result<(), _> = policy.call_when(
        |_| {
            calls += 1;
            Err("bad request")
        },
        |e| *e != "bad request",
    );
    assert_eq!(result, Err(CallError::Failed("bad request")));
    assert_eq!(calls, 1);
}

#[test]
fn rejections_are_not_retried_unless_asked() {
    let (_clock, any) = manual();
    let open = PolicyConfig::new("p")
        .with_circuit_breaker(breaker(1))
        .with_retry(fast_retry(3));
    let policy = Policy::with_clock(open.clone(), any.clone()).unwrap();
    // The first attempt fails and trips the breaker; the retry is rejected, and a
    // rejection is not retried by default: the caller gets it at once.
    let first: Result<(), _> = policy.call(|_| Err("trip"));
    assert!(matches!(first, Err(CallError::Rejected(r)) if r.reason == RejectReason::CircuitOpen));
    let result: Result<(), CallError<&str>> = policy.call(|_| Ok(()));
    assert!(matches!(result, Err(CallError::Rejected(r)) if r.reason == RejectReason::CircuitOpen));
    let m = policy.metrics().snapshot();
    assert_eq!(
        (
            m.permitted,
            m.retries,
            m.rejected_by(RejectReason::CircuitOpen)
        ),
        (1, 1, 2)
    );
}

#[test]
fn a_rejection_retry_after_beyond_max_elapsed_gives_up_at_once() {
    let (_clock, any) = manual();
    let retry = fast_retry(5).with_max_elapsed(Some(Duration::from_secs(1)));
    let config = PolicyConfig::new("p")
        .with_circuit_breaker(breaker(1).with_open_duration(Duration::from_secs(30)))
        .with_retry_on(
            retry,
            RetryOn::default().union(RetryOn::rejection(RejectReason::CircuitOpen)),
        );
    let policy = Policy::with_clock(config, any).unwrap();
    policy.acquire().unwrap().failure();
    // The call must not wait at all: any sleep is the failure (no wall-clock bound).
    let mut sleep = |d: Duration| panic!("slept {d:?} though the wait is past max_elapsed");
    let options = CallOptions::new().with_sleep(&mut sleep);
    let result: Result<(), CallError<&str>> = policy.call_with(options, |_| Ok(()), |_| true);
    assert!(matches!(result, Err(CallError::Rejected(r)) if r.reason == RejectReason::CircuitOpen));
    assert_eq!(policy.metrics().snapshot().retries, 0);
}

#[test]
fn the_retry_budget_refuses_retries_beyond_its_share() {
    let (_clock, any) = manual();
    let retry = fast_retry(10).with_budget(Some(
        BudgetConfig::default()
            .with_ratio(0.0)
            .with_min_per_second(1)
            .with_window(Duration::from_secs(1)),
    ));
    let policy = Policy::with_clock(PolicyConfig::new("p").with_retry(retry), any).unwrap();
    let mut attempts = 0;
    let result: Result<(), _> = policy.call(|_| {
        attempts += 1;
        Err("down")
    });
    assert_eq!(
        result,
        Err(CallError::Rejected(Rejection::new(
            RejectReason::RetryBudgetExhausted,
            None
        ))),
        "a refused retry surfaces as the budget's rejection"
    );
    assert_eq!(
        attempts, 2,
        "one retry allowed by min_per_second over a 1 s window"
    );
    let m = policy.metrics().snapshot();
    assert_eq!(
        (m.retries, m.rejected_by(RejectReason::RetryBudgetExhausted)),
        (1, 1)
    );
}

#[test]
fn fallback_turns_an_error_into_a_value() {
    let policy = Policy::new(PolicyConfig::new("p")).unwrap();
    let value = policy.call_or_else(|_| Err::<u32, _>("down"), |_| Ok(7));
    assert_eq!(value, Ok(7));
}

#[test]
fn injected_failures_skip_the_operation_and_count_as_failures() {
    let chaos = ChaosConfig::default()
        .with_enabled(true)
        .with_failure_probability(1.0)
        .with_latency_probability(1.0)
        .with_latency(LatencyFault::Fixed(Duration::from_millis(1)));
    let policy = Policy::new(PolicyConfig::new("p").with_chaos(chaos)).unwrap();
    let permit = policy.acquire().unwrap();
    assert!(permit.injected_failure());
    assert_eq!(permit.injected_latency(), Duration::from_millis(1));
    drop(permit);
    let mut ran = false;
    let result: Result<(), _> = policy.call(|_| {
        ran = true;
        Ok::<(), &str>(())
    });
    assert_eq!(result, Err(CallError::Injected));
    assert!(!ran);
    assert_eq!(policy.metrics().snapshot().failure, 1);
}

#[test]
fn a_permit_of_another_policy_object_is_ignored() {
    let a = Policy::new(PolicyConfig::new("a").with_bulkhead(BulkheadConfig::new(1))).unwrap();
    let b = Policy::new(PolicyConfig::new("b").with_bulkhead(BulkheadConfig::new(1))).unwrap();
    let raw = a.acquire_raw(Priority::Default).unwrap();
    b.complete_raw(raw, Outcome::Success, None);
    assert_eq!(b.metrics().snapshot().success, 0);
    assert_eq!(b.bulkhead().unwrap().in_flight(), 0);
}

#[test]
fn invalid_stage_configuration_names_the_section() {
    let error =
        Policy::new(PolicyConfig::new("p").with_bulkhead(BulkheadConfig::new(0))).unwrap_err();
    assert_eq!(error.field, "bulkhead.max_concurrent");
    let error = Policy::new(PolicyConfig::new("bad name")).unwrap_err();
    assert_eq!(error.field, "name");
}

#[test]
fn the_adaptive_stage_learns_the_call_time_the_policy_measured() {
    let (clock, any) = manual();
    let policy = Policy::with_clock(
        PolicyConfig::new("p").with_adaptive(AdaptiveConfig::default()),
        any,
    )
    .unwrap();
    for _ in 0..3 {
        let permit = policy.acquire().unwrap();
        clock.advance(Duration::from_millis(50));
        permit.success();
    }
    let s = policy.snapshot();
    assert_eq!(s.adaptive.unwrap().latency, Some(Duration::from_millis(50)));
    assert_eq!(s.metrics.latency.count, 3, "the policy timed the calls too");
}

#[test]
fn the_policy_counts_slow_calls_by_the_breakers_rule() {
    // "Slow" means longer than slow_call_duration: the policy's counter and the breaker's
    // window must agree, also at exactly the threshold.
    let (_clock, any) = manual();
    let threshold = Duration::from_millis(5);
    let policy = Policy::with_clock(
        PolicyConfig::new("p").with_circuit_breaker(breaker(10).with_slow_calls(threshold, 50.0)),
        any,
    )
    .unwrap();
    for d in [
        threshold,
        threshold + Duration::from_nanos(1),
        threshold / 2,
    ] {
        policy
            .acquire()
            .unwrap()
            .record_with_duration(Outcome::Success, d);
    }
    let policy_slow = policy.metrics().snapshot().slow;
    let breaker_slow = policy.breaker().unwrap().snapshot().slow_calls;
    assert_eq!((policy_slow, breaker_slow), (1, 1));
}

#[test]
fn a_policy_without_stages_counts_every_call_exactly() {
    let policy = Policy::new(PolicyConfig::new("bare")).unwrap();
    let a = policy.acquire_raw(Priority::Default).unwrap();
    assert!(!a.injected_failure());
    assert_eq!(a.injected_latency(), Duration::ZERO);
    policy.complete_raw(a, Outcome::Success, None);
    let b = policy.acquire_raw(Priority::Sheddable).unwrap();
    policy.complete_raw(b, Outcome::Failure, Some(Duration::from_millis(3)));
    drop(policy.acquire().unwrap());
    // A permit completed on another thread (its metrics slot differs) counts once too.
    let c = policy.acquire_raw(Priority::Critical).unwrap();
    std::thread::scope(|s| {
        s.spawn(|| policy.complete_raw(c, Outcome::Timeout, None));
    });
    let m = policy.metrics().snapshot();
    assert_eq!(m.permitted, 4);
    assert_eq!((m.success, m.failure, m.ignored, m.timeout), (1, 1, 1, 1));
    assert_eq!(
        m.latency.count, 1,
        "a given duration is recorded without stages too"
    );
    assert_eq!(m.in_flight(), 0);
}

#[test]
fn a_permit_of_stages_replaced_by_a_reload_completes_against_them() {
    let engine = breakwater::engine::Engine::from_toml_str("[policies.p]\n").unwrap();
    let policy = engine.policy("p").unwrap();
    // Issued by a policy without stages, completed after stages were installed.
    let bare = policy.acquire_raw(Priority::Default).unwrap();
    engine
        .reload_str("[policies.p.bulkhead]\nmax_concurrent = 1\n")
        .unwrap();
    let held = policy.acquire_raw(Priority::Default).unwrap();
    assert_eq!(
        policy.acquire_raw(Priority::Default).unwrap_err().reason,
        RejectReason::BulkheadFull
    );
    policy.complete_raw(bare, Outcome::Success, None);
    assert_eq!(
        policy.bulkhead().unwrap().in_flight(),
        1,
        "the stageless permit released no slot of the new bulkhead"
    );
    policy.complete_raw(held, Outcome::Success, None);
    assert_eq!(policy.bulkhead().unwrap().in_flight(), 0);
    let m = policy.metrics().snapshot();
    assert_eq!((m.permitted, m.success, m.in_flight()), (2, 2, 0));
}

#[test]
fn a_raw_permit_carries_every_stage_it_holds_to_completion() {
    let (clock, any) = manual();
    let chaos = ChaosConfig::default()
        .with_enabled(true)
        .with_failure_probability(1.0)
        .with_latency_probability(1.0)
        .with_latency(LatencyFault::Fixed(Duration::from_millis(1)));
    let adaptive =
        AdaptiveConfig::default().with_algorithm(AdaptiveAlgorithm::Aimd(AimdConfig::default()));
    let policy = Policy::with_clock(
        PolicyConfig::new("all")
            .with_circuit_breaker(breaker(10))
            .with_bulkhead(BulkheadConfig::new(4))
            .with_adaptive(adaptive)
            .with_chaos(chaos),
        any,
    )
    .unwrap();
    let permit = policy.acquire_raw(Priority::Sheddable).unwrap();
    assert!(permit.injected_failure());
    assert_eq!(permit.injected_latency(), Duration::from_millis(1));
    assert_eq!(policy.bulkhead().unwrap().in_flight(), 1);
    assert_eq!(policy.adaptive().unwrap().in_flight(), 1);
    clock.advance(Duration::from_millis(2));
    policy.complete_raw(permit, Outcome::Failure, None);
    assert_eq!(policy.bulkhead().unwrap().in_flight(), 0);
    assert_eq!(policy.adaptive().unwrap().in_flight(), 0);
    let m = policy.metrics().snapshot();
    assert_eq!((m.permitted, m.failure, m.latency.count), (1, 1, 1));
    assert_eq!(m.latency.sum_nanos, 2_000_000, "timed from the acquire");
    let b = policy.breaker().unwrap().snapshot();
    assert_eq!((b.calls, b.failures), (1, 1));
}
