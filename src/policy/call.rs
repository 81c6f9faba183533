//! The policy's retry step (`retry_begin`/`retry_next`) and `call`, the retry loop
//! around the pipeline built on it, with timing, fault injection and an optional
//! fallback. A thin layer over `acquire`/`complete` and [`RetryState`].
//!
//! The per-call retry decision exists once: [`RetryState::next`]. The policy adds what
//! only it knows: which outcome classes its `retry_on` retries, its retry budget, its
//! clock, and its counters and events. [`Policy::call`] and the C
//! `bw_policy_retry_begin`/`bw_policy_retry_next` both run
//! [`Policy::retry_begin`]/[`Policy::retry_next`], so their decisions are the same for
//! the same policy, seed, clock and outcomes.
//!
//! A retry the budget refuses ends the call with a `RetryBudgetExhausted` rejection:
//! [`Policy::call`] returns [`CallError::Rejected`] with
//! [`RejectReason::RetryBudgetExhausted`], and the C loop gives up with
//! `BW_GIVE_UP_BUDGET_EXHAUSTED`; how it is counted and emitted is documented once, on
//! [`Policy::retry_next`].

use std::time::Duration;

use crate::clock::{AnyClock, Clock};
use crate::retry::{GiveUpReason, RetryDecision, RetryState};
use crate::{CallError, Outcome, RejectReason, Rejection};

use super::config::RetryOn;
use super::pipeline::Policy;

/// How one [`Policy::call_with`] runs: its overall deadline, the seed of its jitter, how
/// it waits, and who hears its retry decisions. The default is what [`Policy::call`]
/// does: no deadline, a seed drawn from the policy, [`std::thread::sleep`], no observer.
#[derive(Default)]
pub struct CallOptions<'a> {
    deadline_nanos: Option<u64>,
    seed: Option<u64>,
    sleep: Option<&'a mut dyn FnMut(Duration)>,
    observer: Option<&'a mut dyn FnMut(RetryDecision)>,
}

impl std::fmt::Debug for CallOptions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallOptions")
            .field("deadline_nanos", &self.deadline_nanos)
            .field("seed", &self.seed)
            .field("custom_sleep", &self.sleep.is_some())
            .field("observer", &self.observer.is_some())
            .finish()
    }
}

impl<'a> CallOptions<'a> {
    /// The defaults: no deadline, a seed drawn from the policy, `std::thread::sleep`.
    pub fn new() -> Self {
        Self::default()
    }

    /// The call's overall deadline, in nanoseconds on the policy's clock
    /// ([`Policy::now`] plus the time left): a retry whose backoff would end at or after
    /// it is not started, and the call gives up at once with
    /// [`GiveUpReason::DeadlineExceeded`].
    pub fn with_deadline_nanos(mut self, deadline_nanos: u64) -> Self {
        self.deadline_nanos = Some(deadline_nanos);
        self
    }

    /// Seeds the call's jitter (the same seed gives the same delays in every language).
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Waits with `sleep` instead of [`std::thread::sleep`] (before a retry, and for
    /// injected latency): a test advancing a
    /// [`ManualClock`](crate::clock::ManualClock), or a custom waiter.
    pub fn with_sleep(mut self, sleep: &'a mut dyn FnMut(Duration)) -> Self {
        self.sleep = Some(sleep);
        self
    }

    /// Calls `observer` with every retry decision the call makes, before acting on it
    /// (to log why a call gave up, or to test the schedule).
    pub fn with_observer(mut self, observer: &'a mut dyn FnMut(RetryDecision)) -> Self {
        self.observer = Some(observer);
        self
    }

    fn observe(&mut self, decision: RetryDecision) {
        if let Some(observer) = self.observer.as_mut() {
            observer(decision);
        }
    }

    fn wait(&mut self, duration: Duration) {
        if duration.is_zero() {
            return;
        }
        match self.sleep.as_mut() {
            Some(sleep) => sleep(duration),
            None => std::thread::sleep(duration),
        }
    }
}

impl Policy {
    /// The clock that times calls and retry decisions: the policy's own clock, at
    /// nanosecond precision (a manual clock stays itself, so a test sees exact durations).
    fn call_clock(&self) -> AnyClock {
        self.clock().precise()
    }

    /// The time on the policy's clock, in nanoseconds: the base of a call's deadline
    /// ([`CallOptions::with_deadline_nanos`], C `bw_policy_retry_begin`).
    pub fn now(&self) -> u64 {
        self.call_clock().now()
    }

    /// Begins the retry loop of one logical call: a [`RetryState`] with the policy's retry
    /// settings, seeded with `seed`, started now on the policy's clock, with an optional
    /// overall deadline (nanoseconds on the policy's clock), and one request recorded in
    /// the policy's retry budget. `None` when the policy has no retry section.
    ///
    /// After each attempt that did not succeed, ask [`Policy::retry_next`].
    pub fn retry_begin(&self, seed: u64, deadline_nanos: Option<u64>) -> Option<RetryState> {
        let section = self.config().retry.as_ref()?;
        let state = RetryState::new(&section.retry, seed, self.now(), deadline_nanos);
        if let Some(budget) = self.retry_budget() {
            budget.record_request();
        }
        Some(state)
    }

    /// The retry step of a call begun with [`Policy::retry_begin`]: `what` is the class
    /// of what ended the attempt ([`RetryOn::FAILURE`], [`RetryOn::TIMEOUT`] or
    /// [`RetryOn::rejection`]), `retry_after` a rejection's hint. Runs
    /// [`RetryState::next`] with "retryable" meaning that the policy's `retry_on` holds
    /// every class of `what` (an empty `what`, or a policy without a retry section, is not
    /// retried), at the policy clock's time, against the policy's budget.
    ///
    /// Counts a granted retry in the policy's `retries`. A retry the budget refuses is
    /// counted once in the policy's rejections under `retry_budget_exhausted` (Rust
    /// snapshot `rejected`, C `rejected_retry_budget_exhausted`, Prometheus
    /// `breakwater_rejections_total{reason="retry_budget_exhausted"}`) and emits one
    /// [`Event::BudgetExhausted`](crate::metrics::Event::BudgetExhausted) at the same
    /// moment; asking a state that already gave up again does neither. Allocation-free.
    pub fn retry_next(
        &self,
        state: &mut RetryState,
        what: RetryOn,
        retry_after: Option<Duration>,
    ) -> RetryDecision {
        let retry_on = self
            .config()
            .retry
            .as_ref()
            .map_or(RetryOn::NONE, |r| r.retry_on);
        let retryable = what.bits() != 0 && what.bits() & !retry_on.bits() == 0;
        let already_gave_up = state.gave_up().is_some();
        let decision = state.next(retryable, self.now(), retry_after, self.retry_budget());
        match decision {
            RetryDecision::RetryAfter(_) => self.metrics().on_retry(),
            RetryDecision::GiveUp(GiveUpReason::BudgetExhausted) if !already_gave_up => {
                self.shared.on_budget_exhausted(self.clock().now());
            }
            RetryDecision::GiveUp(_) => {}
        }
        decision
    }

    /// Runs `op` through the pipeline, retrying as configured: each attempt acquires
    /// again, retries consult the retry budget, and the backoff honours a rejection's
    /// `retry_after` and `max_elapsed`. `op` gets the attempt number (1-based). Every
    /// `Err` counts as a failure and is retried when failures are. The decisions are
    /// [`Policy::retry_next`]'s; a retry the budget refuses ends the call with a
    /// `RetryBudgetExhausted` rejection.
    ///
    /// Each attempt is timed on the policy's clock: one that returns after `timeout` is
    /// recorded as `Timeout` (its value is still returned: the work was done). With fault
    /// injection, an injected failure skips `op`, and injected latency is slept before
    /// it.
    ///
    /// ```
    /// use breakwater::policy::{Policy, PolicyConfig};
    /// use breakwater::retry::{RetryConfig, BackoffConfig, Jitter};
    /// use std::time::Duration;
    ///
    /// let retry = RetryConfig::default().with_max_attempts(3).with_backoff(
    ///     BackoffConfig::default()
    ///         .with_initial(Duration::from_millis(1))
    ///         .with_jitter(Jitter::None),
    /// );
    /// let policy = Policy::new(PolicyConfig::new("flaky").with_retry(retry)).unwrap();
    /// let value = policy.call(|attempt| if attempt < 3 { Err("boom") } else { Ok(attempt) });
    /// assert_eq!(value, Ok(3));
    /// ```
    pub fn call<T, E>(&self, op: impl FnMut(u32) -> Result<T, E>) -> Result<T, CallError<E>> {
        self.call_with(CallOptions::new(), op, |_| true)
    }

    /// Like [`Policy::call`], retrying only errors for which `is_retryable` is true.
    pub fn call_when<T, E>(
        &self,
        op: impl FnMut(u32) -> Result<T, E>,
        is_retryable: impl Fn(&E) -> bool,
    ) -> Result<T, CallError<E>> {
        self.call_with(CallOptions::new(), op, is_retryable)
    }

    /// [`Policy::call_when`] with [`CallOptions`]: an overall deadline, a fixed seed, a
    /// custom sleep, an observer of the retry decisions.
    ///
    /// ```
    /// use breakwater::clock::{AnyClock, ManualClock};
    /// use breakwater::policy::{CallError, CallOptions, Policy, PolicyConfig};
    /// use breakwater::retry::{BackoffConfig, Jitter, RetryConfig};
    /// use std::time::Duration;
    ///
    /// let clock = ManualClock::new();
    /// let retry = RetryConfig::default()
    ///     .with_max_attempts(5)
    ///     .with_backoff(BackoffConfig::default().with_jitter(Jitter::None));
    /// let policy = Policy::with_clock(
    ///     PolicyConfig::new("p").with_retry(retry),
    ///     AnyClock::Manual(clock.clone()),
    /// ).unwrap();
    /// // 100 ms, then 200 ms: the second retry would end at 300 ms, past the deadline.
    /// let deadline = policy.now() + 250_000_000;
    /// let mut sleep = |d: Duration| clock.advance(d);
    /// let options = CallOptions::new().with_deadline_nanos(deadline).with_sleep(&mut sleep);
    /// let result: Result<(), _> = policy.call_with(options, |_| Err("down"), |_| true);
    /// assert_eq!(result, Err(CallError::Failed("down")));
    /// assert_eq!(policy.metrics().snapshot().retries, 1);
    /// ```
    pub fn call_with<T, E>(
        &self,
        mut options: CallOptions<'_>,
        mut op: impl FnMut(u32) -> Result<T, E>,
        is_retryable: impl Fn(&E) -> bool,
    ) -> Result<T, CallError<E>> {
        let timer = self.call_clock();
        let seed = options.seed.unwrap_or_else(|| self.seeds.next_u64());
        let mut state = self.retry_begin(seed, options.deadline_nanos);
        let mut attempt: u32 = 0;
        loop {
            attempt = attempt.saturating_add(1);
            let (error, what, retry_after) = match self.acquire() {
                Err(rejection) => (
                    CallError::Rejected(rejection),
                    RetryOn::rejection(rejection.reason),
                    rejection.retry_after,
                ),
                Ok(permit) => {
                    options.wait(permit.injected_latency());
                    if permit.injected_failure() {
                        permit.failure();
                        (CallError::Injected, RetryOn::FAILURE, None)
                    } else {
                        let begin = timer.now();
                        let result = op(attempt);
                        let elapsed = Duration::from_nanos(timer.now().saturating_sub(begin));
                        let outcome =
                            Outcome::of(&result).with_deadline(elapsed, self.config().timeout);
                        permit.record_with_duration(outcome, elapsed);
                        match result {
                            Ok(value) => return Ok(value),
                            Err(e) => {
                                let what = if !is_retryable(&e) {
                                    RetryOn::NONE
                                } else if outcome == Outcome::Timeout {
                                    RetryOn::TIMEOUT
                                } else {
                                    RetryOn::FAILURE
                                };
                                (CallError::Failed(e), what, None)
                            }
                        }
                    }
                }
            };
            let Some(state) = state.as_mut() else {
                return Err(error);
            };
            let decision = self.retry_next(state, what, retry_after);
            options.observe(decision);
            match decision {
                RetryDecision::RetryAfter(delay) => options.wait(delay),
                RetryDecision::GiveUp(GiveUpReason::BudgetExhausted) => {
                    return Err(CallError::Rejected(Rejection::new(
                        RejectReason::RetryBudgetExhausted,
                        None,
                    )))
                }
                RetryDecision::GiveUp(_) => return Err(error),
            }
        }
    }

    /// [`Policy::call`] with a fallback: when the call does not produce a value,
    /// `fallback` gets the error and may produce one.
    pub fn call_or_else<T, E>(
        &self,
        op: impl FnMut(u32) -> Result<T, E>,
        fallback: impl FnOnce(CallError<E>) -> Result<T, CallError<E>>,
    ) -> Result<T, CallError<E>> {
        self.call(op).or_else(fallback)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::metrics::{Event, EventSink};
    use crate::policy::PolicyConfig;
    use crate::retry::{BackoffConfig, BudgetConfig, Jitter, RetryConfig};
    use crate::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn fixed(max_attempts: u32) -> RetryConfig {
        RetryConfig::default()
            .with_max_attempts(max_attempts)
            .with_backoff(BackoffConfig::default().with_jitter(Jitter::None))
    }

    fn manual_policy(config: PolicyConfig) -> (ManualClock, Policy) {
        let clock = ManualClock::new();
        let policy = Policy::with_clock(config, AnyClock::Manual(clock.clone())).unwrap();
        (clock, policy)
    }

    /// A listener counting budget-exhausted events.
    fn count_budget_events(policy: &Policy) -> Arc<AtomicU64> {
        let seen = Arc::new(AtomicU64::new(0));
        let sink = Arc::new(EventSink::default());
        let counter = seen.clone();
        sink.set_listener(move |e: &Event<'_>| {
            if matches!(e, Event::BudgetExhausted { .. }) {
                counter.fetch_add(1, Ordering::Relaxed);
            }
        })
        .ok()
        .unwrap();
        assert!(policy.attach_events(sink));
        seen
    }

    #[test]
    fn call_times_attempts_on_the_policy_clock() {
        let config = PolicyConfig::new("p").with_timeout(ms(50));
        let (clock, policy) = manual_policy(config);
        let r: Result<(), CallError<()>> = policy.call(|_| {
            clock.advance(ms(50));
            Ok(())
        });
        assert_eq!(r, Ok(()));
        let r: Result<(), CallError<()>> = policy.call(|_| {
            clock.advance(ms(50) + Duration::from_nanos(1));
            Ok(())
        });
        assert_eq!(r, Ok(()), "a late value is still returned");
        let m = policy.metrics().snapshot();
        assert_eq!(
            (m.success, m.timeout),
            (1, 1),
            "exactly at the timeout is in time, 1 ns later is not (clock {})",
            clock.now()
        );
        assert_eq!(m.latency.sum_nanos, 100_000_001, "exact durations");
    }

    #[test]
    fn a_deadline_stops_retries_that_would_end_past_it() {
        let config = PolicyConfig::new("p").with_retry(fixed(10));
        let (clock, policy) = manual_policy(config);
        // Delays 100, 200, 400 ms: the third retry would end at 700 ms + 3 × 10 ms of
        // work, past a deadline at 600 ms.
        let deadline = policy.now() + 600_000_000;
        let mut decisions = Vec::new();
        let mut observe = |d| decisions.push(d);
        let mut sleep = |d| clock.advance(d);
        let options = CallOptions::new()
            .with_deadline_nanos(deadline)
            .with_sleep(&mut sleep)
            .with_observer(&mut observe);
        let r: Result<(), _> = policy.call_with(
            options,
            |_| {
                clock.advance(ms(10));
                Err("down")
            },
            |_| true,
        );
        assert_eq!(r, Err(CallError::Failed("down")), "the last error, at once");
        assert_eq!(
            decisions,
            [
                RetryDecision::RetryAfter(ms(100)),
                RetryDecision::RetryAfter(ms(200)),
                RetryDecision::GiveUp(GiveUpReason::DeadlineExceeded),
            ]
        );
        assert!(clock.now() < deadline, "no sleep past the deadline");
    }

    #[test]
    fn a_budget_refusal_is_one_rejection_and_one_event() {
        let budget = BudgetConfig {
            ratio: 0.0,
            min_per_second: 1,
            window: Duration::from_secs(1),
        };
        let config = PolicyConfig::new("p").with_retry(fixed(10).with_budget(Some(budget)));
        let (_clock, policy) = manual_policy(config);
        let events = count_budget_events(&policy);
        let r: Result<(), _> = policy.call(|_| Err("down"));
        assert_eq!(
            r,
            Err(CallError::Rejected(Rejection::new(
                RejectReason::RetryBudgetExhausted,
                None
            )))
        );
        let refusals = |p: &Policy| {
            let m = p.metrics().snapshot();
            (m.retries, m.rejected_by(RejectReason::RetryBudgetExhausted))
        };
        assert_eq!(refusals(&policy), (1, 1));
        assert_eq!(events.load(Ordering::Relaxed), 1);
        // Through the step directly: a refusal asked again is neither recounted nor
        // re-emitted.
        let mut state = policy.retry_begin(1, None).unwrap();
        let refused = RetryDecision::GiveUp(GiveUpReason::BudgetExhausted);
        assert_eq!(
            policy.retry_next(&mut state, RetryOn::FAILURE, None),
            refused
        );
        assert_eq!(
            policy.retry_next(&mut state, RetryOn::FAILURE, None),
            refused
        );
        assert_eq!(refusals(&policy), (1, 2));
        assert_eq!(
            events.load(Ordering::Relaxed),
            2,
            "one event per counted refusal"
        );
    }

    #[test]
    fn retry_next_retries_only_the_classes_retry_on_lists() {
        let config = PolicyConfig::new("p").with_retry_on(
            fixed(5),
            RetryOn::FAILURE.union(RetryOn::rejection(RejectReason::RateLimited)),
        );
        let (_clock, policy) = manual_policy(config);
        let mut state = policy.retry_begin(1, None).unwrap();
        let limited = RetryOn::rejection(RejectReason::RateLimited);
        assert_eq!(
            policy.retry_next(&mut state, limited, Some(Duration::from_secs(2))),
            RetryDecision::RetryAfter(Duration::from_secs(2)),
            "retry_after is the minimum"
        );
        let not_retryable = RetryDecision::GiveUp(GiveUpReason::NotRetryable);
        for what in [
            RetryOn::NONE,
            RetryOn::TIMEOUT,
            RetryOn::FAILURE.union(RetryOn::TIMEOUT),
        ] {
            let mut state = policy.retry_begin(1, None).unwrap();
            assert_eq!(policy.retry_next(&mut state, what, None), not_retryable);
        }
        assert_eq!(policy.metrics().snapshot().retries, 1);
        let plain = Policy::new(PolicyConfig::new("plain")).unwrap();
        assert!(plain.retry_begin(1, None).is_none());
        assert_eq!(
            plain.retry_next(&mut state, RetryOn::FAILURE, None),
            not_retryable
        );
    }

    #[test]
    fn injected_latency_waits_through_the_call_sleep() {
        use crate::chaos::{ChaosConfig, LatencyFault};
        let chaos = ChaosConfig {
            enabled: true,
            latency_probability: 1.0,
            latency: LatencyFault::Fixed(ms(7)),
            ..ChaosConfig::default()
        };
        let (clock, policy) = manual_policy(PolicyConfig::new("p").with_chaos(chaos));
        let mut sleep = |d| clock.advance(d);
        let start = clock.now();
        let r: Result<u32, CallError<()>> = policy.call_with(
            CallOptions::new().with_sleep(&mut sleep),
            |_| Ok(1),
            |_| true,
        );
        assert_eq!(r, Ok(1));
        assert_eq!(clock.now() - start, 7_000_000);
    }
}
