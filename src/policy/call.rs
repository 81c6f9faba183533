//! `call`: the retry loop around the pipeline, with timing, fault injection and an
//! optional fallback. A thin layer over `acquire`/`complete`.

use std::time::Duration;

use crate::clock::{Clock, MonotonicClock};
use crate::retry::{RetryDecision, RetryState};
use crate::{Outcome, Rejection};

use super::pipeline::Policy;

/// Why a [`Policy::call`] did not return a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallError<E> {
    /// The last attempt was rejected by a stage (and was not, or could no longer be,
    /// retried).
    Rejected(Rejection),
    /// The last attempt failed with this error.
    Failed(E),
    /// Fault injection failed the last attempt; the operation was not run.
    Injected,
}

impl<E: std::fmt::Display> std::fmt::Display for CallError<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Rejected(r) => write!(f, "{r}"),
            CallError::Failed(e) => write!(f, "call failed: {e}"),
            CallError::Injected => f.write_str("call failed: injected fault"),
        }
    }
}

impl<E: std::fmt::Debug + std::fmt::Display> std::error::Error for CallError<E> {}

impl Policy {
    /// Counts a retry the caller is about to make (for retry loops outside `call`, such
    /// as the C ABI's).
    pub(crate) fn note_retry(&self) {
        self.metrics().on_retry();
    }

    /// Counts a retry the budget refused and emits `BudgetExhausted`.
    pub(crate) fn note_budget_exhausted(&self) {
        self.shared.on_budget_exhausted(self.clock.now());
    }

    /// Runs `op` through the pipeline, retrying as configured: each attempt acquires
    /// again, retries consult the retry budget, and the backoff honours a rejection's
    /// `retry_after` and the `max_elapsed` deadline. `op` gets the attempt number
    /// (1-based). Every `Err` counts as a failure and is retried when failures are.
    ///
    /// A call that returns after `timeout` is recorded as `Timeout` (its value is still
    /// returned: the work was done). With fault injection, an injected failure skips
    /// `op`, and injected latency is slept before it.
    ///
    /// ```
    /// use breakwater::policy::{Policy, PolicyConfig};
    /// use breakwater::retry::{RetryConfig, BackoffConfig, Jitter};
    /// use std::time::Duration;
    ///
    /// let retry = RetryConfig {
    ///     max_attempts: 3,
    ///     backoff: BackoffConfig { initial: Duration::from_millis(1), jitter: Jitter::None, ..Default::default() },
    ///     ..Default::default()
    /// };
    /// let policy = Policy::new(PolicyConfig::new("flaky").with_retry(retry)).unwrap();
    /// let value = policy.call(|attempt| if attempt < 3 { Err("boom") } else { Ok(attempt) });
    /// assert_eq!(value, Ok(3));
    /// ```
    pub fn call<T, E>(&self, op: impl FnMut(u32) -> Result<T, E>) -> Result<T, CallError<E>> {
        self.call_when(op, |_| true)
    }

    /// Like [`Policy::call`], retrying only errors for which `is_retryable` is true.
    pub fn call_when<T, E>(
        &self,
        mut op: impl FnMut(u32) -> Result<T, E>,
        is_retryable: impl Fn(&E) -> bool,
    ) -> Result<T, CallError<E>> {
        let timer = MonotonicClock;
        let retry = self.config().retry.as_ref();
        let started = self.clock.now();
        let mut state =
            retry.map(|r| RetryState::new(&r.retry, self.seeds.next_u64(), started, None));
        if let Some(budget) = &self.budget {
            budget.record_request();
        }
        let mut attempt: u32 = 0;
        loop {
            attempt = attempt.saturating_add(1);
            let (error, retry_after) = match self.acquire() {
                Err(rejection) => {
                    let retryable = retry.is_some_and(|r| r.retry_on.rejected(rejection.reason));
                    if !retryable {
                        return Err(CallError::Rejected(rejection));
                    }
                    (CallError::Rejected(rejection), rejection.retry_after)
                }
                Ok(permit) => {
                    let latency = permit.injected_latency();
                    if !latency.is_zero() {
                        std::thread::sleep(latency);
                    }
                    if permit.injected_failure() {
                        permit.failure();
                        (CallError::Injected, None)
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
                                let retryable = is_retryable(&e)
                                    && retry.is_some_and(|r| r.retry_on.outcome(outcome));
                                if !retryable {
                                    return Err(CallError::Failed(e));
                                }
                                (CallError::Failed(e), None)
                            }
                        }
                    }
                }
            };
            let Some(state) = state.as_mut() else {
                return Err(error);
            };
            match state.next_delay(self.clock.now(), retry_after, self.budget.as_ref()) {
                RetryDecision::RetryAfter(delay) => {
                    self.note_retry();
                    if !delay.is_zero() {
                        std::thread::sleep(delay);
                    }
                }
                RetryDecision::GiveUp(reason) => {
                    if reason == crate::retry::GiveUpReason::BudgetExhausted {
                        self.note_budget_exhausted();
                    }
                    return Err(error);
                }
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
