//! The per-call retry state machine: the one retry step every retry loop runs.

use super::backoff::BackoffConfig;
use super::budget::{BudgetConfig, RetryBudget};
use crate::clock::{duration_to_nanos, Clock};
use crate::error::ConfigError;
use crate::rng::Rng;
use std::time::Duration;

/// The configuration of retries for one policy.
///
/// Defaults: `max_attempts` 3, default [`BackoffConfig`], no `max_elapsed`, no budget.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct RetryConfig {
    /// Attempts in all, counting the first; at least 1 (1 = never retry). Default 3.
    pub max_attempts: u32,
    /// The delay schedule.
    pub backoff: BackoffConfig,
    /// The latest time after the call's start at which a retry may start; `None` = no
    /// bound. Must be greater than zero when set. Default `None`.
    pub max_elapsed: Option<Duration>,
    /// The retry budget the policy shares between calls; `None` = unbudgeted. The config
    /// only describes it: the owner builds one [`RetryBudget`] from it and passes it to
    /// [`RetryState::next_delay`]. Default `None`.
    pub budget: Option<BudgetConfig>,
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            backoff: BackoffConfig::default(),
            max_elapsed: None,
            budget: None,
        }
    }
}

impl RetryConfig {
    /// The same configuration with `max_attempts` set.
    pub fn with_max_attempts(mut self, max_attempts: u32) -> Self {
        self.max_attempts = max_attempts;
        self
    }

    /// The same configuration with `backoff` set.
    pub fn with_backoff(mut self, backoff: BackoffConfig) -> Self {
        self.backoff = backoff;
        self
    }

    /// The same configuration with `max_elapsed` set.
    pub fn with_max_elapsed(mut self, max_elapsed: Option<Duration>) -> Self {
        self.max_elapsed = max_elapsed;
        self
    }

    /// The same configuration with `budget` set.
    pub fn with_budget(mut self, budget: Option<BudgetConfig>) -> Self {
        self.budget = budget;
        self
    }

    /// Checks every field; errors name `max_attempts`, `max_elapsed`, `backoff.*` or
    /// `budget.*` as in the policy file.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.max_attempts == 0 {
            return Err(ConfigError::new(
                "max_attempts",
                "must be at least 1 (it counts the first attempt)",
            ));
        }
        self.backoff.validate()?;
        if self.max_elapsed == Some(Duration::ZERO) {
            return Err(ConfigError::new(
                "max_elapsed",
                "must be greater than zero (omit it for no bound)",
            ));
        }
        if let Some(budget) = &self.budget {
            budget.validate()?;
        }
        Ok(())
    }
}

crate::codes::code_enum! {
    /// Why a call stops retrying.
    ///
    /// The numeric values are part of the C ABI and never change (0 is free for "retry").
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub enum GiveUpReason: u8 {
        /// `max_attempts` attempts were made.
        AttemptsExhausted = 1 => "attempts_exhausted",
        /// The next attempt would start after `max_elapsed`.
        ElapsedExceeded = 2 => "elapsed_exceeded",
        /// The next attempt would start at or after the call's deadline.
        DeadlineExceeded = 3 => "deadline_exceeded",
        /// The retry budget refused the retry. [`Policy::call`](crate::policy::Policy::call)
        /// surfaces it as a `RetryBudgetExhausted` rejection (how a policy counts and emits
        /// it: [`Policy::retry_next`](crate::policy::Policy::retry_next)).
        BudgetExhausted = 4 => "budget_exhausted",
        /// What ended the attempt is not retried (the caller's predicate, or a class the
        /// policy's `retry_on` does not list).
        NotRetryable = 5 => "not_retryable",
    }
}

/// The answer of [`RetryState::next`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RetryDecision {
    /// Sleep this long, then make the next attempt.
    RetryAfter(Duration),
    /// Stop and report the last error.
    GiveUp(GiveUpReason),
}

impl RetryDecision {
    /// The delay, if this is a retry.
    pub fn delay(self) -> Option<Duration> {
        match self {
            RetryDecision::RetryAfter(d) => Some(d),
            RetryDecision::GiveUp(_) => None,
        }
    }
}

/// Per-call retry state: plain data (no allocation, no pointers), cheap to copy, usable
/// from C through a handle. The decision rules follow.
///
/// A [`RetryState`] is created when a call starts and asked, after each attempt that did
/// not succeed, whether and when to try again ([`RetryState::next`]). It is plain data
/// (no allocation, no pointers, no clock of its own: the caller passes the time), and it
/// is the one retry step of the crate: [`Policy::call`](crate::policy::Policy::call),
/// [`Policy::retry_next`](crate::policy::Policy::retry_next) (and through it the C
/// `bw_policy_retry_next`), the [`Retry`](super::Retry) runner and the C `bw_retry_state_next_delay`
/// all run it, and sleep in their own way.
///
/// # Decision after an attempt that did not succeed
///
/// In this order, the first rule that applies wins:
///
/// 1. the state already gave up → the same [`GiveUp`](RetryDecision::GiveUp) again;
/// 2. the caller does not retry what happened → [`GiveUpReason::NotRetryable`];
/// 3. `attempts() ≥ max_attempts` → [`GiveUpReason::AttemptsExhausted`];
/// 4. the delay is `d = max(backoff.delay(n, previous), retry_after)` for retry `n`
///    (a rejection's `retry_after` is the *minimum* delay, and may exceed `backoff.max`);
/// 5. with a deadline, `now + d ≥ deadline` → [`GiveUpReason::DeadlineExceeded`] at once
///    (an attempt that would start at or after the deadline is not worth a sleep);
/// 6. with `max_elapsed`, `now + d − started_at > max_elapsed` →
///    [`GiveUpReason::ElapsedExceeded`] (an attempt may start at exactly `max_elapsed`);
/// 7. with a budget, a refused [`RetryBudget::try_withdraw`] →
///    [`GiveUpReason::BudgetExhausted`] (the budget is asked only when every other rule
///    says retry, so refused calls never spend it);
/// 8. otherwise [`RetryDecision::RetryAfter`]`(d)`, and `attempts()` grows by one.
///
/// A give-up is final. For decorrelated jitter, the `previous` delay carried to the next
/// retry is the jittered backoff delay, not the `retry_after`-raised one, so the schedule
/// depends only on the seed and the retry number, never on rejections.
///
/// ```
/// use breakwater::clock::ManualClock;
/// use breakwater::retry::{
///     BackoffConfig, GiveUpReason, Jitter, RetryBudget, RetryConfig, RetryDecision, RetryState,
/// };
/// use std::time::Duration;
///
/// let config = RetryConfig::default()
///     .with_backoff(BackoffConfig::default().with_jitter(Jitter::None));
/// let mut state = RetryState::new(&config, 7, 0, None);
/// let none: Option<&RetryBudget<ManualClock>> = None;
/// assert_eq!(state.next_delay(0, None, none), RetryDecision::RetryAfter(Duration::from_millis(100)));
/// // A rejection said "not before 1 s": that is the minimum.
/// let after = Some(Duration::from_secs(1));
/// assert_eq!(state.next_delay(0, after, none), RetryDecision::RetryAfter(Duration::from_secs(1)));
/// assert_eq!(state.attempts(), 3);
/// assert_eq!(state.next_delay(0, None, none), RetryDecision::GiveUp(GiveUpReason::AttemptsExhausted));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct RetryState {
    backoff: BackoffConfig,
    max_attempts: u32,
    /// Attempts started so far, counting the first.
    attempts: u32,
    rng: Rng,
    /// The last jittered backoff delay (0 before the first retry), for decorrelated jitter.
    previous_nanos: u64,
    started_at: u64,
    max_elapsed_nanos: Option<u64>,
    deadline: Option<u64>,
    gave_up: Option<GiveUpReason>,
}

impl RetryState {
    /// The state of a call whose first attempt starts at `started_at_nanos` (clock
    /// nanoseconds), with an optional absolute deadline, drawing jitter from a generator
    /// seeded with `seed`. Reads `max_attempts`, `backoff` and `max_elapsed` of `config`
    /// (the budget is passed to [`next_delay`](Self::next_delay)).
    ///
    /// An unvalidated `config` never panics: `max_attempts = 0` behaves as 1.
    pub fn new(
        config: &RetryConfig,
        seed: u64,
        started_at_nanos: u64,
        deadline_nanos: Option<u64>,
    ) -> Self {
        Self {
            backoff: config.backoff,
            max_attempts: config.max_attempts,
            attempts: 1,
            rng: Rng::new(seed),
            previous_nanos: 0,
            started_at: started_at_nanos,
            max_elapsed_nanos: config.max_elapsed.map(duration_to_nanos),
            deadline: deadline_nanos,
            gave_up: None,
        }
    }

    /// The retry step, after an attempt that did not succeed, at clock time `now`
    /// (nanoseconds): whether and how long to wait before the next attempt. `retryable`
    /// says whether the caller retries what happened (false gives up with
    /// [`GiveUpReason::NotRetryable`]); `retry_after` is a rejection's hint (the minimum
    /// delay). Honours `max_attempts`, the deadline, `max_elapsed` and, last, the budget
    /// (withdrawn from only when every other rule says retry). See
    /// [`RetryState`] for the exact order. Allocation-free.
    #[inline]
    pub fn next<C: Clock>(
        &mut self,
        retryable: bool,
        now: u64,
        retry_after: Option<Duration>,
        budget: Option<&RetryBudget<C>>,
    ) -> RetryDecision {
        if let Some(reason) = self.gave_up {
            return RetryDecision::GiveUp(reason);
        }
        if !retryable {
            return self.give_up(GiveUpReason::NotRetryable);
        }
        let mut rng = self.rng.clone();
        let plan = self.plan(now, retry_after, &mut rng);
        match plan {
            Err(reason) => self.give_up(reason),
            Ok((delay_nanos, backoff_nanos)) => {
                if let Some(budget) = budget {
                    if !budget.try_withdraw() {
                        return self.give_up(GiveUpReason::BudgetExhausted);
                    }
                }
                self.rng = rng;
                self.previous_nanos = backoff_nanos;
                self.attempts = self.attempts.saturating_add(1);
                RetryDecision::RetryAfter(Duration::from_nanos(delay_nanos))
            }
        }
    }

    /// [`next`](Self::next) after a retryable failure (or a retryable rejection carrying
    /// `retry_after`).
    #[inline]
    pub fn next_delay<C: Clock>(
        &mut self,
        now: u64,
        retry_after: Option<Duration>,
        budget: Option<&RetryBudget<C>>,
    ) -> RetryDecision {
        self.next(true, now, retry_after, budget)
    }

    /// Pure: the decision without the budget, as `(delay, backoff delay)` in nanoseconds
    /// or the reason to give up. Draws from `rng` only when the attempts allow a retry.
    #[inline]
    fn plan(
        &self,
        now: u64,
        retry_after: Option<Duration>,
        rng: &mut Rng,
    ) -> Result<(u64, u64), GiveUpReason> {
        if self.attempts >= self.max_attempts {
            return Err(GiveUpReason::AttemptsExhausted);
        }
        let backoff = self
            .backoff
            .delay_nanos(self.attempts, self.previous_nanos, rng);
        let delay = backoff.max(retry_after.map_or(0, duration_to_nanos));
        let start = now.saturating_add(delay);
        if self.deadline.is_some_and(|deadline| start >= deadline) {
            return Err(GiveUpReason::DeadlineExceeded);
        }
        if self
            .max_elapsed_nanos
            .is_some_and(|limit| start.saturating_sub(self.started_at) > limit)
        {
            return Err(GiveUpReason::ElapsedExceeded);
        }
        Ok((delay, backoff))
    }

    #[cold]
    fn give_up(&mut self, reason: GiveUpReason) -> RetryDecision {
        self.gave_up = Some(reason);
        RetryDecision::GiveUp(reason)
    }

    /// Attempts started so far, counting the first: 1 at creation, one more for each
    /// [`RetryDecision::RetryAfter`].
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// Why this state gave up, once it has.
    pub fn gave_up(&self) -> Option<GiveUpReason> {
        self.gave_up
    }

    /// The generator's state word (so a caller across the ABI can log or replay it).
    pub fn rng_state(&self) -> u64 {
        self.rng.state()
    }

    /// The call's deadline, in clock nanoseconds.
    pub fn deadline_nanos(&self) -> Option<u64> {
        self.deadline
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::retry::Jitter;

    const NO_BUDGET: Option<&RetryBudget<ManualClock>> = None;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// A budget granting one retry per recorded request, nothing for free.
    fn one_retry_per_request(clock: &ManualClock) -> RetryBudget<ManualClock> {
        RetryBudget::with_clock(
            BudgetConfig {
                ratio: 1.0,
                min_per_second: 0,
                window: Duration::from_secs(1),
            },
            clock.clone(),
        )
        .unwrap()
    }

    fn fixed(max_attempts: u32) -> RetryConfig {
        RetryConfig::default()
            .with_max_attempts(max_attempts)
            .with_backoff(BackoffConfig::default().with_jitter(Jitter::None))
    }

    #[test]
    fn defaults_and_validation() {
        let c = RetryConfig::default();
        assert_eq!(c.max_attempts, 3);
        assert_eq!((c.max_elapsed, c.budget), (None, None));
        c.validate().unwrap();
        let field = |c: RetryConfig| c.validate().unwrap_err().field;
        assert_eq!(field(c.with_max_attempts(0)), "max_attempts");
        assert_eq!(
            field(c.with_max_elapsed(Some(Duration::ZERO))),
            "max_elapsed"
        );
        assert_eq!(
            field(c.with_backoff(BackoffConfig::default().with_multiplier(0.0))),
            "backoff.multiplier"
        );
        assert_eq!(
            field(c.with_budget(Some(BudgetConfig::default().with_ratio(-1.0)))),
            "budget.ratio"
        );
        c.with_max_attempts(1)
            .with_max_elapsed(Some(ms(1)))
            .with_budget(Some(BudgetConfig::default()))
            .validate()
            .unwrap();
    }

    #[test]
    fn reason_codes_round_trip() {
        for r in GiveUpReason::ALL {
            assert_eq!(GiveUpReason::from_code(r.code().into()), Some(r));
            assert_eq!(r.to_string(), r.as_str());
        }
        assert_eq!(GiveUpReason::from_code(0), None);
        assert_eq!(GiveUpReason::from_code(5), Some(GiveUpReason::NotRetryable));
        assert_eq!(GiveUpReason::from_code(6), None);
    }

    #[test]
    fn attempts_are_counted_and_give_up_is_final() {
        let mut s = RetryState::new(&fixed(3), 1, 0, None);
        assert_eq!(s.attempts(), 1);
        assert_eq!(
            s.next_delay(0, None, NO_BUDGET),
            RetryDecision::RetryAfter(ms(100))
        );
        assert_eq!(
            s.next_delay(0, None, NO_BUDGET),
            RetryDecision::RetryAfter(ms(200))
        );
        assert_eq!(s.attempts(), 3);
        let gave_up = RetryDecision::GiveUp(GiveUpReason::AttemptsExhausted);
        assert_eq!(s.next_delay(0, None, NO_BUDGET), gave_up);
        assert_eq!(s.next_delay(0, None, NO_BUDGET), gave_up);
        assert_eq!(s.gave_up(), Some(GiveUpReason::AttemptsExhausted));
        assert_eq!(s.attempts(), 3);
    }

    #[test]
    fn one_attempt_and_zero_attempts_never_retry() {
        for n in [0, 1] {
            let mut s = RetryState::new(&fixed(n), 1, 0, None);
            assert_eq!(
                s.next_delay(0, None, NO_BUDGET),
                RetryDecision::GiveUp(GiveUpReason::AttemptsExhausted)
            );
        }
    }

    #[test]
    fn deadline_gives_up_before_a_wasted_sleep() {
        let ns = |d: Duration| duration_to_nanos(d);
        // First backoff is 100 ms: a deadline 100 ms away is too close, 100 ms + 1 ns fits.
        let mut s = RetryState::new(&fixed(5), 1, 0, Some(ns(ms(100))));
        assert_eq!(
            s.next_delay(0, None, NO_BUDGET),
            RetryDecision::GiveUp(GiveUpReason::DeadlineExceeded)
        );
        let mut s = RetryState::new(&fixed(5), 1, 0, Some(ns(ms(100)) + 1));
        assert_eq!(
            s.next_delay(0, None, NO_BUDGET),
            RetryDecision::RetryAfter(ms(100))
        );
        // retry_after counts against the deadline too.
        let mut s = RetryState::new(&fixed(5), 1, 0, Some(ns(ms(500))));
        assert_eq!(
            s.next_delay(0, Some(ms(600)), NO_BUDGET),
            RetryDecision::GiveUp(GiveUpReason::DeadlineExceeded)
        );
    }

    #[test]
    fn max_elapsed_bounds_the_start_of_a_retry() {
        let config = fixed(10).with_max_elapsed(Some(ms(300)));
        let mut s = RetryState::new(&config, 1, 1_000, None);
        let t = |d: Duration| 1_000 + duration_to_nanos(d);
        assert_eq!(
            s.next_delay(t(ms(100)), None, NO_BUDGET),
            RetryDecision::RetryAfter(ms(100))
        );
        // Now at 100 ms: the 200 ms delay ends exactly at 300 ms, allowed.
        assert_eq!(
            s.next_delay(t(ms(100)), None, NO_BUDGET),
            RetryDecision::RetryAfter(ms(200))
        );
        assert_eq!(
            s.next_delay(t(ms(1)), None, NO_BUDGET),
            RetryDecision::GiveUp(GiveUpReason::ElapsedExceeded)
        );
    }

    #[test]
    fn retry_after_is_a_minimum_and_does_not_move_the_schedule() {
        let mut s = RetryState::new(&fixed(4), 1, 0, None);
        assert_eq!(
            s.next_delay(0, Some(ms(30)), NO_BUDGET),
            RetryDecision::RetryAfter(ms(100))
        );
        assert_eq!(
            s.next_delay(0, Some(Duration::from_secs(60)), NO_BUDGET),
            RetryDecision::RetryAfter(Duration::from_secs(60)),
            "above backoff.max"
        );
        assert_eq!(
            s.next_delay(0, None, NO_BUDGET),
            RetryDecision::RetryAfter(ms(400))
        );
    }

    #[test]
    fn budget_is_asked_last_and_refusal_is_final() {
        let clock = ManualClock::new();
        let budget = one_retry_per_request(&clock);
        budget.record_request();
        // Attempts exhausted: the budget is not touched.
        let mut s = RetryState::new(&fixed(1), 1, 0, None);
        assert!(s.next_delay(0, None, Some(&budget)).delay().is_none());
        assert_eq!(budget.snapshot().retries, 0);
        let mut s = RetryState::new(&fixed(5), 1, 0, None);
        assert_eq!(
            s.next_delay(0, None, Some(&budget)),
            RetryDecision::RetryAfter(ms(100))
        );
        assert_eq!(
            s.next_delay(0, None, Some(&budget)),
            RetryDecision::GiveUp(GiveUpReason::BudgetExhausted)
        );
        budget.record_request();
        assert_eq!(
            s.next_delay(0, None, Some(&budget)),
            RetryDecision::GiveUp(GiveUpReason::BudgetExhausted),
            "final"
        );
        assert_eq!(budget.snapshot().retries, 1);
    }

    #[test]
    fn not_retryable_gives_up_first_and_spends_nothing() {
        let clock = ManualClock::new();
        let budget = one_retry_per_request(&clock);
        budget.record_request();
        let mut s = RetryState::new(&fixed(1), 1, 0, None);
        let not_retryable = RetryDecision::GiveUp(GiveUpReason::NotRetryable);
        assert_eq!(s.next(false, 0, None, Some(&budget)), not_retryable);
        assert_eq!(s.next(true, 0, None, Some(&budget)), not_retryable, "final");
        assert_eq!(budget.snapshot().retries, 0);
        assert_eq!(s.attempts(), 1);
    }

    #[test]
    fn same_seed_same_schedule() {
        for jitter in Jitter::ALL {
            let config = RetryConfig::default()
                .with_max_attempts(20)
                .with_backoff(BackoffConfig::default().with_jitter(jitter));
            let run = |seed| {
                let mut s = RetryState::new(&config, seed, 0, None);
                (0..19)
                    .map(|_| s.next_delay(0, None, NO_BUDGET))
                    .collect::<Vec<_>>()
            };
            assert_eq!(run(5), run(5));
            if jitter != Jitter::None {
                assert_ne!(run(5), run(6));
            }
        }
    }
}
