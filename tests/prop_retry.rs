//! Property tests of the retry module against plain sequential reference models:
//! the jitter bounds and the cap, decorrelated jitter from the first retry, the
//! determinism of the schedule, the retry budget's bound, the deadline rule and
//! `retry_after` as a minimum; and (with `capi`) the one retry step giving the same
//! decisions through `Policy::call`, the `retry` helper and `bw_policy_retry_next`.
#![cfg(not(loom))]

use breakwater::clock::{duration_to_nanos, Clock, ManualClock};
use breakwater::retry::{
    BackoffConfig, BudgetConfig, GiveUpReason, Jitter, RetryBudget, RetryConfig, RetryDecision,
    RetryState,
};
use breakwater::rng::Rng;
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use std::time::Duration;

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2000)
}

/// `cases()` cases, with regressions kept in `tests/prop_retry.proptest-regressions`.
fn config() -> ProptestConfig {
    ProptestConfig {
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource(
            "proptest-regressions",
        ))),
        ..ProptestConfig::with_cases(cases())
    }
}

fn jitter() -> impl Strategy<Value = Jitter> {
    prop::sample::select(Jitter::ALL.to_vec())
}

/// Valid backoff configurations, from nanoseconds to hours, with constant and steep growth.
fn backoff() -> impl Strategy<Value = BackoffConfig> {
    (
        prop_oneof![1u64..1_000, 1_000u64..10_000_000_000, 1u64..=u64::MAX / 4],
        prop_oneof![Just(1.0f64), 1.0f64..3.0, 3.0f64..100.0],
        prop_oneof![Just(0u64), 0u64..1_000_000, any::<u64>()],
        jitter(),
    )
        .prop_map(|(initial, multiplier, extra, jitter)| {
            BackoffConfig::default()
                .with_initial(Duration::from_nanos(initial))
                .with_multiplier(multiplier)
                .with_max(Duration::from_nanos(initial.saturating_add(extra)))
                .with_jitter(jitter)
        })
}

fn retry_number() -> impl Strategy<Value = u32> {
    prop_oneof![0u32..70, Just(u32::MAX), any::<u32>()]
}

/// The reference exponential base: `min(max, initial · multiplier^(n−1))` with `powf`.
fn reference_base(b: &BackoffConfig, retry: u32) -> f64 {
    let exact =
        duration_to_nanos(b.initial) as f64 * b.multiplier.powf(f64::from(retry.max(1) - 1));
    exact.min(duration_to_nanos(b.max) as f64)
}

proptest! {
    #![proptest_config(config())]

    /// Every delay lies in its jitter's bounds, the bounds follow the documented formula,
    /// and nothing exceeds `max`.
    #[test]
    fn delay_within_jitter_bounds_and_cap(
        b in backoff(),
        retry in retry_number(),
        previous in prop_oneof![Just(0u64), any::<u64>(), 0u64..100_000_000_000],
        seed in any::<u64>(),
    ) {
        let initial = duration_to_nanos(b.initial);
        let max = duration_to_nanos(b.max);
        let base = b.base_nanos(retry);
        // The base agrees with the reference within f64 rounding, and never exceeds max.
        let reference = reference_base(&b, retry);
        prop_assert!(base <= max);
        prop_assert!(
            (base as f64 - reference).abs() <= reference * 1e-9 + 1.0,
            "base {} reference {}", base, reference
        );
        let (lo, hi) = b.bounds_nanos(retry, previous);
        let expected = match b.jitter {
            Jitter::None => (base, base),
            Jitter::Full => (0, base),
            Jitter::Equal => (base / 2, base),
            Jitter::Decorrelated => (initial, previous.max(initial).saturating_mul(3).min(max)),
        };
        prop_assert_eq!((lo, hi), expected);
        let mut rng = Rng::new(seed);
        let d = b.delay_nanos(retry, previous, &mut rng);
        prop_assert!(lo <= d && d <= hi && hi <= max, "{} not in [{}, {}] (max {})", d, lo, hi, max);
        // Duration API agrees with the nanosecond API.
        let dd = b.delay(retry, Duration::from_nanos(previous), &mut Rng::new(seed));
        prop_assert_eq!(duration_to_nanos(dd), d);
        let draws = if b.jitter == Jitter::None { 0 } else { 1 };
        let mut expected_rng = Rng::new(seed);
        for _ in 0..draws {
            expected_rng.next_u64();
        }
        prop_assert_eq!(rng, expected_rng, "at most one draw");
    }

    /// The schedule is a pure function of the seed: a state replays bit for bit, and
    /// equals folding `BackoffConfig::delay` over retry numbers with one generator.
    #[test]
    fn schedule_is_deterministic_for_a_seed(
        b in backoff(),
        max_attempts in 1u32..40,
        seed in any::<u64>(),
    ) {
        let config = RetryConfig::default().with_max_attempts(max_attempts).with_backoff(b);
        let run = || {
            let mut state = RetryState::new(&config, seed, 0, None);
            let mut out = Vec::new();
            loop {
                match state.next_delay::<ManualClock>(0, None, None) {
                    RetryDecision::RetryAfter(d) => out.push(d),
                    RetryDecision::GiveUp(reason) => {
                        assert_eq!(reason, GiveUpReason::AttemptsExhausted);
                        break (out, state.rng_state());
                    }
                }
            }
        };
        let first = run();
        prop_assert_eq!(&first, &run());
        prop_assert_eq!(first.0.len() as u32, max_attempts - 1);
        let mut rng = Rng::new(seed);
        let mut previous = Duration::ZERO;
        for (i, d) in first.0.iter().enumerate() {
            let model = b.delay(i as u32 + 1, previous, &mut rng);
            prop_assert_eq!(*d, model);
            previous = model;
        }
    }
}

/// One step of a budget or retry scenario.
#[derive(Debug, Clone)]
enum BudgetOp {
    Requests(u32),
    Withdraw(u32),
    Advance(u64),
}

fn budget_op() -> impl Strategy<Value = BudgetOp> {
    prop_oneof![
        3 => (1u32..20).prop_map(BudgetOp::Requests),
        4 => (1u32..6).prop_map(BudgetOp::Withdraw),
        2 => prop_oneof![0u64..200, 0u64..3_000, 0u64..20_000].prop_map(BudgetOp::Advance),
    ]
}

fn budget_config() -> impl Strategy<Value = BudgetConfig> {
    (
        prop_oneof![Just(0.0f64), 0.0f64..1.0, 1.0f64..3.0, Just(1000.0)],
        prop_oneof![Just(0u32), 1u32..5, 5u32..50],
        prop_oneof![
            1_000u64..=5_000,
            Just(1_000),
            Just(10_000),
            1_000u64..=60_000
        ],
    )
        .prop_map(|(ratio, min_per_second, window_ms)| {
            BudgetConfig::default()
                .with_ratio(ratio)
                .with_min_per_second(if ratio == 0.0 {
                    min_per_second.max(1)
                } else {
                    min_per_second
                })
                .with_window(Duration::from_millis(window_ms))
        })
}

/// The sequential reference: every request and grant remembered with its bucket.
struct BudgetModel {
    config: BudgetConfig,
    bucket: u64,
    requests: Vec<u64>,
    grants: Vec<u64>,
}

impl BudgetModel {
    const BUCKETS: u64 = 10;

    fn new(config: BudgetConfig) -> Self {
        Self {
            config,
            bucket: duration_to_nanos(config.window) / Self::BUCKETS,
            requests: Vec::new(),
            grants: Vec::new(),
        }
    }

    fn epoch(&self, elapsed: u64) -> u64 {
        elapsed / self.bucket
    }

    fn in_window(events: &[u64], now: u64) -> u64 {
        events.iter().filter(|&&e| e + Self::BUCKETS > now).count() as u64
    }

    /// The bound of the retries in a window with `requests` requests.
    fn bound(&self, requests: u64) -> f64 {
        self.config.ratio * requests as f64
            + f64::from(self.config.min_per_second) * self.config.window.as_secs_f64()
    }

    fn withdraw(&mut self, now: u64) -> bool {
        let requests = Self::in_window(&self.requests, now);
        let retries = Self::in_window(&self.grants, now);
        let granted = ((retries + 1) as f64) <= self.bound(requests).floor();
        if granted {
            self.grants.push(now);
        }
        granted
    }

    fn available(&self, now: u64) -> u64 {
        let requests = Self::in_window(&self.requests, now);
        let retries = Self::in_window(&self.grants, now);
        (self.bound(requests).floor() as u64).saturating_sub(retries)
    }
}

proptest! {
    #![proptest_config(config())]

    /// The budget answers exactly as the sequential model; at every grant the window's
    /// retries are within `ratio·requests + min_per_second·seconds`; and over the run
    /// the grants are within `ratio·(all requests) + min_per_second·seconds·windows`.
    #[test]
    fn budget_never_exceeds_its_bound(
        config in budget_config(),
        ops in prop::collection::vec(budget_op(), 1..120),
    ) {
        let clock = ManualClock::new();
        let origin = 1u64;
        let budget = RetryBudget::with_clock(config, clock.clone()).unwrap();
        let mut model = BudgetModel::new(config);
        let mut total_requests = 0u64;
        for op in &ops {
            let now = model.epoch(clock.now() - origin);
            match *op {
                BudgetOp::Requests(n) => {
                    for _ in 0..n {
                        budget.record_request();
                        model.requests.push(now);
                    }
                    total_requests += u64::from(n);
                }
                BudgetOp::Withdraw(n) => {
                    for _ in 0..n {
                        let got = budget.try_withdraw();
                        let want = model.withdraw(now);
                        prop_assert_eq!(got, want, "withdraw at {} ns, bucket {}", clock.now(), now);
                        if got {
                            let requests = BudgetModel::in_window(&model.requests, now);
                            let retries = BudgetModel::in_window(&model.grants, now);
                            prop_assert!(retries as f64 <= model.bound(requests) + 1e-9);
                        }
                    }
                }
                BudgetOp::Advance(ms) => clock.advance(Duration::from_millis(ms)),
            }
            let now = model.epoch(clock.now() - origin);
            let snapshot = budget.snapshot();
            prop_assert_eq!(snapshot.requests, BudgetModel::in_window(&model.requests, now));
            prop_assert_eq!(snapshot.retries, BudgetModel::in_window(&model.grants, now));
            prop_assert_eq!(snapshot.available, model.available(now), "at {} ns", clock.now());
        }
        // Global bound: cut the grants into disjoint windows greedily from the last one.
        if let (Some(&first), Some(&last)) = (model.grants.first(), model.grants.last()) {
            let windows = (last - first) / BudgetModel::BUCKETS + 1;
            let bound = config.ratio * total_requests as f64
                + f64::from(config.min_per_second) * config.window.as_secs_f64() * windows as f64;
            prop_assert!(model.grants.len() as f64 <= bound + 1e-6,
                "{} grants > bound {}", model.grants.len(), bound);
        }
    }
}

/// One failed attempt reported to a retry state: time passing, and a rejection's hint.
#[derive(Debug, Clone)]
struct Failure {
    advance_ms: u64,
    retry_after_ms: Option<u64>,
}

fn failure() -> impl Strategy<Value = Failure> {
    (
        prop_oneof![Just(0u64), 0u64..500, 0u64..20_000],
        prop::option::of(prop_oneof![0u64..300, 0u64..30_000]),
    )
        .prop_map(|(advance_ms, retry_after_ms)| Failure {
            advance_ms,
            retry_after_ms,
        })
}

fn retry_config() -> impl Strategy<Value = RetryConfig> {
    (
        1u32..12,
        (
            1u64..500,
            prop_oneof![Just(1.0f64), 1.0f64..4.0],
            0u64..20_000,
            jitter(),
        ),
        prop::option::of(1u64..60_000),
    )
        .prop_map(
            |(max_attempts, (initial, multiplier, extra, jitter), elapsed)| {
                RetryConfig::default()
                    .with_max_attempts(max_attempts)
                    .with_backoff(
                        BackoffConfig::default()
                            .with_initial(Duration::from_millis(initial))
                            .with_multiplier(multiplier)
                            .with_max(Duration::from_millis(initial + extra))
                            .with_jitter(jitter),
                    )
                    .with_max_elapsed(elapsed.map(Duration::from_millis))
                    .with_budget(None)
            },
        )
}

/// The sequential reference of `RetryState::next_delay`, written from the documented rules.
struct StateModel {
    config: RetryConfig,
    rng: Rng,
    attempts: u32,
    previous: Duration,
    started: u64,
    deadline: Option<u64>,
    gave_up: Option<GiveUpReason>,
}

impl StateModel {
    fn next(
        &mut self,
        now: u64,
        retry_after: Option<Duration>,
        budget_grants: bool,
    ) -> RetryDecision {
        if let Some(r) = self.gave_up {
            return RetryDecision::GiveUp(r);
        }
        let reason = if self.attempts >= self.config.max_attempts {
            Some(GiveUpReason::AttemptsExhausted)
        } else {
            let mut rng = self.rng.clone();
            let backoff = self
                .config
                .backoff
                .delay(self.attempts, self.previous, &mut rng);
            let delay = backoff.max(retry_after.unwrap_or_default());
            let start = now + duration_to_nanos(delay);
            if self.deadline.is_some_and(|d| start >= d) {
                Some(GiveUpReason::DeadlineExceeded)
            } else if self
                .config
                .max_elapsed
                .is_some_and(|m| start - self.started > duration_to_nanos(m))
            {
                Some(GiveUpReason::ElapsedExceeded)
            } else if !budget_grants {
                Some(GiveUpReason::BudgetExhausted)
            } else {
                self.rng = rng;
                self.previous = backoff;
                self.attempts += 1;
                return RetryDecision::RetryAfter(delay);
            }
        };
        let reason = reason.unwrap();
        self.gave_up = Some(reason);
        RetryDecision::GiveUp(reason)
    }
}

proptest! {
    #![proptest_config(config())]

    /// `next_delay` follows the documented rules exactly; no retry starts at or after the
    /// deadline or later than `max_elapsed`; `retry_after` is a minimum; at most
    /// `max_attempts − 1` retries; with a budget, one withdrawal per retry and none for a
    /// give-up.
    #[test]
    fn deadline_elapsed_and_retry_after_rules(
        config in retry_config(),
        seed in any::<u64>(),
        started_ms in 0u64..1_000,
        deadline_ms in prop::option::of(0u64..60_000),
        failures in prop::collection::vec(failure(), 1..16),
        budget_floor in prop::option::of(1u32..6),
    ) {
        let clock = ManualClock::starting_at(1 + started_ms * 1_000_000);
        let started = clock.now();
        let deadline = deadline_ms.map(|d| started + d * 1_000_000);
        let budget = budget_floor.map(|n| {
            let config = BudgetConfig::default().with_ratio(0.0).with_min_per_second(n).with_window(Duration::from_secs(60));
            RetryBudget::with_clock(config, clock.clone()).unwrap()
        });
        let mut state = RetryState::new(&config, seed, started, deadline);
        let mut model = StateModel {
            config, rng: Rng::new(seed), attempts: 1, previous: Duration::ZERO,
            started, deadline, gave_up: None,
        };
        let mut retries = 0u32;
        for f in &failures {
            clock.advance(Duration::from_millis(f.advance_ms));
            let now = clock.now();
            let retry_after = f.retry_after_ms.map(Duration::from_millis);
            let before = budget.as_ref().map(|b| b.snapshot());
            let budget_grants = before.is_none_or(|s| s.available > 0);
            let got = state.next_delay(now, retry_after, budget.as_ref());
            if let (Some(b), Some(before)) = (&budget, before) {
                let withdrawn = b.snapshot().retries - before.retries;
                prop_assert_eq!(withdrawn, u64::from(got.delay().is_some()), "one withdrawal per retry");
            }
            prop_assert_eq!(got, model.next(now, retry_after, budget_grants), "at {} ns", now);
            if let RetryDecision::RetryAfter(d) = got {
                retries += 1;
                let start = now + duration_to_nanos(d);
                prop_assert!(d >= retry_after.unwrap_or_default());
                prop_assert!(deadline.is_none_or(|dl| start < dl));
                prop_assert!(config.max_elapsed.is_none_or(|m| start - started <= duration_to_nanos(m)));
                // The caller sleeps before the next attempt fails.
                clock.advance(d);
            }
            prop_assert_eq!(state.attempts(), retries + 1);
            prop_assert!(retries < config.max_attempts);
        }
    }
}

proptest! {
    #![proptest_config(config())]

    /// Decorrelated jitter is the article's `min(cap, uniform(base, prev · 3))` from the
    /// first retry: with no previous delay the first retry is uniform in
    /// `[initial, 3·initial]` (capped), and a previous delay below `initial` reads as
    /// `initial`. 400 seeds spread over the whole range, not a single value.
    #[test]
    fn decorrelated_jitter_spreads_the_first_retry(
        initial in 1_000u64..10_000_000_000,
        cap_factor in prop_oneof![Just(3.0f64), 1.0f64..3.0, 3.0f64..10.0],
        below_initial in 0u64..1_000,
    ) {
        let max = (initial as f64 * cap_factor) as u64;
        let b = BackoffConfig::default().with_initial(Duration::from_nanos(initial)).with_multiplier(2.0).with_max(Duration::from_nanos(max)).with_jitter(Jitter::Decorrelated);
        let upper = (3 * initial).min(max);
        prop_assert_eq!(b.bounds_nanos(1, 0), (initial, upper));
        let previous = initial * below_initial / 1_000;
        prop_assert_eq!(b.bounds_nanos(1, previous), (initial, upper));
        let draws: Vec<u64> = (0..400u64)
            .map(|seed| b.delay_nanos(1, previous, &mut Rng::new(seed)))
            .collect();
        prop_assert!(draws.iter().all(|&d| initial <= d && d <= upper));
        // Each tenth of the uncapped draw [initial, 3·initial] gets about 40 draws, so
        // both ends are reached (each missed with probability 0.9^400 < 1e-18).
        let tenth = 2 * initial / 10;
        prop_assert!(draws.iter().any(|&d| d <= initial + tenth), "low end reached");
        prop_assert!(draws.iter().any(|&d| d >= upper.min(3 * initial - tenth)), "high end reached");
        // The state machine follows the same rule for its first retry.
        let config = RetryConfig::default().with_backoff(b);
        for seed in 0..50u64 {
            let mut state = RetryState::new(&config, seed, 0, None);
            let d = state.next_delay::<ManualClock>(0, None, None).delay().unwrap();
            prop_assert_eq!(duration_to_nanos(d), draws[seed as usize]);
        }
    }
}

/// The one retry step through its three entry points: `Policy::call_with`, the `retry`
/// helper and the C `bw_policy_retry_begin`/`bw_policy_retry_next`, on three policies
/// built from the same policy file, each on its own manual clock starting at the same
/// time, with the same seed and the same outcome script.
#[cfg(feature = "capi")]
mod three_entry_points {
    use super::*;
    use breakwater::clock::AnyClock;
    use breakwater::engine::Engine;
    use breakwater::ffi::clock::*;
    use breakwater::ffi::engine::*;
    use breakwater::ffi::policy::*;
    use breakwater::ffi::policy_retry::*;
    use breakwater::ffi::retry::*;
    use breakwater::ffi::status::bw_status;
    use breakwater::policy::{CallError, CallOptions, Policy};
    use breakwater::retry::Retry;
    use breakwater::RejectReason;
    use std::ffi::CString;
    use std::ptr::null_mut;

    const START: u64 = 1_000_000_000;
    const TIMEOUT_MS: u64 = 50;

    /// How one attempt ends, and how long it took.
    #[derive(Debug, Clone, Copy)]
    enum Step {
        /// A failure after `ms` (below the timeout).
        Fail(u64),
        /// A failure after `ms` (above the timeout): a timeout.
        Slow(u64),
        /// An error the caller does not retry.
        Fatal,
        /// Success.
        Ok,
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            6 => (0u64..=TIMEOUT_MS).prop_map(Step::Fail),
            2 => (TIMEOUT_MS + 1..200).prop_map(Step::Slow),
            1 => Just(Step::Fatal),
            1 => Just(Step::Ok),
        ]
    }

    #[derive(Debug, Clone)]
    struct Case {
        max_attempts: u32,
        initial_ms: u64,
        multiplier: f64,
        extra_ms: u64,
        jitter: Jitter,
        max_elapsed_ms: Option<u64>,
        budget_floor: Option<u32>,
        retry_timeouts: bool,
        deadline_ms: Option<u64>,
        seed: u64,
        script: Vec<Step>,
    }

    fn case() -> impl Strategy<Value = Case> {
        (
            (
                1u32..8,
                1u64..200,
                prop_oneof![Just(1.0f64), 1.0f64..3.0],
                0u64..2_000,
                jitter(),
            ),
            (
                prop::option::of(1u64..3_000),
                prop::option::of(1u32..4),
                any::<bool>(),
            ),
            (
                prop::option::of(0u64..3_000),
                any::<u64>(),
                prop::collection::vec(step(), 1..10),
            ),
        )
            .prop_map(|(a, b, c)| Case {
                max_attempts: a.0,
                initial_ms: a.1,
                multiplier: a.2,
                extra_ms: a.3,
                jitter: a.4,
                max_elapsed_ms: b.0,
                budget_floor: b.1,
                retry_timeouts: b.2,
                deadline_ms: c.0,
                seed: c.1,
                script: c.2,
            })
    }

    impl Case {
        fn toml(&self) -> String {
            let mut t = format!(
                "[policies.p]\ntimeout = \"{TIMEOUT_MS}ms\"\n[policies.p.retry]\n\
                 max_attempts = {}\nretry_on = [\"failure\"{}]\n\
                 backoff = {{ initial = \"{}ms\", multiplier = {:?}, max = \"{}ms\", jitter = \"{}\" }}\n",
                self.max_attempts,
                if self.retry_timeouts { ", \"timeout\"" } else { "" },
                self.initial_ms,
                self.multiplier,
                self.initial_ms + self.extra_ms,
                self.jitter,
            );
            if let Some(ms) = self.max_elapsed_ms {
                t += &format!("max_elapsed = \"{ms}ms\"\n");
            }
            if let Some(n) = self.budget_floor {
                t +=
                    &format!("budget = {{ ratio = 0.0, min_per_second = {n}, window = \"1s\" }}\n");
            }
            t
        }

        fn deadline(&self) -> Option<u64> {
            self.deadline_ms.map(|ms| START + ms * 1_000_000)
        }

        /// The script's step for attempt `n` (1-based); past its end, success.
        fn step(&self, n: u32) -> Step {
            self.script.get(n as usize - 1).copied().unwrap_or(Step::Ok)
        }

        /// Whether the policy (and so the helper's predicate) retries `step`.
        fn retryable(&self, step: Step) -> bool {
            match step {
                Step::Fail(_) => true,
                Step::Slow(_) => self.retry_timeouts,
                Step::Fatal | Step::Ok => false,
            }
        }
    }

    fn took(step: Step) -> Duration {
        match step {
            Step::Fail(ms) | Step::Slow(ms) => Duration::from_millis(ms),
            Step::Fatal | Step::Ok => Duration::ZERO,
        }
    }

    /// What one entry point did: each decision (delays and the final give-up), the
    /// attempts made, and the counters of granted and refused retries. The policy's
    /// budget snapshot `(requests, retries)` is compared between the Rust entry points
    /// only (the C ABI does not expose a policy's budget).
    #[derive(Debug)]
    struct Run {
        decisions: Vec<RetryDecision>,
        attempts: u32,
        budget: Option<(u64, u64)>,
        retries: u64,
        budget_refusals: u64,
    }

    impl PartialEq for Run {
        fn eq(&self, other: &Run) -> bool {
            let same_budget =
                self.budget.is_none() || other.budget.is_none() || self.budget == other.budget;
            same_budget
                && (
                    &self.decisions,
                    self.attempts,
                    self.retries,
                    self.budget_refusals,
                ) == (
                    &other.decisions,
                    other.attempts,
                    other.retries,
                    other.budget_refusals,
                )
        }
    }

    fn counters(policy: &Policy) -> (Option<(u64, u64)>, u64, u64) {
        let m = policy.metrics().snapshot();
        let budget = policy.retry_budget().map(|b| {
            let s = b.snapshot();
            (s.requests, s.retries)
        });
        (
            budget,
            m.retries,
            m.rejected_by(RejectReason::RetryBudgetExhausted),
        )
    }

    fn rust_policy(case: &Case) -> (ManualClock, std::sync::Arc<Policy>) {
        let clock = ManualClock::starting_at(START);
        let engine = Engine::with_clock(AnyClock::Manual(clock.clone()));
        engine.reload_str(&case.toml()).unwrap();
        (clock, engine.policy("p").unwrap())
    }

    fn through_call(case: &Case) -> Run {
        let (clock, policy) = rust_policy(case);
        let mut decisions = Vec::new();
        let mut observe = |d: RetryDecision| decisions.push(d);
        let mut sleep = |d: Duration| clock.advance(d);
        let mut options = CallOptions::new()
            .with_seed(case.seed)
            .with_sleep(&mut sleep)
            .with_observer(&mut observe);
        if let Some(deadline) = case.deadline() {
            options = options.with_deadline_nanos(deadline);
        }
        let mut attempts = 0;
        let result = policy.call_with(
            options,
            |n| {
                attempts = n;
                let step = case.step(n);
                clock.advance(took(step));
                match step {
                    Step::Ok => Ok(()),
                    other => Err(other),
                }
            },
            |step| !matches!(step, Step::Fatal),
        );
        if let Err(CallError::Rejected(r)) = result {
            assert_eq!(r.reason, RejectReason::RetryBudgetExhausted);
            assert_eq!(
                decisions.last(),
                Some(&RetryDecision::GiveUp(GiveUpReason::BudgetExhausted))
            );
        }
        let (budget, retries, budget_refusals) = counters(&policy);
        Run {
            decisions,
            attempts,
            budget,
            retries,
            budget_refusals,
        }
    }

    fn through_helper(case: &Case) -> Run {
        let (clock, policy) = rust_policy(case);
        let retry = policy.config().retry.clone().unwrap();
        let any = AnyClock::Manual(clock.clone());
        let mut decisions = Vec::new();
        let mut attempts = 0;
        let mut runner = Retry::with_clock(&retry.retry, any.clone())
            .seed(case.seed)
            .started_at(any.now());
        if let Some(budget) = policy.retry_budget() {
            runner = runner.budget(budget);
        }
        if let Some(deadline) = case.deadline() {
            runner = runner.deadline(deadline);
        }
        let result = runner
            .when(|step: &Step| case.retryable(*step))
            .sleep_with(|d| {
                decisions.push(RetryDecision::RetryAfter(d));
                clock.advance(d);
            })
            .run(|n| {
                attempts = n;
                let step = case.step(n);
                clock.advance(took(step));
                match step {
                    Step::Ok => Ok(()),
                    other => Err(other),
                }
            });
        if let Err(e) = result {
            decisions.push(RetryDecision::GiveUp(e.reason()));
        }
        // The helper counts nothing in the policy: only the budget is shared.
        let (budget, _, _) = counters(&policy);
        let granted = decisions.iter().filter(|d| d.delay().is_some()).count() as u64;
        let refused = u64::from(
            decisions.last() == Some(&RetryDecision::GiveUp(GiveUpReason::BudgetExhausted)),
        );
        Run {
            decisions,
            attempts,
            budget,
            retries: granted,
            budget_refusals: refused,
        }
    }

    fn through_c(case: &Case) -> Run {
        let toml = CString::new(case.toml()).unwrap();
        let name = CString::new("p").unwrap();
        // SAFETY: every pointer passed is either a fresh out-pointer on this stack or a
        // live handle created above and freed once at the end.
        unsafe {
            let mut clock = null_mut();
            assert_eq!(bw_clock_new_manual(START, &mut clock), bw_status::BW_OK);
            let mut engine = null_mut();
            assert_eq!(
                bw_engine_from_toml(toml.as_ptr(), clock, &mut engine),
                bw_status::BW_OK
            );
            let mut policy = null_mut();
            assert_eq!(
                bw_engine_policy(engine, name.as_ptr(), &mut policy),
                bw_status::BW_OK
            );
            let mut state = null_mut();
            let status =
                bw_policy_retry_begin(policy, case.seed, case.deadline().unwrap_or(0), &mut state);
            assert_eq!(status, bw_status::BW_OK);
            let mut decisions = Vec::new();
            let mut attempts = 1;
            loop {
                let step = case.step(attempts);
                bw_clock_advance(clock, duration_to_nanos(took(step)));
                let what = match step {
                    Step::Ok => break,
                    Step::Fail(_) => BW_RETRY_ON_FAILURE,
                    Step::Slow(_) => BW_RETRY_ON_TIMEOUT,
                    // A class this policy never lists.
                    Step::Fatal => BW_RETRY_ON_INJECTED,
                };
                let (mut delay, mut reason) = (0u64, 0i32);
                match bw_policy_retry_next(
                    policy,
                    state,
                    what,
                    BW_RETRY_AFTER_NONE,
                    &mut delay,
                    &mut reason,
                ) {
                    bw_status::BW_OK => {
                        decisions.push(RetryDecision::RetryAfter(Duration::from_nanos(delay)));
                        bw_clock_advance(clock, delay);
                        attempts += 1;
                    }
                    bw_status::BW_RETRY_GIVE_UP => {
                        let reason = GiveUpReason::from_code(i64::from(reason)).unwrap();
                        decisions.push(RetryDecision::GiveUp(reason));
                        break;
                    }
                    other => panic!("bw_policy_retry_next: {other:?}"),
                }
            }
            assert_eq!(bw_retry_state_attempts(state), attempts);
            let mut stats = std::mem::MaybeUninit::<bw_policy_stats>::uninit();
            assert_eq!(
                bw_policy_get_stats(policy, stats.as_mut_ptr()),
                bw_status::BW_OK
            );
            let stats = stats.assume_init();
            bw_retry_state_free(state);
            bw_policy_free(policy);
            bw_engine_free(engine);
            bw_clock_free(clock);
            Run {
                decisions,
                attempts,
                budget: None,
                retries: stats.retries,
                budget_refusals: stats.rejected_retry_budget_exhausted,
            }
        }
    }

    proptest! {
        #![proptest_config(config())]

        /// Same policy file, same clock start, same seed, same outcomes: the same delays,
        /// the same give-up reason, the same budget use and the same counters, whichever
        /// entry point drives the step.
        #[test]
        fn the_same_decisions_through_every_entry_point(case in case()) {
            let call = through_call(&case);
            let c = through_c(&case);
            prop_assert_eq!(&call, &c, "Policy::call vs bw_policy_retry_next");
            prop_assert_eq!(&call, &through_helper(&case), "Policy::call vs Retry");
            // The run makes sense on its own: one retry per delay, at most max_attempts.
            let granted = call.decisions.iter().filter(|d| d.delay().is_some()).count();
            prop_assert_eq!(granted as u64, call.retries);
            prop_assert_eq!(call.attempts as usize, granted + 1);
            prop_assert!(call.attempts <= case.max_attempts);
        }
    }
}
