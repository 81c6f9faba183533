//! `PolicyLayer` on a hyper client against a flaky axum upstream over loopback, on
//! tokio's paused clock: every policy reads that clock (`TokioClock`), so each duration
//! asserted below is exact, and a test takes no real time waiting.

use std::time::Duration;

use breakwater::breaker::{BreakerConfig, BreakerState, WindowConfig};
use breakwater::bulkhead::BulkheadConfig;
use breakwater::chaos::{ChaosConfig, LatencyFault};
use breakwater::limiter::RateLimiterConfig;
use breakwater::policy::{PolicyConfig, RetryOn};
use breakwater::retry::{BackoffConfig, BudgetConfig, Jitter, RetryConfig};
use breakwater::tower::{Hedge, PolicyLayer};
use breakwater::RejectReason;
use breakwater_tower_it::{http_client, policy, status, upstream, Get, Reply};
use tokio::time::Instant;
use tower::{Layer, ServiceExt};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Enabled fault injection, as `set` tunes it.
fn chaos(set: impl FnOnce(&mut ChaosConfig)) -> ChaosConfig {
    let mut config = ChaosConfig::default();
    config.enabled = true;
    set(&mut config);
    config
}

/// Retries with delays 100, 200, 400 ms… (no jitter).
fn retries(max_attempts: u32) -> RetryConfig {
    RetryConfig::default()
        .with_max_attempts(max_attempts)
        .with_backoff(BackoffConfig::default().with_jitter(Jitter::None))
}

#[tokio::test(start_paused = true)]
async fn a_timeout_cuts_the_call_and_is_recorded_as_a_timeout() {
    let up = upstream(|_, _| Reply::OK).await;
    up.set_chaos(chaos(|c| {
        c.latency_probability = 1.0;
        c.latency = LatencyFault::Fixed(Duration::from_secs(5));
    }));
    let client = policy(PolicyConfig::new("client").with_timeout(ms(100)));
    let service = PolicyLayer::new(client.clone()).layer(http_client(up.addr));
    let start = Instant::now();
    let r = service.oneshot(Get("/")).await;
    assert_eq!(status(&r), "timeout");
    assert_eq!(
        start.elapsed(),
        ms(100),
        "cut at the timeout, not after 5 s"
    );
    let m = client.metrics().snapshot();
    assert_eq!((m.permitted, m.timeout, m.in_flight()), (1, 1, 0));
    assert_eq!(m.latency.sum_nanos, 100_000_000, "timed on tokio's clock");
}

#[tokio::test(start_paused = true)]
async fn failures_are_retried_with_backoff_until_one_succeeds() {
    let up = upstream(|n, _| {
        if n <= 2 {
            Reply::status(503)
        } else {
            Reply::OK
        }
    })
    .await;
    let client = policy(PolicyConfig::new("client").with_retry(retries(5)));
    let service = PolicyLayer::new(client.clone()).layer(http_client(up.addr));
    let start = Instant::now();
    let r = service.oneshot(Get("/")).await;
    assert_eq!(status(&r), "200");
    assert_eq!(
        start.elapsed(),
        ms(100 + 200),
        "two backoffs on tokio timers"
    );
    assert_eq!(up.hits(), 3);
    let m = client.metrics().snapshot();
    assert_eq!((m.failure, m.success, m.retries), (2, 1, 2));
}

#[tokio::test(start_paused = true)]
async fn the_retry_budget_ends_the_call_with_a_rejection() {
    let up = upstream(|_, _| Reply::status(500)).await;
    let budget = BudgetConfig::default()
        .with_ratio(0.0)
        .with_min_per_second(1)
        .with_window(Duration::from_secs(1));
    let config = PolicyConfig::new("client").with_retry(retries(10).with_budget(Some(budget)));
    let client = policy(config);
    let service = PolicyLayer::new(client.clone()).layer(http_client(up.addr));
    let r = service.oneshot(Get("/")).await;
    assert_eq!(status(&r), "retry_budget_exhausted");
    assert_eq!(up.hits(), 2, "one retry granted, the next refused");
    let m = client.metrics().snapshot();
    assert_eq!(
        (m.retries, m.rejected_by(RejectReason::RetryBudgetExhausted)),
        (1, 1)
    );
}

#[tokio::test(start_paused = true)]
async fn the_deadline_stops_retries_and_cuts_a_running_attempt() {
    // Delays 100 then 200 ms: the second retry would end at 300 ms, past 250 ms.
    let up = upstream(|_, path| match path {
        "/slow" => Reply::OK.after(Duration::from_secs(1)),
        _ => Reply::status(503),
    })
    .await;
    let client = policy(PolicyConfig::new("client").with_retry(retries(10)));
    let layer = PolicyLayer::new(client.clone()).with_deadline(ms(250));
    let service = layer.layer(http_client(up.addr));
    let start = Instant::now();
    let r = service.clone().oneshot(Get("/")).await;
    assert_eq!(status(&r), "503", "the last answer, at once");
    assert_eq!(start.elapsed(), ms(100));
    assert_eq!(client.metrics().snapshot().retries, 1);

    let start = Instant::now();
    let r = service.oneshot(Get("/slow")).await;
    assert_eq!(status(&r), "timeout");
    assert_eq!(start.elapsed(), ms(250), "cut at the deadline");
    assert_eq!(client.metrics().snapshot().timeout, 1);
}

#[tokio::test(start_paused = true)]
async fn retry_after_of_a_429_sets_the_earliest_retry() {
    let up = upstream(|n, _| {
        if n == 1 {
            Reply::status(429).retry_after(2)
        } else {
            Reply::OK
        }
    })
    .await;
    let client = policy(PolicyConfig::new("client").with_retry(retries(3)));
    let service = PolicyLayer::new(client.clone()).layer(http_client(up.addr));
    let start = Instant::now();
    let r = service.oneshot(Get("/")).await;
    assert_eq!(status(&r), "200");
    assert_eq!(
        start.elapsed(),
        Duration::from_secs(2),
        "not the 100 ms backoff"
    );
}

#[tokio::test(start_paused = true)]
async fn a_rate_limit_is_waited_on_a_timer_when_the_policy_retries_it() {
    let up = upstream(|_, _| Reply::OK).await;
    let retry_on = RetryOn::default().union(RetryOn::rejection(RejectReason::RateLimited));
    let config = PolicyConfig::new("client")
        .with_rate_limiter(RateLimiterConfig::new(1, Duration::from_secs(1)))
        .with_retry_on(retries(3), retry_on);
    let client = policy(config);
    let service = PolicyLayer::new(client.clone()).layer(http_client(up.addr));
    assert_eq!(status(&service.clone().oneshot(Get("/")).await), "200");
    let start = Instant::now();
    assert_eq!(status(&service.oneshot(Get("/")).await), "200");
    assert_eq!(
        start.elapsed(),
        Duration::from_secs(1),
        "the limiter's retry_after"
    );
    let m = client.metrics().snapshot();
    assert_eq!(
        (m.success, m.rejected_by(RejectReason::RateLimited)),
        (2, 1)
    );
}

#[tokio::test(start_paused = true)]
async fn the_breaker_opens_on_injected_errors_and_recovers() {
    let up = upstream(|_, _| Reply::OK).await;
    let breaker = BreakerConfig::default()
        .with_window(WindowConfig::Count { size: 4 })
        .with_minimum_calls(4)
        .with_failure_rate_threshold(50.0)
        .with_open_duration(Duration::from_secs(5))
        .with_half_open_permits(1);
    let client = policy(PolicyConfig::new("client").with_circuit_breaker(breaker));
    let service = PolicyLayer::new(client.clone()).layer(http_client(up.addr));
    up.set_chaos(chaos(|c| c.failure_probability = 1.0));
    for _ in 0..4 {
        assert_eq!(status(&service.clone().oneshot(Get("/")).await), "500");
    }
    let breaker = client.breaker().unwrap();
    assert_eq!(breaker.state(), BreakerState::Open);
    assert_eq!(
        status(&service.clone().oneshot(Get("/")).await),
        "circuit_open"
    );
    assert_eq!(
        up.policy.metrics().snapshot().permitted,
        4,
        "the open breaker kept the call off the wire"
    );
    up.set_chaos(ChaosConfig::default());
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(status(&service.oneshot(Get("/")).await), "200");
    assert_eq!(breaker.state(), BreakerState::Closed, "the probe closed it");
    assert_eq!(up.hits(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_full_bulkhead_is_waited_for_without_blocking_the_thread() {
    // One runtime thread: a blocking wait would stall the very call it waits for.
    let up = upstream(|_, _| Reply::OK.after(ms(100))).await;
    let bulkhead = BulkheadConfig::new(1).with_max_wait(ms(500));
    let client = policy(PolicyConfig::new("client").with_bulkhead(bulkhead));
    let service = PolicyLayer::new(client.clone()).layer(http_client(up.addr));
    let start = Instant::now();
    let (a, b) = tokio::join!(
        service.clone().oneshot(Get("/")),
        service.clone().oneshot(Get("/"))
    );
    assert_eq!((status(&a), status(&b)), ("200".into(), "200".into()));
    assert_eq!(start.elapsed(), ms(200), "the second waited for the first");
    let m = client.metrics().snapshot();
    assert_eq!((m.permitted, m.success, m.rejected_total()), (2, 2, 0));
}

#[tokio::test(start_paused = true)]
async fn a_bulkhead_wait_gives_up_after_max_wait_and_counts_once() {
    let up = upstream(|_, _| Reply::OK.after(ms(100))).await;
    let bulkhead = BulkheadConfig::new(1).with_max_wait(ms(30));
    let client = policy(PolicyConfig::new("client").with_bulkhead(bulkhead));
    let service = PolicyLayer::new(client.clone()).layer(http_client(up.addr));
    let start = Instant::now();
    let late = async {
        let r = service.clone().oneshot(Get("/")).await;
        (r, start.elapsed())
    };
    let (a, (b, waited)) = tokio::join!(service.clone().oneshot(Get("/")), late);
    assert_eq!(status(&a), "200");
    assert_eq!(status(&b), "bulkhead_full");
    assert_eq!(waited, ms(30));
    let m = client.metrics().snapshot();
    assert_eq!(
        (m.permitted, m.rejected_by(RejectReason::BulkheadFull)),
        (1, 1)
    );
}

#[tokio::test(start_paused = true)]
async fn cancelling_calls_releases_every_permit_and_waiter() {
    let up = upstream(|_, path| match path {
        "/slow" => Reply::OK.after(Duration::from_secs(10)),
        _ => Reply::OK,
    })
    .await;
    let bulkhead = BulkheadConfig::new(2).with_max_wait(Duration::from_secs(1));
    let config = PolicyConfig::new("client")
        .with_bulkhead(bulkhead)
        .with_retry(retries(3));
    let client = policy(config);
    let service = PolicyLayer::new(client.clone()).layer(http_client(up.addr));
    let calls: Vec<_> = (0..3)
        .map(|_| tokio::spawn(service.clone().oneshot(Get("/slow"))))
        .collect();
    tokio::time::sleep(ms(50)).await;
    let bulkhead = client.bulkhead().unwrap();
    assert_eq!(
        bulkhead.snapshot().in_flight,
        2,
        "two calls out, one waiting"
    );
    for call in &calls {
        call.abort();
    }
    for call in calls {
        assert!(call.await.unwrap_err().is_cancelled());
    }
    assert_eq!(bulkhead.snapshot().in_flight, 0);
    let m = client.metrics().snapshot();
    assert_eq!(
        (m.permitted, m.ignored, m.rejected_total(), m.in_flight()),
        (2, 2, 0, 0),
        "cancelled calls complete as ignored; the waiter never held or counted anything"
    );
    assert_eq!(status(&service.oneshot(Get("/")).await), "200");
    assert_eq!(client.metrics().snapshot().success, 1);
}

#[tokio::test(start_paused = true)]
async fn a_hedge_answers_first_and_the_slow_attempt_is_cancelled() {
    // Odd requests are slow, even ones fast: the first attempt of each call is slow.
    let up = upstream(|n, _| {
        if n % 2 == 1 {
            Reply::OK.after(Duration::from_secs(1))
        } else {
            Reply::OK
        }
    })
    .await;
    let budget = BudgetConfig::default()
        .with_ratio(0.0)
        .with_min_per_second(1)
        .with_window(Duration::from_secs(1));
    let config = PolicyConfig::new("client").with_retry(retries(1).with_budget(Some(budget)));
    let client = policy(config);
    let layer = PolicyLayer::new(client.clone())
        .with_hedge(Hedge::After(ms(100)))
        .unwrap();
    let service = layer.layer(http_client(up.addr));
    let start = Instant::now();
    assert_eq!(status(&service.clone().oneshot(Get("/")).await), "200");
    assert_eq!(start.elapsed(), ms(100), "the hedge answered at once");
    let m = client.metrics().snapshot();
    assert_eq!(
        (m.permitted, m.success, m.ignored),
        (2, 1, 1),
        "the loser was cancelled and recorded as ignored"
    );
    // The budget (one retry a second, nothing per request) is spent: no hedge now.
    let start = Instant::now();
    assert_eq!(status(&service.oneshot(Get("/")).await), "200");
    assert_eq!(
        start.elapsed(),
        Duration::from_secs(1),
        "no hedge past the budget"
    );
    assert_eq!(client.metrics().snapshot().permitted, 3);
}

#[tokio::test(start_paused = true)]
async fn cancelling_a_hedged_call_releases_both_attempts() {
    let up = upstream(|_, _| Reply::OK.after(Duration::from_secs(10))).await;
    let bulkhead = BulkheadConfig::new(4);
    let client = policy(PolicyConfig::new("client").with_bulkhead(bulkhead));
    let layer = PolicyLayer::new(client.clone())
        .with_hedge(Hedge::After(ms(100)))
        .unwrap();
    let service = layer.layer(http_client(up.addr));
    let call = tokio::spawn(service.oneshot(Get("/")));
    tokio::time::sleep(ms(150)).await;
    let bulkhead = client.bulkhead().unwrap();
    assert_eq!(
        bulkhead.snapshot().in_flight,
        2,
        "the attempt and its hedge"
    );
    call.abort();
    assert!(call.await.unwrap_err().is_cancelled());
    assert_eq!(bulkhead.snapshot().in_flight, 0);
    let m = client.metrics().snapshot();
    assert_eq!((m.permitted, m.ignored, m.in_flight()), (2, 2, 0));
}

#[tokio::test(start_paused = true)]
async fn a_percentile_hedge_waits_the_fallback_until_the_policy_has_samples() {
    // Odd requests take 1 s, even ones 50 ms.
    let up = upstream(|n, _| {
        let delay = if n % 2 == 1 { 1000 } else { 50 };
        Reply::OK.after(ms(delay))
    })
    .await;
    // A timeout makes the policy time its calls, which the percentile reads.
    let client = policy(PolicyConfig::new("client").with_timeout(Duration::from_secs(5)));
    let hedge = Hedge::Percentile {
        q: 0.5,
        fallback: ms(300),
        min_samples: 1,
    };
    let layer = PolicyLayer::new(client.clone()).with_hedge(hedge).unwrap();
    let service = layer.layer(http_client(up.addr));
    let start = Instant::now();
    assert_eq!(status(&service.clone().oneshot(Get("/")).await), "200");
    assert_eq!(
        start.elapsed(),
        ms(300 + 50),
        "no samples yet: the fallback delay"
    );
    // One sample now (the 50 ms winner); the median is read again a second later.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let start = Instant::now();
    assert_eq!(status(&service.oneshot(Get("/")).await), "200");
    let elapsed = start.elapsed();
    assert!(
        elapsed >= ms(95) && elapsed <= ms(105),
        "hedged after the observed median (50 ms within the histogram's 5 %), then 50 ms \
         of the hedge, not the fallback: {elapsed:?}"
    );
}
