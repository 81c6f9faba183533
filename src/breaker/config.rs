//! Circuit-breaker configuration: plain data, validated once at construction.
//!
//! Every field has the name it has in the policy file (`[policies.X.circuit_breaker]`),
//! and every invalid value is reported by [`BreakerConfig::validate`] as a
//! [`ConfigError`] naming that field. Nothing is clamped or defaulted silently.
//!
//! ```
//! use breakwater::breaker::{BreakerConfig, WindowConfig};
//! use std::time::Duration;
//!
//! let config = BreakerConfig::default()
//!     .with_window(WindowConfig::Time { duration: Duration::from_secs(10), buckets: 10 })
//!     .with_minimum_calls(20)
//!     .with_failure_rate_threshold(50.0)
//!     .with_slow_calls(Duration::from_millis(500), 80.0)
//!     .with_open_backoff(2.0, Duration::from_secs(300));
//! assert!(config.validate().is_ok());
//!
//! let err = BreakerConfig::default().with_failure_rate_threshold(120.0).validate().unwrap_err();
//! assert_eq!(err.field, "failure_rate_threshold");
//! ```

use super::BreakerState;
use crate::error::ConfigError;
use std::time::Duration;

/// The states [`BreakerConfig::initial_state`] accepts.
pub(crate) const STARTING_STATES: [BreakerState; 3] = [
    BreakerState::Closed,
    BreakerState::ForcedOpen,
    BreakerState::Disabled,
];

/// The largest count window (`window.size`). The window state is a fixed block of
/// bitsets (so it can live in shared memory); 500 outcomes keep a count-window breaker's
/// whole state under 256 bytes.
pub const MAX_COUNT_WINDOW: u32 = 500;

/// The most buckets a time window may have (`window.buckets`); 16 keep a time-window
/// breaker's whole state under 512 bytes.
pub const MAX_TIME_BUCKETS: u32 = 16;

/// The most half-open probes (`half_open_permits`); probe counts are 10-bit fields of one
/// atomic word.
pub const MAX_HALF_OPEN_PERMITS: u32 = 1000;

/// Which outcomes the failure and slow-call rates are computed over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowConfig {
    /// The last `size` recorded outcomes (`1..=`[`MAX_COUNT_WINDOW`]).
    Count {
        /// How many outcomes the window holds.
        size: u32,
    },
    /// The outcomes recorded during the last `duration`, kept in `buckets` equal buckets
    /// (`1..=`[`MAX_TIME_BUCKETS`]). The window slides one bucket at a time: at any
    /// moment it holds the current, partly filled bucket and the `buckets - 1` before it.
    /// A bucket is `duration / buckets` long, in whole nanoseconds.
    Time {
        /// The span of the window.
        duration: Duration,
        /// How many buckets the span is split into.
        buckets: u32,
    },
}

impl WindowConfig {
    /// The default count window: the last 100 outcomes.
    pub const DEFAULT_COUNT: WindowConfig = WindowConfig::Count { size: 100 };

    /// The default time window: the last 10 s in 10 buckets of 1 s.
    pub const DEFAULT_TIME: WindowConfig = WindowConfig::Time {
        duration: Duration::from_secs(10),
        buckets: 10,
    };
}

impl Default for WindowConfig {
    fn default() -> Self {
        Self::DEFAULT_COUNT
    }
}

/// The configuration of a [`CircuitBreaker`](super::CircuitBreaker).
///
/// `Default` gives the defaults of docs/design.md §3 (which are resilience4j's where that
/// document is silent). Builder methods set fields without validating them;
/// [`validate`](Self::validate) (called by every constructor) checks them all.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct BreakerConfig {
    /// The sliding window the rates are computed over. Default: count, 100.
    pub window: WindowConfig,
    /// How many outcomes the window must hold before the failure and slow-call rates can
    /// trip the breaker (`>= 1`, and `<= window.size` for a count window). Default 20.
    pub minimum_calls: u32,
    /// The failure rate, in percent of the window's calls, that trips the breaker
    /// (`Failure` and `Timeout` count as failures). Range `(0, 100]`. Default 50.
    pub failure_rate_threshold: f64,
    /// A call that takes longer than this is slow. Used only when
    /// `slow_call_rate_threshold` is set; then it must be positive. Default 60 s.
    pub slow_call_duration: Duration,
    /// The slow-call rate, in percent, that trips the breaker. `None` turns the rule
    /// off (and the breaker then never reads the clock to time calls). Range `(0, 100]`.
    pub slow_call_rate_threshold: Option<f64>,
    /// Trip after this many failures in a row, whatever `minimum_calls` says. `None`
    /// turns the rule off; `Some(0)` is invalid.
    pub consecutive_failures: Option<u32>,
    /// How long the breaker stays open after its first trip. Positive. Default 30 s.
    pub open_duration: Duration,
    /// Each trip that follows a failed half-open trial (without a close in between)
    /// multiplies the open duration by this factor, up to `max_open_duration`.
    /// `1.0` (the default) turns growth off; otherwise finite and `>= 1`.
    pub open_backoff_multiplier: f64,
    /// Jitter, as a fraction `0..=1` of the open duration: each open period is shortened
    /// by a random fraction of at most `open_jitter` (so it never exceeds the configured
    /// or capped duration). The random value of the open period that starts generation
    /// `g` is the `g`-th draw of [`Rng::new(jitter_seed)`](crate::rng::Rng), so runs
    /// replay exactly. Default 0 (off).
    pub open_jitter: f64,
    /// The cap of the grown open duration. Checked (`>= open_duration`) and used only
    /// when `open_backoff_multiplier > 1`. Default 5 min.
    pub max_open_duration: Duration,
    /// How many probe calls `HalfOpen` admits (`1..=`[`MAX_HALF_OPEN_PERMITS`]). When all
    /// of them have completed the trial is decided. Default 5.
    pub half_open_permits: u32,
    /// The longest the breaker waits in `HalfOpen` for its probes. Once it has passed, the
    /// next acquire decides the trial with the probes completed so far (none completed
    /// counts as a failed trial). Positive. Default 60 s: as long as the default
    /// `slow_call_duration`, so a legitimately slow probe is not cut off, yet a leaked
    /// probe cannot wedge the breaker for longer than a minute.
    pub half_open_max_wait: Duration,
    /// Seeds the jitter of open durations (see `open_jitter`). Default 0.
    pub jitter_seed: u64,
    /// The state a new breaker starts in: `Closed` (the default), `Disabled` (records
    /// outcomes but never trips: a breaker rolled out in observe-only mode) or
    /// `ForcedOpen` (rejects until reset: a dependency known to be down). A breaker
    /// rebuilt by a reload that changed its configuration starts there again; `Open` and
    /// `HalfOpen` are refused (they are reached by the rules, not configured).
    pub initial_state: BreakerState,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self {
            window: WindowConfig::DEFAULT_COUNT,
            minimum_calls: 20,
            failure_rate_threshold: 50.0,
            slow_call_duration: Duration::from_secs(60),
            slow_call_rate_threshold: None,
            consecutive_failures: None,
            open_duration: Duration::from_secs(30),
            open_backoff_multiplier: 1.0,
            open_jitter: 0.0,
            max_open_duration: Duration::from_secs(300),
            half_open_permits: 5,
            half_open_max_wait: Duration::from_secs(60),
            jitter_seed: 0,
            initial_state: BreakerState::Closed,
        }
    }
}

fn nanos(field: &'static str, d: Duration) -> Result<u64, ConfigError> {
    u64::try_from(d.as_nanos())
        .map_err(|_| ConfigError::new(field, format!("{d:?} is longer than 2^64 ns (584 years)")))
}

fn positive_nanos(field: &'static str, d: Duration) -> Result<u64, ConfigError> {
    match nanos(field, d)? {
        0 => Err(ConfigError::new(field, "must be longer than zero")),
        n => Ok(n),
    }
}

fn percent(field: &'static str, value: f64) -> Result<f64, ConfigError> {
    if value > 0.0 && value <= 100.0 {
        Ok(value)
    } else {
        Err(ConfigError::new(
            field,
            format!("{value} is not a percentage in (0, 100]"),
        ))
    }
}

impl BreakerConfig {
    /// Checks every field; the first invalid one is returned as a [`ConfigError`] naming
    /// it (`window.size`, `window.duration`, `window.buckets`, `minimum_calls`,
    /// `failure_rate_threshold`, `slow_call_duration`, `slow_call_rate_threshold`,
    /// `consecutive_failures`, `open_duration`, `open_backoff_multiplier`, `open_jitter`,
    /// `max_open_duration`, `half_open_permits`, `half_open_max_wait`, `initial_state`).
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.resolve().map(|_| ())
    }

    /// Validates and converts to the nanosecond values the hot paths use.
    pub(crate) fn resolve(&self) -> Result<Tuning, ConfigError> {
        if !STARTING_STATES.contains(&self.initial_state) {
            return Err(ConfigError::new(
                "initial_state",
                format!(
                    "must be closed, forced_open or disabled, got {}",
                    self.initial_state
                ),
            ));
        }
        let window = match self.window {
            WindowConfig::Count { size } => {
                if size == 0 {
                    return Err(ConfigError::new("window.size", "must be at least 1"));
                }
                if size > MAX_COUNT_WINDOW {
                    return Err(ConfigError::new(
                        "window.size",
                        format!("{size} is above the maximum of {MAX_COUNT_WINDOW}"),
                    ));
                }
                ResolvedWindow::Count { size }
            }
            WindowConfig::Time { duration, buckets } => {
                if buckets == 0 {
                    return Err(ConfigError::new("window.buckets", "must be at least 1"));
                }
                if buckets > MAX_TIME_BUCKETS {
                    return Err(ConfigError::new(
                        "window.buckets",
                        format!("{buckets} is above the maximum of {MAX_TIME_BUCKETS}"),
                    ));
                }
                let span = positive_nanos("window.duration", duration)?;
                if span < u64::from(buckets) {
                    return Err(ConfigError::new(
                        "window.duration",
                        format!(
                            "{duration:?} cannot be split into {buckets} buckets of at least 1 ns"
                        ),
                    ));
                }
                ResolvedWindow::Time {
                    bucket_nanos: span / u64::from(buckets),
                    buckets,
                }
            }
        };
        if self.minimum_calls == 0 {
            return Err(ConfigError::new("minimum_calls", "must be at least 1"));
        }
        if let ResolvedWindow::Count { size } = window {
            if self.minimum_calls > size {
                return Err(ConfigError::new(
                    "minimum_calls",
                    format!(
                        "{} exceeds window.size {size}: the rates could never be evaluated",
                        self.minimum_calls
                    ),
                ));
            }
        }
        let failure_rate = percent("failure_rate_threshold", self.failure_rate_threshold)?;
        let slow_nanos = nanos("slow_call_duration", self.slow_call_duration)?;
        let slow_rate = match self.slow_call_rate_threshold {
            None => None,
            Some(rate) => {
                let rate = percent("slow_call_rate_threshold", rate)?;
                if slow_nanos == 0 {
                    return Err(ConfigError::new(
                        "slow_call_duration",
                        "must be longer than zero when slow_call_rate_threshold is set",
                    ));
                }
                Some(rate)
            }
        };
        let consecutive = match self.consecutive_failures {
            None => 0,
            Some(0) => {
                return Err(ConfigError::new(
                    "consecutive_failures",
                    "must be at least 1 (leave it unset to turn the rule off)",
                ))
            }
            Some(n) => n,
        };
        let open_nanos = positive_nanos("open_duration", self.open_duration)?;
        let multiplier = self.open_backoff_multiplier;
        if !(multiplier.is_finite() && multiplier >= 1.0) {
            return Err(ConfigError::new(
                "open_backoff_multiplier",
                format!("{multiplier} must be finite and at least 1 (1 turns growth off)"),
            ));
        }
        let jitter = self.open_jitter;
        if !(0.0..=1.0).contains(&jitter) {
            return Err(ConfigError::new(
                "open_jitter",
                format!("{jitter} is not a fraction in [0, 1]"),
            ));
        }
        let max_open_nanos = nanos("max_open_duration", self.max_open_duration)?;
        if multiplier > 1.0 && max_open_nanos < open_nanos {
            return Err(ConfigError::new(
                "max_open_duration",
                format!(
                    "{:?} is shorter than open_duration {:?}",
                    self.max_open_duration, self.open_duration
                ),
            ));
        }
        let permits = self.half_open_permits;
        if permits == 0 || permits > MAX_HALF_OPEN_PERMITS {
            return Err(ConfigError::new(
                "half_open_permits",
                format!("{permits} is not in 1..={MAX_HALF_OPEN_PERMITS}"),
            ));
        }
        let max_wait_nanos = positive_nanos("half_open_max_wait", self.half_open_max_wait)?;
        Ok(Tuning {
            window,
            minimum_calls: self.minimum_calls,
            failure_rate,
            slow_rate,
            slow_nanos,
            consecutive,
            open_nanos,
            multiplier,
            max_open_nanos,
            jitter,
            jitter_seed: self.jitter_seed,
            permits,
            max_wait_nanos,
        })
    }

    /// Sets `window`.
    pub fn with_window(mut self, window: WindowConfig) -> Self {
        self.window = window;
        self
    }

    /// Sets `minimum_calls`.
    pub fn with_minimum_calls(mut self, calls: u32) -> Self {
        self.minimum_calls = calls;
        self
    }

    /// Sets `failure_rate_threshold` (percent).
    pub fn with_failure_rate_threshold(mut self, percent: f64) -> Self {
        self.failure_rate_threshold = percent;
        self
    }

    /// Whether a call that took `duration` is slow: the slow-call rule is on and the call
    /// took *longer* than `slow_call_duration` (a call of exactly that length is not).
    /// The breaker judges its window by the same rule; the policy and the C handles use
    /// this to count slow calls.
    ///
    /// ```
    /// use breakwater::breaker::BreakerConfig;
    /// use std::time::Duration;
    ///
    /// let c = BreakerConfig::default().with_slow_calls(Duration::from_millis(5), 50.0);
    /// assert!(!c.is_slow(Duration::from_millis(5)));
    /// assert!(c.is_slow(Duration::from_micros(5_001)));
    /// assert!(!BreakerConfig::default().is_slow(Duration::from_secs(3600))); // rule off
    /// ```
    pub fn is_slow(&self, duration: Duration) -> bool {
        self.slow_call_rate_threshold.is_some() && duration > self.slow_call_duration
    }

    /// Turns the slow-call rule on: calls longer than `duration` are slow, and a slow
    /// rate of `threshold` percent trips the breaker.
    pub fn with_slow_calls(mut self, duration: Duration, threshold: f64) -> Self {
        self.slow_call_duration = duration;
        self.slow_call_rate_threshold = Some(threshold);
        self
    }

    /// Turns the consecutive-failures rule on.
    pub fn with_consecutive_failures(mut self, failures: u32) -> Self {
        self.consecutive_failures = Some(failures);
        self
    }

    /// Sets `open_duration`.
    pub fn with_open_duration(mut self, duration: Duration) -> Self {
        self.open_duration = duration;
        self
    }

    /// Turns growth of the open duration on: `multiplier` per repeated trip, up to `max`.
    pub fn with_open_backoff(mut self, multiplier: f64, max: Duration) -> Self {
        self.open_backoff_multiplier = multiplier;
        self.max_open_duration = max;
        self
    }

    /// Sets `open_jitter` (a fraction of the open duration).
    pub fn with_open_jitter(mut self, fraction: f64) -> Self {
        self.open_jitter = fraction;
        self
    }

    /// Sets `initial_state`.
    pub fn with_initial_state(mut self, state: BreakerState) -> Self {
        self.initial_state = state;
        self
    }

    /// Sets `jitter_seed`.
    pub fn with_jitter_seed(mut self, seed: u64) -> Self {
        self.jitter_seed = seed;
        self
    }

    /// Sets `half_open_permits`.
    pub fn with_half_open_permits(mut self, permits: u32) -> Self {
        self.half_open_permits = permits;
        self
    }

    /// Sets `half_open_max_wait`.
    pub fn with_half_open_max_wait(mut self, wait: Duration) -> Self {
        self.half_open_max_wait = wait;
        self
    }

    /// The open duration of an open period that starts generation `generation` after
    /// `level` consecutive failed trials (0 for a trip from `Closed`): the
    /// `open_duration` grown by `open_backoff_multiplier^level` (capped at
    /// `max_open_duration` when growth is on), then shortened by the jitter. Pure; this
    /// is exactly what the breaker uses. Returns `None` if the configuration is invalid.
    pub fn open_duration_for(&self, level: u32, generation: u64) -> Option<Duration> {
        self.resolve()
            .ok()
            .map(|t| Duration::from_nanos(t.open_duration_nanos(level, generation)))
    }
}

/// The window, resolved to nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum ResolvedWindow {
    Count { size: u32 },
    Time { bucket_nanos: u64, buckets: u32 },
}

/// A validated configuration in the units the hot paths use.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Tuning {
    pub(crate) window: ResolvedWindow,
    pub(crate) minimum_calls: u32,
    pub(crate) failure_rate: f64,
    pub(crate) slow_rate: Option<f64>,
    pub(crate) slow_nanos: u64,
    /// 0 = rule off.
    pub(crate) consecutive: u32,
    pub(crate) open_nanos: u64,
    pub(crate) multiplier: f64,
    pub(crate) max_open_nanos: u64,
    pub(crate) jitter: f64,
    pub(crate) jitter_seed: u64,
    pub(crate) permits: u32,
    pub(crate) max_wait_nanos: u64,
}

impl Tuning {
    /// Whether calls are timed (the slow-call rule is on).
    #[inline]
    pub(crate) fn track_slow(&self) -> bool {
        self.slow_rate.is_some()
    }

    /// Whether a window with `calls` calls, `failures` failures and `slow` slow calls
    /// trips the breaker (rate rules only; `minimum_calls` applies).
    #[inline]
    pub(crate) fn rates_trip(&self, calls: u64, failures: u64, slow: u64) -> bool {
        if calls < u64::from(self.minimum_calls) || calls == 0 {
            return false;
        }
        rate(failures, calls) >= self.failure_rate
            || self
                .slow_rate
                .is_some_and(|limit| rate(slow, calls) >= limit)
    }

    /// Whether a half-open trial with these probe counts passed: at least one probe
    /// completed and both rates are under their thresholds.
    #[inline]
    pub(crate) fn trial_passed(&self, completed: u64, failures: u64, slow: u64) -> bool {
        completed > 0
            && rate(failures, completed) < self.failure_rate
            && self
                .slow_rate
                .is_none_or(|limit| rate(slow, completed) < limit)
    }

    /// See [`BreakerConfig::open_duration_for`].
    pub(crate) fn open_duration_nanos(&self, level: u32, generation: u64) -> u64 {
        let base = self.open_nanos as f64;
        let grown = if self.multiplier > 1.0 {
            (base * crate::num::pow_u32(self.multiplier, level)).min(self.max_open_nanos as f64)
        } else {
            base
        };
        let jittered = if self.jitter > 0.0 {
            let draw = jitter_draw(self.jitter_seed, generation);
            grown * (1.0 - self.jitter * crate::rng::unit_f64(draw))
        } else {
            grown
        };
        // `as` saturates (and maps NaN to 0); the value is in [0, max] anyway.
        jittered as u64
    }
}

/// The `generation`-th draw (counting from 0) of `Rng::new(seed)`, computed directly:
/// SplitMix64 is counter-based, so any thread can compute the jitter of any open period
/// without shared generator state.
#[inline]
pub(crate) fn jitter_draw(seed: u64, generation: u64) -> u64 {
    crate::rng::nth_draw(seed, generation.wrapping_add(1))
}

/// `x * 100 / of` in floating point; the one rate formula of the breaker.
#[inline]
pub(crate) fn rate(x: u64, of: u64) -> f64 {
    x as f64 * 100.0 / of as f64
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn field(config: BreakerConfig) -> String {
        config.validate().unwrap_err().field.into_owned()
    }

    #[test]
    fn defaults_are_valid_and_documented_values() {
        let c = BreakerConfig::default();
        assert!(c.validate().is_ok());
        assert_eq!(c.window, WindowConfig::Count { size: 100 });
        assert_eq!(c.minimum_calls, 20);
        assert_eq!(c.open_duration, Duration::from_secs(30));
        assert_eq!(c.max_open_duration, Duration::from_secs(300));
        assert_eq!(c.half_open_permits, 5);
    }

    #[test]
    fn jitter_draw_is_the_nth_draw_of_the_shared_rng() {
        let mut rng = crate::rng::Rng::new(42);
        for g in 0..100 {
            assert_eq!(jitter_draw(42, g), rng.next_u64());
        }
    }

    #[test]
    fn open_duration_grows_caps_and_jitters_within_bounds() {
        let t = BreakerConfig::default()
            .with_open_duration(Duration::from_secs(1))
            .with_open_backoff(2.0, Duration::from_secs(5))
            .resolve()
            .unwrap();
        assert_eq!(t.open_duration_nanos(0, 7), 1_000_000_000);
        assert_eq!(t.open_duration_nanos(2, 7), 4_000_000_000);
        assert_eq!(t.open_duration_nanos(3, 7), 5_000_000_000);
        assert_eq!(t.open_duration_nanos(u32::MAX, 7), 5_000_000_000);
        let j = BreakerConfig::default()
            .with_open_jitter(0.5)
            .with_jitter_seed(9)
            .resolve()
            .unwrap();
        for g in 0..1000 {
            let d = j.open_duration_nanos(0, g);
            assert!((15_000_000_000..=30_000_000_000).contains(&d), "{d}");
            assert_eq!(d, j.open_duration_nanos(0, g), "replayable");
        }
    }

    #[test]
    fn every_invalid_field_is_named() {
        let d = BreakerConfig::default;
        let secs = Duration::from_secs;
        assert_eq!(
            field(d().with_window(WindowConfig::Count { size: 0 })),
            "window.size"
        );
        assert_eq!(
            field(d().with_window(WindowConfig::Count { size: 501 })),
            "window.size"
        );
        let time = |duration, buckets| WindowConfig::Time { duration, buckets };
        assert_eq!(field(d().with_window(time(secs(10), 0))), "window.buckets");
        assert_eq!(field(d().with_window(time(secs(10), 17))), "window.buckets");
        assert_eq!(
            field(d().with_window(time(Duration::ZERO, 10))),
            "window.duration"
        );
        assert_eq!(
            field(d().with_window(time(Duration::from_nanos(5), 10))),
            "window.duration"
        );
        assert_eq!(
            field(d().with_window(time(Duration::MAX, 10))),
            "window.duration"
        );
        assert_eq!(field(d().with_minimum_calls(0)), "minimum_calls");
        assert_eq!(field(d().with_minimum_calls(101)), "minimum_calls");
        for bad in [0.0, -1.0, 100.5, f64::NAN, f64::INFINITY] {
            assert_eq!(
                field(d().with_failure_rate_threshold(bad)),
                "failure_rate_threshold"
            );
            assert_eq!(
                field(d().with_slow_calls(secs(1), bad)),
                "slow_call_rate_threshold"
            );
        }
        assert_eq!(
            field(d().with_slow_calls(Duration::ZERO, 50.0)),
            "slow_call_duration"
        );
        assert_eq!(
            field(d().with_slow_calls(Duration::MAX, 50.0)),
            "slow_call_duration"
        );
        assert_eq!(
            field(d().with_consecutive_failures(0)),
            "consecutive_failures"
        );
        assert_eq!(
            field(d().with_open_duration(Duration::ZERO)),
            "open_duration"
        );
        assert_eq!(
            field(d().with_open_duration(Duration::MAX)),
            "open_duration"
        );
        for bad in [0.5, f64::NAN, f64::INFINITY, -2.0] {
            assert_eq!(
                field(d().with_open_backoff(bad, secs(60))),
                "open_backoff_multiplier"
            );
        }
        for bad in [-0.1, 1.1, f64::NAN] {
            assert_eq!(field(d().with_open_jitter(bad)), "open_jitter");
        }
        assert_eq!(
            field(d().with_open_backoff(2.0, secs(1))),
            "max_open_duration"
        );
        assert_eq!(
            field(d().with_open_backoff(2.0, Duration::MAX)),
            "max_open_duration"
        );
        assert_eq!(field(d().with_half_open_permits(0)), "half_open_permits");
        assert_eq!(field(d().with_half_open_permits(1001)), "half_open_permits");
        assert_eq!(
            field(d().with_half_open_max_wait(Duration::ZERO)),
            "half_open_max_wait"
        );
        assert_eq!(
            field(d().with_half_open_max_wait(Duration::MAX)),
            "half_open_max_wait"
        );
    }

    #[test]
    fn boundaries_are_valid() {
        let d = BreakerConfig::default;
        assert!(d().with_failure_rate_threshold(100.0).validate().is_ok());
        assert!(d()
            .with_failure_rate_threshold(f64::MIN_POSITIVE)
            .validate()
            .is_ok());
        assert!(d()
            .with_window(WindowConfig::Count { size: 500 })
            .validate()
            .is_ok());
        assert!(d()
            .with_window(WindowConfig::Time {
                duration: Duration::from_nanos(16),
                buckets: 16
            })
            .with_minimum_calls(1000)
            .validate()
            .is_ok());
        assert!(d().with_open_jitter(1.0).validate().is_ok());
        assert!(d().with_half_open_permits(1000).validate().is_ok());
        // Without growth the cap is unused, so it is not checked.
        assert!(d()
            .with_open_duration(Duration::from_secs(600))
            .validate()
            .is_ok());
    }
}
