//! Rate limiter configuration and the exact integer form of its quota.
//!
//! A quota is `rate` permits per `period`, with at most `burst` permits at once. The
//! limiter works in *units* of `1/scale` nanosecond so that the emission interval
//! `period / rate` is a whole number of units (see [`Quota`]): there is no rounding and
//! hence no drift however many permits are chained.

use crate::clock::duration_to_nanos;
use crate::error::ConfigError;
use crate::fleet::Scope;
use std::time::Duration;

/// The largest number of units per nanosecond. Time since the limiter's creation is
/// kept in `u64` units, so a scale of 32 leaves a horizon of 2^64 / 32 ns ≈ 18 years.
pub(crate) const MAX_SCALE: u64 = 32;

/// The largest burst tolerance, in units: `burst × interval` must stay below 2^62 so that
/// a theoretical arrival time plus a tolerance plus a wait never overflows in practice.
pub(crate) const MAX_TOLERANCE_UNITS: u64 = 1 << 62;

/// A rate limiter's quota: `rate` permits per `period`, and a `burst` [= `rate`].
///
/// Over any interval of length `T` (on the limiter's clock) a limiter with this quota
/// admits at most `burst + rate · T / period` permits.
///
/// ```
/// use breakwater::limiter::RateLimiterConfig;
/// use std::time::Duration;
///
/// let config = RateLimiterConfig::new(100, Duration::from_secs(1)).with_burst(20);
/// assert!(config.validate().is_ok());
/// let err = RateLimiterConfig::new(0, Duration::from_secs(1)).validate().unwrap_err();
/// assert_eq!(err.field, "rate");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct RateLimiterConfig {
    /// Permits per `period` (at least 1, at most one per nanosecond of `period`).
    pub rate: u64,
    /// The period over which `rate` permits are granted (at least 1 ns).
    pub period: Duration,
    /// The most permits that can be taken at once after an idle spell (at least 1). A
    /// weighted request for more than `burst` permits can never pass.
    pub burst: u64,
    /// Whether the quota holds for this process or across the fleet (a policy with
    /// `scope = "fleet"` needs its `fleet` section and the feature `fleet`; the
    /// [`RateLimiter`](super::RateLimiter) itself is always local).
    pub scope: Scope,
}

impl RateLimiterConfig {
    /// `rate` permits per `period`, with `burst = rate`.
    pub fn new(rate: u64, period: Duration) -> Self {
        Self {
            rate,
            period,
            burst: rate,
            scope: Scope::Local,
        }
    }

    /// The same quota with another scope ([`Scope::Fleet`]: across the fleet).
    #[must_use]
    pub fn with_scope(self, scope: Scope) -> Self {
        Self { scope, ..self }
    }

    /// The same quota with another `burst`.
    pub fn with_burst(self, burst: u64) -> Self {
        Self { burst, ..self }
    }

    /// Checks every field; the error names the field as spelled in the policy file
    /// (`rate`, `period`, `burst`). Rejected: a zero in any field; a `period` longer than
    /// 2^64 ns; more than one permit per nanosecond (`rate` > `period` in ns); a
    /// `burst × period / rate` of 2^62 ns (146 years) or more — 2^57 ns (4.5 years) for
    /// quotas whose interval is not a whole number of nanoseconds.
    pub fn validate(&self) -> Result<(), ConfigError> {
        Quota::from_config(self).map(|_| ())
    }
}

/// The quota in exact integer units: the limiter's time unit is `1/scale` ns, and one
/// permit is `interval` units.
///
/// With `g = gcd(rate, period_ns)`, the emission interval is `(period_ns/g) / (rate/g)`
/// ns. When `rate/g ≤ MAX_SCALE` the scale is `rate/g` and `interval = period_ns/g`
/// exactly: every chain of permits lands exactly on the ideal schedule. That covers every
/// `rate` up to 32 and every rate that divides `32 × period_ns` (100/s, 1000/s, 3/s,
/// 60/min, …). Otherwise the scale is `MAX_SCALE` and the interval is rounded *up* to the
/// next 1/32 ns: the limiter may under-deliver by less than `1/(32 · interval_ns)` of
/// the rate (3·10^-8 for a 1 µs interval), and never admits more than the quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Quota {
    /// Units per nanosecond.
    pub(crate) scale: u64,
    /// Units per permit.
    pub(crate) interval: u64,
    /// `burst × interval`: how far the theoretical arrival time may run ahead of now.
    pub(crate) tolerance: u64,
    /// Whether `interval / scale` is exactly `period / rate`.
    pub(crate) exact: bool,
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

impl Quota {
    pub(crate) fn from_config(config: &RateLimiterConfig) -> Result<Self, ConfigError> {
        if config.rate == 0 {
            return Err(ConfigError::new("rate", "must be at least 1"));
        }
        if config.period.is_zero() {
            return Err(ConfigError::new("period", "must be longer than zero"));
        }
        if config.burst == 0 {
            return Err(ConfigError::new("burst", "must be at least 1"));
        }
        let period_ns = u64::try_from(config.period.as_nanos())
            .map_err(|_| ConfigError::new("period", "must be shorter than 2^64 ns (584 years)"))?;
        if config.rate > period_ns {
            return Err(ConfigError::new(
                "rate",
                format!(
                    "{} permits per {:?} is more than one permit per nanosecond",
                    config.rate, config.period
                ),
            ));
        }
        let g = gcd(config.rate, period_ns);
        let reduced_rate = config.rate / g;
        let (scale, interval, exact) = if reduced_rate <= MAX_SCALE {
            (reduced_rate, period_ns / g, true)
        } else {
            // ceil(period_ns * MAX_SCALE / rate) in u128: cannot overflow.
            let num = u128::from(period_ns) * u128::from(MAX_SCALE);
            let rate = u128::from(config.rate);
            let interval = num.div_ceil(rate);
            // interval ≤ period_ns * 32 / rate + 1 ≤ 2^64 * 32: may exceed u64.
            let interval = u64::try_from(interval).map_err(|_| {
                ConfigError::new("period", "period / rate is too long (2^59 ns at most)")
            })?;
            (MAX_SCALE, interval, false)
        };
        let tolerance = u128::from(interval) * u128::from(config.burst);
        if tolerance >= u128::from(MAX_TOLERANCE_UNITS) {
            return Err(ConfigError::new(
                "burst",
                format!(
                    "burst × period / rate must be shorter than {:?}",
                    Duration::from_nanos(MAX_TOLERANCE_UNITS / scale)
                ),
            ));
        }
        Ok(Self {
            scale,
            interval,
            tolerance: tolerance as u64,
            exact,
        })
    }

    /// Units to whole nanoseconds, rounded up.
    #[inline]
    pub(crate) fn units_to_nanos_ceil(&self, units: u64) -> u64 {
        if self.scale == 1 {
            units
        } else {
            units.div_ceil(self.scale)
        }
    }

    /// Nanoseconds to units, saturating.
    #[inline]
    pub(crate) fn nanos_to_units(&self, nanos: u64) -> u64 {
        nanos.saturating_mul(self.scale)
    }

    /// A duration in units, saturating.
    #[inline]
    pub(crate) fn duration_to_units(&self, d: Duration) -> u64 {
        self.nanos_to_units(duration_to_nanos(d))
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn quota(rate: u64, period: Duration, burst: u64) -> Result<Quota, ConfigError> {
        Quota::from_config(&RateLimiterConfig::new(rate, period).with_burst(burst))
    }

    #[test]
    fn zero_fields_are_named() {
        let s = Duration::from_secs(1);
        assert_eq!(quota(0, s, 1).unwrap_err().field, "rate");
        assert_eq!(quota(1, Duration::ZERO, 1).unwrap_err().field, "period");
        assert_eq!(quota(1, s, 0).unwrap_err().field, "burst");
    }

    #[test]
    fn overflow_sized_values_are_named() {
        assert_eq!(quota(1, Duration::MAX, 1).unwrap_err().field, "period");
        assert_eq!(
            quota(2_000_000_000, Duration::from_secs(1), 1)
                .unwrap_err()
                .field,
            "rate"
        );
        assert_eq!(
            quota(1, Duration::from_secs(1), u64::MAX)
                .unwrap_err()
                .field,
            "burst"
        );
        assert_eq!(
            quota(1, Duration::from_secs(1 << 33), 1).unwrap_err().field,
            "burst"
        );
        // Not exact, and one interval beyond the tolerance limit.
        assert_eq!(
            quota(33, Duration::from_nanos(u64::MAX), 1)
                .unwrap_err()
                .field,
            "burst"
        );
        assert!(quota(1_000_000_000, Duration::from_secs(1), 1_000_000_000).is_ok());
    }

    #[test]
    fn common_quotas_are_exact() {
        let q = quota(100, Duration::from_secs(1), 100).unwrap();
        assert_eq!(
            (q.scale, q.interval, q.tolerance, q.exact),
            (1, 10_000_000, 1_000_000_000, true)
        );
        let q = quota(3, Duration::from_secs(1), 1).unwrap();
        assert_eq!((q.scale, q.interval, q.exact), (3, 1_000_000_000, true));
        let q = quota(7, Duration::from_nanos(10), 1).unwrap();
        assert_eq!((q.scale, q.interval, q.exact), (7, 10, true));
        let q = quota(333, Duration::from_secs(1), 1).unwrap();
        assert_eq!(q.scale, MAX_SCALE);
        assert!(!q.exact);
        // Rounded up, never down.
        assert!(u128::from(q.interval) * 333 >= 32 * 1_000_000_000);
        assert!(u128::from(q.interval - 1) * 333 < 32 * 1_000_000_000);
    }

    #[test]
    fn unit_conversions_round_up() {
        let q = quota(3, Duration::from_secs(1), 1).unwrap();
        assert_eq!(q.units_to_nanos_ceil(7), 3);
        assert_eq!(q.units_to_nanos_ceil(6), 2);
        assert_eq!(q.nanos_to_units(u64::MAX), u64::MAX);
        assert_eq!(q.duration_to_units(Duration::from_nanos(5)), 15);
    }
}
