//! The circuit breaker against a plain sequential model of docs/design.md §3.
//!
//! Random sequences of acquire / complete (any outcome, measured or given duration) /
//! drop / forged raw completions / clock advances / manual transitions run on the real
//! breaker and on [`Model`]; after every step both must agree on the decision (permit
//! parts, or rejection and `retry_after`) and on the whole snapshot. One property per
//! window kind. Cases: `PROPTEST_CASES` (default 2000).
#![cfg(not(loom))]

use breakwater::breaker::{
    BreakerConfig, BreakerPermit, BreakerSnapshot, BreakerState, CircuitBreaker, RawBreakerPermit,
    WindowConfig,
};
use breakwater::clock::{Clock, ManualClock};
use breakwater::rng::{mix64, unit_f64};
use breakwater::{Outcome, RejectReason};
use proptest::prelude::*;
use std::time::Duration;

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000)
}

const MS: u64 = 1_000_000;

/// A permit as the model sees it: (generation, started_at, probe).
type Parts = (u64, u64, bool);

/// The sequential reference model: the rules written out plainly, one step at a time.
#[derive(Debug)]
struct Model {
    // configuration, in nanoseconds
    count_size: Option<usize>,
    bucket: u64,
    buckets: u64,
    minimum: u64,
    failure_threshold: f64,
    slow_threshold: Option<f64>,
    slow_nanos: u64,
    consecutive_limit: u64,
    open: u64,
    multiplier: f64,
    max_open: u64,
    jitter: f64,
    seed: u64,
    permits: u64,
    max_wait: u64,
    // state
    state: BreakerState,
    generation: u64,
    level: u64,
    /// Open: end of the open period; HalfOpen: trial deadline; otherwise transition time.
    instant: u64,
    /// (epoch, failed, slow) of the current generation, oldest first.
    window: Vec<(u64, bool, bool)>,
    consecutive: u64,
    admitted: u64,
    completed: u64,
    probe_failures: u64,
    probe_slow: u64,
    stale: u64,
    transitions: [u64; 5],
}

fn nanos(d: Duration) -> u64 {
    d.as_nanos() as u64
}

fn rate(x: u64, of: u64) -> f64 {
    x as f64 * 100.0 / of as f64
}

/// `base^exp` by repeated squaring, as documented for the open-duration growth.
fn power(base: f64, mut exp: u64) -> f64 {
    let (mut result, mut factor) = (1.0, base);
    while exp > 0 {
        if exp & 1 == 1 {
            result *= factor;
        }
        factor *= factor;
        exp >>= 1;
    }
    result
}

impl Model {
    fn new(c: &BreakerConfig) -> Self {
        let (count_size, bucket, buckets) = match c.window {
            WindowConfig::Count { size } => (Some(size as usize), 1, 1),
            WindowConfig::Time { duration, buckets } => (
                None,
                nanos(duration) / u64::from(buckets),
                u64::from(buckets),
            ),
        };
        Model {
            count_size,
            bucket,
            buckets,
            minimum: u64::from(c.minimum_calls),
            failure_threshold: c.failure_rate_threshold,
            slow_threshold: c.slow_call_rate_threshold,
            slow_nanos: nanos(c.slow_call_duration),
            consecutive_limit: u64::from(c.consecutive_failures.unwrap_or(0)),
            open: nanos(c.open_duration),
            multiplier: c.open_backoff_multiplier,
            max_open: nanos(c.max_open_duration),
            jitter: c.open_jitter,
            seed: c.jitter_seed,
            permits: u64::from(c.half_open_permits),
            max_wait: nanos(c.half_open_max_wait),
            state: BreakerState::Closed,
            generation: 0,
            level: 0,
            instant: 0,
            window: Vec::new(),
            consecutive: 0,
            admitted: 0,
            completed: 0,
            probe_failures: 0,
            probe_slow: 0,
            stale: 0,
            transitions: [0; 5],
        }
    }

    fn open_duration(&self, level: u64, generation: u64) -> u64 {
        let mut d = self.open as f64;
        if self.multiplier > 1.0 {
            d = (d * power(self.multiplier, level)).min(self.max_open as f64);
        }
        if self.jitter > 0.0 {
            // the generation-th draw of Rng::new(seed)
            let draw = mix64(
                self.seed
                    .wrapping_add((generation + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)),
            );
            d *= 1.0 - self.jitter * unit_f64(draw);
        }
        d as u64
    }

    fn go(&mut self, to: BreakerState, level: u64, now: u64) {
        self.generation += 1;
        self.state = to;
        self.level = level.min(0xFFFF);
        let instant = match to {
            BreakerState::Open => {
                now.saturating_add(self.open_duration(self.level, self.generation))
            }
            BreakerState::HalfOpen => now + self.max_wait,
            _ => now,
        };
        self.instant = instant & !0xFF; // kept to 256 ns, rounded down
        self.window.clear();
        self.consecutive = 0;
        self.admitted = 0;
        self.completed = 0;
        self.probe_failures = 0;
        self.probe_slow = 0;
        self.transitions[to as usize] += 1;
    }

    fn counts(&self, now: u64) -> (u64, u64, u64) {
        let epoch = now / self.bucket;
        let live = self
            .window
            .iter()
            .filter(|(e, _, _)| self.count_size.is_some() || epoch - e < self.buckets);
        let (mut calls, mut failures, mut slow) = (0, 0, 0);
        for &(_, f, s) in live {
            calls += 1;
            failures += u64::from(f);
            slow += u64::from(s);
        }
        (calls, failures, slow)
    }

    fn trial_passed(&self) -> bool {
        self.completed > 0
            && rate(self.probe_failures, self.completed) < self.failure_threshold
            && self
                .slow_threshold
                .is_none_or(|t| rate(self.probe_slow, self.completed) < t)
    }

    fn acquire(&mut self, now: u64) -> Result<Parts, Option<u64>> {
        let started = if self.slow_threshold.is_some() {
            now
        } else {
            0
        };
        loop {
            match self.state {
                BreakerState::Closed | BreakerState::Disabled => {
                    return Ok((self.generation, started, false))
                }
                BreakerState::ForcedOpen => return Err(None),
                BreakerState::Open => {
                    if now < self.instant {
                        return Err(Some(self.instant - now));
                    }
                    self.go(BreakerState::HalfOpen, self.level, now);
                }
                BreakerState::HalfOpen => {
                    if now >= self.instant {
                        if self.trial_passed() {
                            self.go(BreakerState::Closed, 0, now);
                        } else {
                            self.go(BreakerState::Open, self.level + 1, now);
                        }
                    } else if self.admitted < self.permits {
                        self.admitted += 1;
                        return Ok((self.generation, started, true));
                    } else {
                        return Err(Some(self.instant - now));
                    }
                }
            }
        }
    }

    fn complete(&mut self, permit: Parts, outcome: Outcome, duration: Option<u64>, now: u64) {
        let (generation, started, probe) = permit;
        if generation != self.generation {
            self.stale += 1;
            return;
        }
        let failed = outcome.is_failure();
        let slow = self.slow_threshold.is_some()
            && match duration {
                Some(d) => d > self.slow_nanos,
                None => started != 0 && now.saturating_sub(started) > self.slow_nanos,
            };
        match self.state {
            BreakerState::Closed | BreakerState::Disabled => {
                if outcome == Outcome::Ignored {
                    return;
                }
                let held_before = self.window.len();
                self.window.push((now / self.bucket, failed, slow));
                if let Some(size) = self.count_size {
                    if self.window.len() > size {
                        self.window.remove(0);
                    }
                }
                if self.state == BreakerState::Disabled {
                    return;
                }
                let mut run = false;
                if self.consecutive_limit > 0 {
                    if failed {
                        self.consecutive += 1;
                        run = self.consecutive >= self.consecutive_limit;
                    } else {
                        self.consecutive = 0;
                    }
                }
                // The outcome that brings the window to `minimum_calls` checks the
                // rates whatever it was. A time window checks after any outcome while
                // its bucket holds at most `minimum_calls` calls (a superset of that).
                let reached_minimum = match self.count_size {
                    Some(_) => held_before as u64 + 1 == self.minimum,
                    None => {
                        let epoch = now / self.bucket;
                        let in_bucket = self.window.iter().filter(|(e, _, _)| *e == epoch);
                        in_bucket.count() as u64 <= self.minimum
                    }
                };
                if failed || slow || reached_minimum {
                    let (calls, failures, slows) = self.counts(now);
                    let rates = calls >= self.minimum
                        && (rate(failures, calls) >= self.failure_threshold
                            || self.slow_threshold.is_some_and(|t| rate(slows, calls) >= t));
                    if run || rates {
                        self.go(BreakerState::Open, 0, now);
                    }
                }
            }
            BreakerState::HalfOpen if probe => {
                if self.admitted == self.completed {
                    self.stale += 1; // nothing in flight: a forged or repeated completion
                } else if outcome == Outcome::Ignored {
                    self.admitted -= 1;
                } else {
                    self.completed += 1;
                    self.probe_failures += u64::from(failed);
                    self.probe_slow += u64::from(slow);
                    if self.completed == self.permits {
                        if self.trial_passed() {
                            self.go(BreakerState::Closed, 0, now);
                        } else {
                            self.go(BreakerState::Open, self.level + 1, now);
                        }
                    }
                }
            }
            _ => self.stale += 1,
        }
    }

    fn check(&self, s: &BreakerSnapshot, now: u64) -> Result<(), TestCaseError> {
        prop_assert_eq!(s.state, self.state, "state at {} ns", now);
        prop_assert_eq!(s.generation, self.generation);
        prop_assert_eq!(u64::from(s.open_level), self.level);
        let (calls, failures, slow) =
            if matches!(self.state, BreakerState::Closed | BreakerState::Disabled) {
                self.counts(now)
            } else {
                (0, 0, 0)
            };
        prop_assert_eq!(
            (s.calls, s.failures, s.slow_calls),
            (calls, failures, slow),
            "window at {} ns",
            now
        );
        prop_assert_eq!(s.consecutive_failures, self.consecutive);
        if self.state == BreakerState::HalfOpen {
            prop_assert_eq!(
                u64::from(s.half_open_in_flight),
                self.admitted - self.completed
            );
            prop_assert_eq!(u64::from(s.half_open_completed), self.completed);
            prop_assert_eq!(u64::from(s.half_open_failures), self.probe_failures);
        }
        let until = matches!(self.state, BreakerState::Open | BreakerState::HalfOpen)
            .then_some(self.instant);
        prop_assert_eq!(s.open_until_nanos, until);
        let t = s.transitions;
        prop_assert_eq!(
            [
                t.to_closed,
                t.to_open,
                t.to_half_open,
                t.to_forced_open,
                t.to_disabled
            ],
            self.transitions
        );
        prop_assert_eq!(s.stale_outcomes, self.stale);
        Ok(())
    }
}

#[derive(Debug, Clone)]
enum Op {
    Acquire,
    /// Complete the `which`-th outstanding permit (modulo their number).
    Complete {
        which: usize,
        outcome: Outcome,
        duration_ms: Option<u64>,
    },
    /// Drop the `which`-th outstanding permit (records Ignored).
    Drop {
        which: usize,
    },
    /// Complete a permit the breaker never issued.
    Forged {
        generation_delta: i8,
        probe: bool,
        outcome: Outcome,
    },
    Advance {
        nanos: u64,
    },
    /// Move the clock to the end of the open period / trial deadline, plus `delta` ns.
    ToInstant {
        delta: i8,
    },
    ForceOpen,
    Disable,
    Reset,
}

fn outcome() -> impl Strategy<Value = Outcome> {
    prop_oneof![
        4 => Just(Outcome::Success),
        3 => Just(Outcome::Failure),
        1 => Just(Outcome::Timeout),
        1 => Just(Outcome::Ignored),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        30 => Just(Op::Acquire),
        30 => (any::<usize>(), outcome(), proptest::option::of(0u64..60))
            .prop_map(|(which, outcome, duration_ms)| Op::Complete { which, outcome, duration_ms }),
        4 => any::<usize>().prop_map(|which| Op::Drop { which }),
        2 => (-2i8..=2, any::<bool>(), outcome())
            .prop_map(|(generation_delta, probe, outcome)| Op::Forged { generation_delta, probe, outcome }),
        12 => prop_oneof![
            3 => (0u64..120).prop_map(|ms| ms * MS),
            1 => 0u64..2_000,
        ]
        .prop_map(|nanos| Op::Advance { nanos }),
        6 => (-1i8..=1).prop_map(|delta| Op::ToInstant { delta }),
        1 => Just(Op::ForceOpen),
        1 => Just(Op::Disable),
        2 => Just(Op::Reset),
    ]
}

fn common(window: WindowConfig, max_minimum: u32) -> impl Strategy<Value = BreakerConfig> {
    (
        1..=max_minimum,
        prop_oneof![Just(50.0), Just(100.0), Just(25.0), 1.0f64..=100.0],
        proptest::option::of((1u64..40, prop_oneof![Just(50.0), 1.0f64..=100.0])),
        proptest::option::of(1u32..5),
        1u64..100,
        prop_oneof![Just(1.0), Just(2.0), 1.0f64..3.0],
        1u64..5,
        prop_oneof![Just(0.0), Just(1.0), 0.0f64..=1.0],
        1u32..4,
        1u64..200,
        any::<u64>(),
    )
        .prop_map(
            move |(
                minimum,
                failure,
                slow,
                consecutive,
                open,
                mult,
                cap,
                jitter,
                permits,
                wait,
                seed,
            )| {
                let mut c = BreakerConfig::default()
                    .with_window(window)
                    .with_minimum_calls(minimum)
                    .with_failure_rate_threshold(failure)
                    .with_open_duration(Duration::from_nanos(open * MS))
                    .with_open_backoff(mult, Duration::from_nanos(open * MS * cap))
                    .with_open_jitter(jitter)
                    .with_jitter_seed(seed)
                    .with_half_open_permits(permits)
                    .with_half_open_max_wait(Duration::from_nanos(wait * MS));
                if let Some((ms, threshold)) = slow {
                    c = c.with_slow_calls(Duration::from_nanos(ms * MS), threshold);
                }
                c.consecutive_failures = consecutive;
                c
            },
        )
}

fn count_config() -> impl Strategy<Value = BreakerConfig> {
    (1u32..=12).prop_flat_map(|size| common(WindowConfig::Count { size }, size))
}

fn time_config() -> impl Strategy<Value = BreakerConfig> {
    (10u64..=400, 1u32..=16).prop_flat_map(|(ms, buckets)| {
        common(
            WindowConfig::Time {
                duration: Duration::from_nanos(ms * MS),
                buckets,
            },
            8,
        )
    })
}

fn run(config: BreakerConfig, ops: Vec<Op>) -> Result<(), TestCaseError> {
    prop_assert!(config.validate().is_ok(), "{:?}", config.validate());
    let clock = ManualClock::new();
    let breaker = CircuitBreaker::with_clock(config.clone(), clock.clone()).unwrap();
    let mut model = Model::new(&config);
    let mut outstanding: Vec<(BreakerPermit<'_, ManualClock>, Parts)> = Vec::new();
    for op in ops {
        let now = clock.now();
        match op {
            Op::Acquire => match (breaker.try_acquire(), model.acquire(now)) {
                (Ok(permit), Ok(parts)) => {
                    prop_assert_eq!(permit.raw().to_parts(), parts, "permit at {} ns", now);
                    outstanding.push((permit, parts));
                }
                (Err(rejection), Err(retry_after)) => {
                    prop_assert_eq!(rejection.reason, RejectReason::CircuitOpen);
                    prop_assert_eq!(rejection.retry_after, retry_after.map(Duration::from_nanos));
                }
                (real, model) => {
                    prop_assert!(false, "at {} ns: real {:?}, model {:?}", now, real, model)
                }
            },
            Op::Complete {
                which,
                outcome,
                duration_ms,
            } if !outstanding.is_empty() => {
                let (permit, parts) = outstanding.swap_remove(which % outstanding.len());
                let duration = duration_ms.map(|ms| ms * MS);
                match duration {
                    Some(d) => permit.record_with_duration(outcome, Duration::from_nanos(d)),
                    None => permit.record(outcome),
                }
                model.complete(parts, outcome, duration, now);
            }
            Op::Drop { which } if !outstanding.is_empty() => {
                let (permit, parts) = outstanding.swap_remove(which % outstanding.len());
                drop(permit);
                model.complete(parts, Outcome::Ignored, None, now);
            }
            Op::Forged {
                generation_delta,
                probe,
                outcome,
            } => {
                let generation = model
                    .generation
                    .wrapping_add_signed(i64::from(generation_delta));
                let parts = (generation, now, probe);
                breaker.complete_raw(
                    RawBreakerPermit::from_parts(parts.0, parts.1, parts.2),
                    outcome,
                    None,
                );
                model.complete(parts, outcome, None, now);
            }
            Op::Advance { nanos } => clock.advance(Duration::from_nanos(nanos)),
            Op::ToInstant { delta } => {
                if matches!(model.state, BreakerState::Open | BreakerState::HalfOpen) {
                    let target = model.instant.saturating_add_signed(i64::from(delta));
                    if target > now {
                        clock.set(target);
                    }
                }
            }
            Op::ForceOpen => {
                breaker.force_open();
                model.go(BreakerState::ForcedOpen, 0, now);
            }
            Op::Disable => {
                breaker.disable();
                model.go(BreakerState::Disabled, 0, now);
            }
            Op::Reset => {
                breaker.reset();
                model.go(BreakerState::Closed, 0, now);
            }
            Op::Complete { .. } | Op::Drop { .. } => {}
        }
        let snapshot = breaker.snapshot();
        model.check(&snapshot, clock.now())?;
        if let Some(until) = snapshot.open_until_nanos {
            prop_assert_eq!(
                snapshot.retry_after,
                Some(Duration::from_nanos(until.saturating_sub(clock.now())))
            );
        }
    }
    // Everything still out is dropped: Ignored, and the model agrees.
    let now = clock.now();
    for (permit, parts) in outstanding {
        drop(permit);
        model.complete(parts, Outcome::Ignored, None, now);
    }
    model.check(&breaker.snapshot(), now)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn count_window_breaker_matches_the_model(
        config in count_config(),
        ops in proptest::collection::vec(op(), 1..160),
    ) {
        run(config, ops)?;
    }

    #[test]
    fn time_window_breaker_matches_the_model(
        config in time_config(),
        ops in proptest::collection::vec(op(), 1..160),
    ) {
        run(config, ops)?;
    }

    #[test]
    fn open_duration_stays_within_its_bounds(
        config in count_config(),
        level in 0u32..100,
        generation in any::<u64>(),
    ) {
        let d = config.open_duration_for(level, generation).unwrap();
        let cap = if config.open_backoff_multiplier > 1.0 {
            config.max_open_duration
        } else {
            config.open_duration
        };
        prop_assert!(d <= cap, "{:?} > {:?}", d, cap);
        prop_assert!(d.as_secs_f64() >= cap.as_secs_f64().min(config.open_duration.as_secs_f64()) * (1.0 - config.open_jitter) - 1e-9);
        prop_assert_eq!(Some(d), config.open_duration_for(level, generation), "replayable");
    }
}
