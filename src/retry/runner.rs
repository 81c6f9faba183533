//! [`Retry`]: a blocking retry loop for Rust callers outside a policy, built from a
//! [`RetryConfig`] with everything else defaulted, and [`RetryError`], what it returns
//! when it gives up.

use super::budget::RetryBudget;
use super::state::{GiveUpReason, RetryConfig, RetryDecision, RetryState};
use crate::clock::{AnyClock, Clock};
use std::fmt;
use std::time::Duration;

/// Which errors a [`Retry`] retries: any `Fn(&E) -> bool`, or [`EveryError`].
pub trait RetryWhen<E> {
    /// Whether an attempt that failed with `error` may be retried.
    fn is_retryable(&self, error: &E) -> bool;
}

/// The default of [`Retry::when`]: every error is retried.
#[derive(Debug, Clone, Copy, Default)]
pub struct EveryError;

impl<E> RetryWhen<E> for EveryError {
    #[inline]
    fn is_retryable(&self, _: &E) -> bool {
        true
    }
}

impl<E, F: Fn(&E) -> bool> RetryWhen<E> for F {
    #[inline]
    fn is_retryable(&self, error: &E) -> bool {
        self(error)
    }
}

/// A retry loop: runs an operation until it succeeds, fails with an error it does not
/// retry, or the [`RetryState`] gives up, sleeping between attempts.
///
/// Defaults: the monotonic clock, a seed drawn once per `Retry` from the process's random
/// source (so callers that fail together do not retry in step), every error retried, no
/// budget, no deadline, `std::thread::sleep`. Each builder method replaces one default.
///
/// With a budget, the call's first attempt is recorded in it and each retry withdraws
/// from it. `config` should be validated ([`RetryConfig::validate`]); an invalid one
/// never panics.
///
/// It runs the same step as [`Policy::call`](crate::policy::Policy::call)
/// ([`RetryState::next`]); a policy also counts its calls and honours its other stages, so
/// prefer a policy where there is one.
///
/// ```
/// use breakwater::retry::{BackoffConfig, Retry, RetryConfig};
/// use std::time::Duration;
///
/// let config = RetryConfig::default()
///     .with_backoff(BackoffConfig::default().with_initial(Duration::from_millis(1)));
/// let result = Retry::new(&config)
///     .when(|error: &&str| *error == "flaky")
///     .run(|attempt| if attempt < 3 { Err("flaky") } else { Ok(attempt) });
/// assert_eq!(result, Ok(3));
/// ```
#[must_use = "a Retry does nothing until `run`"]
pub struct Retry<'a, C: Clock = AnyClock, W = EveryError, S = fn(Duration)> {
    settings: Settings<'a, C>,
    when: W,
    sleep: S,
}

/// What a [`Retry`] keeps whatever its predicate and waiter.
struct Settings<'a, C: Clock> {
    config: &'a RetryConfig,
    clock: C,
    budget: Option<&'a RetryBudget<C>>,
    seed: u64,
    started_at: Option<u64>,
    deadline: Option<u64>,
}

impl<C: Clock, W, S> fmt::Debug for Retry<'_, C, W, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Retry")
            .field("config", self.settings.config)
            .field("has_budget", &self.settings.budget.is_some())
            .field("seed", &self.settings.seed)
            .field("started_at", &self.settings.started_at)
            .field("deadline", &self.settings.deadline)
            .finish_non_exhaustive()
    }
}

impl<'a> Retry<'a> {
    /// A retry loop for `config` on the monotonic clock, with every other default.
    pub fn new(config: &'a RetryConfig) -> Self {
        Self::with_clock(config, AnyClock::Monotonic)
    }
}

impl<'a, C: Clock> Retry<'a, C> {
    /// A retry loop for `config` whose delays, elapsed time and deadline are read on
    /// `clock` (a budget given to [`budget`](Self::budget) must use the same clock type).
    pub fn with_clock(config: &'a RetryConfig, clock: C) -> Self {
        Retry {
            settings: Settings {
                config,
                clock,
                budget: None,
                seed: random_seed(),
                started_at: None,
                deadline: None,
            },
            when: EveryError,
            sleep: std::thread::sleep,
        }
    }
}

impl<'a, C: Clock, W, S> Retry<'a, C, W, S> {
    /// Limits retries by `budget` (shared with other calls and retry loops).
    pub fn budget(mut self, budget: &'a RetryBudget<C>) -> Self {
        self.settings.budget = Some(budget);
        self
    }

    /// The jitter seed: equal seeds give equal delay schedules (tests, replays).
    pub fn seed(mut self, seed: u64) -> Self {
        self.settings.seed = seed;
        self
    }

    /// The call's start on the clock, nanoseconds, from which `max_elapsed` counts
    /// (default: when [`run`](Self::run) starts).
    pub fn started_at(mut self, at_nanos: u64) -> Self {
        self.settings.started_at = Some(at_nanos);
        self
    }

    /// An overall deadline on the clock, nanoseconds: no attempt starts at or after it.
    pub fn deadline(mut self, at_nanos: u64) -> Self {
        self.settings.deadline = Some(at_nanos);
        self
    }

    /// Retries only the errors `when` accepts (the others end the loop with
    /// [`GiveUpReason::NotRetryable`]).
    pub fn when<P>(self, when: P) -> Retry<'a, C, P, S> {
        Retry {
            settings: self.settings,
            when,
            sleep: self.sleep,
        }
    }

    /// Waits between attempts with `sleep` instead of `std::thread::sleep` (a test
    /// advancing a [`ManualClock`](crate::clock::ManualClock), or a custom waiter).
    pub fn sleep_with<F: FnMut(Duration)>(self, sleep: F) -> Retry<'a, C, W, F> {
        Retry {
            settings: self.settings,
            when: self.when,
            sleep,
        }
    }

    /// Runs `op` (given the attempt number, 1 for the first) until it succeeds, fails
    /// with an error the loop does not retry, or the retry state gives up.
    ///
    /// ```
    /// use breakwater::clock::{Clock, ManualClock};
    /// use breakwater::retry::{BackoffConfig, GiveUpReason, Jitter, Retry, RetryConfig};
    ///
    /// let clock = ManualClock::new();
    /// let config = RetryConfig::default()
    ///     .with_backoff(BackoffConfig::default().with_jitter(Jitter::None)); // 100 ms first
    /// let result: Result<(), _> = Retry::with_clock(&config, clock.clone())
    ///     .deadline(clock.now() + 50_000_000) // 50 ms away: the first retry cannot fit
    ///     .sleep_with(|d| clock.advance(d))
    ///     .run(|_| Err("down"));
    /// let error = result.unwrap_err();
    /// assert_eq!((error.reason(), error.attempts()), (GiveUpReason::DeadlineExceeded, 1));
    /// assert_eq!(clock.now(), 1, "no sleep at all");
    /// ```
    pub fn run<T, E>(mut self, mut op: impl FnMut(u32) -> Result<T, E>) -> Result<T, RetryError<E>>
    where
        W: RetryWhen<E>,
        S: FnMut(Duration),
    {
        let started_at = self
            .settings
            .started_at
            .unwrap_or_else(|| self.settings.clock.now());
        let mut state = RetryState::new(
            self.settings.config,
            self.settings.seed,
            started_at,
            self.settings.deadline,
        );
        if let Some(budget) = self.settings.budget {
            budget.record_request();
        }
        loop {
            let attempt = state.attempts();
            let error = match op(attempt) {
                Ok(value) => return Ok(value),
                Err(error) => error,
            };
            let retryable = self.when.is_retryable(&error);
            match state.next(
                retryable,
                self.settings.clock.now(),
                None,
                self.settings.budget,
            ) {
                RetryDecision::RetryAfter(delay) => (self.sleep)(delay),
                RetryDecision::GiveUp(reason) => {
                    return Err(RetryError {
                        error,
                        attempts: attempt,
                        reason,
                    })
                }
            }
        }
    }
}

/// A seed per retry loop from the standard library's per-process random keys (the same
/// source `HashMap` uses), so loops that start together draw different jitter.
fn random_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish()
}

/// Why a [`Retry`] returned an error: the last attempt's error, the attempts made, and
/// why no further attempt was made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryError<E> {
    /// The error of the last attempt.
    pub error: E,
    /// Attempts made, counting the first.
    pub attempts: u32,
    /// Why no further attempt was made ([`GiveUpReason::NotRetryable`] when the predicate
    /// refused the error).
    pub reason: GiveUpReason,
}

impl<E> RetryError<E> {
    /// The error of the last attempt.
    pub fn error(&self) -> &E {
        &self.error
    }

    /// The error of the last attempt, by value.
    pub fn into_error(self) -> E {
        self.error
    }

    /// Attempts made, counting the first.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// Why no further attempt was made.
    pub fn reason(&self) -> GiveUpReason {
        self.reason
    }
}

impl<E: fmt::Display> fmt::Display for RetryError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "gave up ({}) after {} attempt(s): {}",
            self.reason, self.attempts, self.error
        )
    }
}

impl<E: std::error::Error + 'static> std::error::Error for RetryError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::clock::{duration_to_nanos, ManualClock};
    use crate::retry::{BackoffConfig, BudgetConfig, Jitter};

    fn fixed(max_attempts: u32) -> RetryConfig {
        RetryConfig::default()
            .with_max_attempts(max_attempts)
            .with_backoff(BackoffConfig::default().with_jitter(Jitter::None))
    }

    #[test]
    fn counts_attempts_and_gives_up_with_the_last_error() {
        let clock = ManualClock::new();
        let config = fixed(3);
        let mut calls = Vec::new();
        let r: Result<(), _> = Retry::with_clock(&config, clock.clone())
            .sleep_with(|d| clock.advance(d))
            .run(|a| {
                calls.push(a);
                Err(a)
            });
        assert_eq!(calls, [1, 2, 3]);
        assert_eq!(
            r,
            Err(RetryError {
                error: 3,
                attempts: 3,
                reason: GiveUpReason::AttemptsExhausted
            })
        );
        assert_eq!(
            clock.now(),
            1 + duration_to_nanos(Duration::from_millis(300))
        );
    }

    #[test]
    fn an_error_the_predicate_refuses_ends_the_loop() {
        let clock = ManualClock::new();
        let config = fixed(3);
        let r: Result<(), _> = Retry::with_clock(&config, clock.clone())
            .when(|e: &u32| *e < 2)
            .sleep_with(|d| clock.advance(d))
            .run(Err);
        let e = r.unwrap_err();
        assert_eq!(
            (e.attempts(), e.reason(), *e.error()),
            (2, GiveUpReason::NotRetryable, 2)
        );
        assert_eq!(
            e.to_string(),
            "gave up (not_retryable) after 2 attempt(s): 2"
        );
    }

    #[test]
    fn the_budget_records_the_call_and_refuses_retries() {
        let clock = ManualClock::new();
        let budget = RetryBudget::with_clock(
            BudgetConfig {
                ratio: 1.0,
                min_per_second: 0,
                window: Duration::from_secs(1),
            },
            clock.clone(),
        )
        .unwrap();
        let config = fixed(5);
        let r: Result<(), _> = Retry::with_clock(&config, clock.clone())
            .budget(&budget)
            .sleep_with(|_| {})
            .run(|_| Err(()));
        assert_eq!(r.unwrap_err().reason(), GiveUpReason::BudgetExhausted);
        assert_eq!(budget.snapshot().requests, 1);
        assert_eq!(budget.snapshot().retries, 1);
    }

    #[test]
    fn equal_seeds_sleep_alike_and_default_seeds_differ() {
        let config = RetryConfig::default().with_max_attempts(4);
        let delays = |retry: Retry<'_, ManualClock>| {
            let mut slept = Vec::new();
            let _: Result<(), _> = retry.sleep_with(|d| slept.push(d)).run(|_| Err(()));
            slept
        };
        let clock = ManualClock::new();
        let seeded = || Retry::with_clock(&config, clock.clone()).seed(9);
        assert_eq!(delays(seeded()), delays(seeded()));
        // Full jitter over 100/200/400 ms: two default seeds agreeing on all three
        // delays, to the nanosecond, would mean the seed is not drawn.
        let a = delays(Retry::with_clock(&config, clock.clone()));
        let b = delays(Retry::with_clock(&config, clock.clone()));
        assert_eq!(a.len(), 3);
        assert_ne!(a, b);
    }

    #[test]
    fn sleeps_for_real_by_default() {
        let config =
            fixed(2).with_backoff(BackoffConfig::default().with_initial(Duration::from_micros(10)));
        let r = Retry::new(&config).run(|a| if a == 2 { Ok(a) } else { Err(()) });
        assert_eq!(r, Ok(2));
    }
}
