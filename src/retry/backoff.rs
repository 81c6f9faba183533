//! Backoff configuration and the pure delay schedule.

use crate::clock::duration_to_nanos;
use crate::error::ConfigError;
use crate::rng::Rng;
use std::str::FromStr;
use std::time::Duration;

crate::codes::code_enum! {
    /// How a delay is randomized around the exponential base. See
    /// [`BackoffConfig`] for the exact formulas.
    ///
    /// The numeric values are part of the C ABI and never change.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub enum Jitter: u8 {
        /// No randomness: exactly the exponential base.
        None = 0 => "none",
        /// Uniform between zero and the base (AWS "full jitter") — the default.
        #[default]
        Full = 1 => "full",
        /// Half the base plus a uniform share of the other half (AWS "equal jitter").
        Equal = 2 => "equal",
        /// Uniform between `initial` and three times the previous delay (at least
        /// `initial`, so the first retry is uniform in `[initial, 3·initial]`), capped at
        /// `max` (AWS "decorrelated jitter").
        Decorrelated = 3 => "decorrelated",
    }
}

impl FromStr for Jitter {
    type Err = ConfigError;

    /// Parses a policy-file name (exact, lower case). The error names the field
    /// `backoff.jitter`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Jitter::ALL
            .into_iter()
            .find(|j| j.as_str() == s)
            .ok_or_else(|| {
                ConfigError::new(
                    "backoff.jitter",
                    format!("unknown jitter `{s}` (expected none, full, equal or decorrelated)"),
                )
            })
    }
}

/// Exponential backoff: `initial` × `multiplier`^(n−1), capped at `max`, with [`Jitter`].
///
/// Defaults: `initial` 100 ms, `multiplier` 2, `max` 10 s, `jitter` full.
///
/// The delay before retry number `n` (1 = first retry) is a pure function of the
/// configuration, `n`, the previous delay (for decorrelated jitter) and a seedable
/// [`Rng`]: the same inputs give the same delay on every platform and in every language
/// binding, and nothing is allocated.
///
/// # Formulas
///
/// All arithmetic is on whole nanoseconds. Let `initial`, `multiplier`, `max` be the
/// configuration and
///
/// ```text
/// base(n) = min(max, floor(initial · multiplier^(n−1)))        (n = 0 is read as 1)
/// ```
///
/// where `multiplier^k` is computed by binary exponentiation in IEEE `f64` (so it is
/// bit-for-bit reproducible). `uniform[a, b]` is one draw of [`Rng::below`] giving an
/// integer uniform in `a..=b`. Then, by [`Jitter`]:
///
/// | jitter | delay | bounds `[lo, hi]` | rng draws |
/// |---|---|---|---|
/// | `none` | `base(n)` | `[base(n), base(n)]` | 0 |
/// | `full` | `uniform[0, base(n)]` | `[0, base(n)]` | 1 |
/// | `equal` | `floor(base(n)/2) + uniform[0, base(n) − floor(base(n)/2)]` | `[floor(base(n)/2), base(n)]` | 1 |
/// | `decorrelated` | `min(max, uniform[initial, 3·max(initial, previous)])` | `[min(max, initial), min(max, 3·max(initial, previous))]` | 1 |
///
/// `full`, `equal` and `decorrelated` are the three schemes of the AWS Architecture Blog
/// article *Exponential Backoff And Jitter* (Marc Brooker, 2015). Decorrelated jitter is
/// exactly the article's `sleep = min(cap, random_between(base, sleep · 3))` with `sleep`
/// starting at `base`: it ignores `n` and `multiplier` and grows from the previous delay
/// instead. Pass [`Duration::ZERO`] before the first retry; any previous delay below
/// `initial` is read as `initial`, so the first retry is already uniform in
/// `[initial, 3·initial]` (clients that failed together do not retry together). Like the
/// article it clamps the draw to `max`, so once `3·previous` exceeds `max` part of the
/// probability mass sits exactly at `max`.
///
/// Every delay lies in its bounds, and no delay ever exceeds `max`. An unvalidated
/// configuration never panics: a non-finite `multiplier` reads as an infinite growth
/// (every base is `max`), and all results are still capped at `max`.
///
/// ```
/// use breakwater::retry::{BackoffConfig, Jitter};
/// use breakwater::rng::Rng;
/// use std::time::Duration;
///
/// let backoff = BackoffConfig::default().with_jitter(Jitter::None);
/// let mut rng = Rng::new(1);
/// assert_eq!(backoff.delay(1, Duration::ZERO, &mut rng), Duration::from_millis(100));
/// assert_eq!(backoff.delay(3, Duration::ZERO, &mut rng), Duration::from_millis(400));
/// assert_eq!(backoff.delay(30, Duration::ZERO, &mut rng), Duration::from_secs(10));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct BackoffConfig {
    /// The base delay before the first retry (and the floor of decorrelated jitter).
    /// Must be greater than zero. Default 100 ms.
    pub initial: Duration,
    /// Growth factor per retry; finite and at least 1 (1 = constant backoff).
    /// Default 2.
    pub multiplier: f64,
    /// The cap on every delay; at least `initial`. Default 10 s.
    pub max: Duration,
    /// The randomization. Default [`Jitter::Full`].
    pub jitter: Jitter,
}

impl Default for BackoffConfig {
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(100),
            multiplier: 2.0,
            max: Duration::from_secs(10),
            jitter: Jitter::Full,
        }
    }
}

impl BackoffConfig {
    /// The same configuration with `initial` set.
    pub fn with_initial(mut self, initial: Duration) -> Self {
        self.initial = initial;
        self
    }

    /// The same configuration with `multiplier` set.
    pub fn with_multiplier(mut self, multiplier: f64) -> Self {
        self.multiplier = multiplier;
        self
    }

    /// The same configuration with `max` set.
    pub fn with_max(mut self, max: Duration) -> Self {
        self.max = max;
        self
    }

    /// The same configuration with `jitter` set.
    pub fn with_jitter(mut self, jitter: Jitter) -> Self {
        self.jitter = jitter;
        self
    }

    /// Checks every field; errors name `backoff.initial`, `backoff.multiplier` or
    /// `backoff.max`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.initial.is_zero() {
            return Err(ConfigError::new(
                "backoff.initial",
                "must be greater than zero",
            ));
        }
        if !self.multiplier.is_finite() || self.multiplier < 1.0 {
            return Err(ConfigError::new(
                "backoff.multiplier",
                format!(
                    "must be a finite number of at least 1, got {}",
                    self.multiplier
                ),
            ));
        }
        if self.max < self.initial {
            return Err(ConfigError::new(
                "backoff.max",
                format!(
                    "must be at least backoff.initial ({:?}), got {:?}",
                    self.initial, self.max
                ),
            ));
        }
        Ok(())
    }

    /// The delay before retry number `retry` (1 = first retry; 0 is read as 1), given the
    /// previous delay (used by [`Jitter::Decorrelated`] only; pass [`Duration::ZERO`]
    /// before the first retry) and the caller's generator.
    ///
    /// Pure: the same inputs (including the generator's state) give the same output; it
    /// draws at most one number from `rng` and allocates nothing. The result always lies
    /// within [`bounds`](Self::bounds) and never exceeds `max`.
    #[inline]
    pub fn delay(&self, retry: u32, previous: Duration, rng: &mut Rng) -> Duration {
        Duration::from_nanos(self.delay_nanos(retry, duration_to_nanos(previous), rng))
    }

    /// The closed interval `[min, max]` that [`delay`](Self::delay) can return for these
    /// arguments, whatever the generator's state.
    pub fn bounds(&self, retry: u32, previous: Duration) -> (Duration, Duration) {
        let (lo, hi) = self.bounds_nanos(retry, duration_to_nanos(previous));
        (Duration::from_nanos(lo), Duration::from_nanos(hi))
    }

    /// [`delay`](Self::delay) in nanoseconds.
    #[inline]
    pub fn delay_nanos(&self, retry: u32, previous_nanos: u64, rng: &mut Rng) -> u64 {
        let (lo, hi) = self.bounds_nanos(retry, previous_nanos);
        match self.jitter {
            Jitter::None => hi,
            Jitter::Full | Jitter::Equal => lo + rng.below((hi - lo).saturating_add(1)),
            Jitter::Decorrelated => {
                // The article's draw is over [initial, 3·max(initial, previous)] and then
                // clamped, so the clamp (not the range) applies `max`.
                let initial = duration_to_nanos(self.initial);
                let upper = decorrelated_upper(initial, previous_nanos);
                let draw = initial + rng.below((upper - initial).saturating_add(1));
                draw.min(duration_to_nanos(self.max))
            }
        }
    }

    /// [`bounds`](Self::bounds) in nanoseconds.
    #[inline]
    pub fn bounds_nanos(&self, retry: u32, previous_nanos: u64) -> (u64, u64) {
        match self.jitter {
            Jitter::None => {
                let base = self.base_nanos(retry);
                (base, base)
            }
            Jitter::Full => (0, self.base_nanos(retry)),
            Jitter::Equal => {
                let base = self.base_nanos(retry);
                (base / 2, base)
            }
            Jitter::Decorrelated => {
                let initial = duration_to_nanos(self.initial);
                let max = duration_to_nanos(self.max);
                let upper = decorrelated_upper(initial, previous_nanos);
                (initial.min(max), upper.min(max))
            }
        }
    }

    /// The un-jittered exponential delay `min(max, floor(initial · multiplier^(n−1)))` in
    /// nanoseconds (`n = 0` is read as 1).
    #[inline]
    pub fn base_nanos(&self, retry: u32) -> u64 {
        let initial = duration_to_nanos(self.initial);
        let max = duration_to_nanos(self.max);
        let scaled = initial as f64 * crate::num::pow_u32(self.multiplier, retry.saturating_sub(1));
        // `!(x < max)` also catches NaN from an unvalidated multiplier: read as "at the cap".
        let nanos = if scaled < max as f64 {
            scaled as u64
        } else {
            max
        };
        nanos.min(max)
    }
}

/// The top of decorrelated jitter's draw, `3·max(initial, previous)` (saturating): a
/// previous delay below `initial` (including none, 0) is read as `initial`.
#[inline]
fn decorrelated_upper(initial: u64, previous_nanos: u64) -> u64 {
    previous_nanos.max(initial).saturating_mul(3)
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn defaults_are_valid_and_documented() {
        let b = BackoffConfig::default();
        assert_eq!(b.initial, ms(100));
        assert_eq!(b.multiplier, 2.0);
        assert_eq!(b.max, Duration::from_secs(10));
        assert_eq!(b.jitter, Jitter::Full);
        b.validate().unwrap();
    }

    #[test]
    fn validate_names_fields() {
        let d = BackoffConfig::default();
        let field = |b: BackoffConfig| b.validate().unwrap_err().field;
        assert_eq!(field(d.with_initial(Duration::ZERO)), "backoff.initial");
        assert_eq!(field(d.with_multiplier(0.5)), "backoff.multiplier");
        assert_eq!(field(d.with_multiplier(f64::NAN)), "backoff.multiplier");
        assert_eq!(
            field(d.with_multiplier(f64::INFINITY)),
            "backoff.multiplier"
        );
        assert_eq!(field(d.with_max(ms(50))), "backoff.max");
        d.with_multiplier(1.0).with_max(ms(100)).validate().unwrap();
    }

    #[test]
    fn jitter_names_and_codes_round_trip() {
        for j in Jitter::ALL {
            assert_eq!(j.as_str().parse::<Jitter>().unwrap(), j);
            assert_eq!(Jitter::from_code(j.code().into()), Some(j));
            assert_eq!(j.to_string(), j.as_str());
        }
        assert_eq!(Jitter::from_code(4), None);
        let err = "Full".parse::<Jitter>().unwrap_err();
        assert_eq!(err.field, "backoff.jitter");
        assert_eq!(Jitter::default(), Jitter::Full);
    }

    #[test]
    fn exponential_base_grows_and_caps() {
        let b = BackoffConfig::default().with_jitter(Jitter::None);
        let mut rng = Rng::new(0);
        let got: Vec<_> = (0..=9)
            .map(|n| b.delay(n, Duration::ZERO, &mut rng))
            .collect();
        let want: Vec<_> = [100, 100, 200, 400, 800, 1600, 3200, 6400, 10_000, 10_000]
            .map(ms)
            .to_vec();
        assert_eq!(got, want);
        assert_eq!(b.base_nanos(u32::MAX), 10_000_000_000);
        assert_eq!(rng, Rng::new(0), "no jitter draws nothing");
    }

    #[test]
    fn jittered_delays_stay_in_bounds() {
        let mut rng = Rng::new(42);
        for jitter in Jitter::ALL {
            let b = BackoffConfig::default().with_jitter(jitter);
            let mut previous = Duration::ZERO;
            for n in 1..20 {
                let (lo, hi) = b.bounds(n, previous);
                let d = b.delay(n, previous, &mut rng);
                assert!(lo <= d && d <= hi && hi <= b.max, "{jitter} n={n} {d:?}");
                previous = d;
            }
        }
    }

    #[test]
    fn equal_and_decorrelated_bounds() {
        let b = BackoffConfig::default().with_jitter(Jitter::Equal);
        assert_eq!(b.bounds(2, Duration::ZERO), (ms(100), ms(200)));
        let d = b.with_jitter(Jitter::Decorrelated);
        assert_eq!(d.bounds(1, Duration::ZERO), (ms(100), ms(300)));
        assert_eq!(d.bounds(7, ms(50)), (ms(100), ms(300)));
        assert_eq!(d.bounds(2, ms(120)), (ms(100), ms(360)));
        assert_eq!(d.bounds(1, ms(1000)), (ms(100), ms(3000)));
        assert_eq!(
            d.bounds(1, Duration::from_secs(9)),
            (ms(100), Duration::from_secs(10))
        );
        assert_eq!(
            d.bounds(1, Duration::MAX),
            (ms(100), Duration::from_secs(10))
        );
    }

    #[test]
    fn same_seed_same_delay() {
        let b = BackoffConfig::default().with_jitter(Jitter::Full);
        let a = b.delay(3, Duration::ZERO, &mut Rng::new(9));
        let c = b.delay(3, Duration::ZERO, &mut Rng::new(9));
        assert_eq!(a, c);
    }

    #[test]
    fn invalid_configs_do_not_panic() {
        let mut rng = Rng::new(1);
        for multiplier in [f64::NAN, f64::INFINITY, -1.0, 0.0, 1e308] {
            for jitter in Jitter::ALL {
                for (initial, max) in [
                    (Duration::ZERO, Duration::ZERO),
                    (Duration::MAX, Duration::ZERO),
                    (Duration::MAX, Duration::MAX),
                    (ms(5), ms(1)),
                ] {
                    let b = BackoffConfig {
                        initial,
                        multiplier,
                        max,
                        jitter,
                    };
                    for n in [0, 1, 2, 64, u32::MAX] {
                        for prev in [Duration::ZERO, ms(3), Duration::MAX] {
                            let d = b.delay(n, prev, &mut rng);
                            assert!(d <= max);
                            let (lo, hi) = b.bounds(n, prev);
                            assert!(lo <= d && d <= hi);
                        }
                    }
                }
            }
        }
    }
}
