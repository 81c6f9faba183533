//! AIMD: loss-based additive increase, multiplicative decrease.

use super::sample::Sample;
use crate::clock::duration_to_nanos;
use crate::error::ConfigError;
use std::time::Duration;

/// Configuration of the AIMD algorithm.
///
/// ```
/// use breakwater::adaptive::AimdConfig;
/// let aimd = AimdConfig::default();
/// assert_eq!((aimd.increase, aimd.backoff_ratio), (1, 0.9));
/// assert!(aimd.validate().is_ok());
/// ```
///
/// As Netflix concurrency-limits' `AIMDLimit`: on every completion
///
/// ```text
/// if dropped or rtt > timeout:       limit = max(min, min(limit - 1, floor(limit * backoff_ratio)))
/// else if 2 * in_flight >= limit:    limit = min(max, limit + increase)
/// else:                              limit unchanged   ("app limited": the limit is not in use)
/// ```
///
/// where `in_flight` is the count when the completed call was admitted (itself
/// included), and a call is *dropped* when its outcome is `Failure` or `Timeout`.
/// The whole state is the integer limit, so the limiter updates it with one
/// compare-exchange loop and no lock.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct AimdConfig {
    /// How much the limit grows after a completion that was neither dropped nor app
    /// limited. At least 1. Default: 1.
    pub increase: u32,
    /// The factor applied to the limit on a drop, in `[0.5, 1.0)`; the limit always
    /// shrinks by at least 1 (down to `min_limit`). Default: 0.9.
    pub backoff_ratio: f64,
    /// A completion slower than this counts as a drop even when it succeeded. Above 0.
    /// Default: 5 s.
    pub timeout: Duration,
}

crate::builder::with_setters!(AimdConfig {
    increase: u32 => with_increase,
    backoff_ratio: f64 => with_backoff_ratio,
    timeout: Duration => with_timeout,
});

impl Default for AimdConfig {
    fn default() -> Self {
        Self {
            increase: 1,
            backoff_ratio: 0.9,
            timeout: Duration::from_secs(5),
        }
    }
}

impl AimdConfig {
    /// Checks every field; errors name them as in the policy file (`aimd.increase`,
    /// `aimd.backoff_ratio`, `aimd.timeout`).
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.increase == 0 {
            return Err(ConfigError::new("aimd.increase", "must be at least 1"));
        }
        if !(self.backoff_ratio >= 0.5 && self.backoff_ratio < 1.0) {
            return Err(ConfigError::new(
                "aimd.backoff_ratio",
                format!("must be in [0.5, 1.0), got {}", self.backoff_ratio),
            ));
        }
        if self.timeout.is_zero() {
            return Err(ConfigError::new("aimd.timeout", "must be above 0"));
        }
        if u64::try_from(self.timeout.as_nanos()).is_err() {
            return Err(ConfigError::new(
                "aimd.timeout",
                "must fit in 64-bit nanoseconds (584 years)",
            ));
        }
        Ok(())
    }

    /// The timeout in nanoseconds.
    #[inline]
    pub fn timeout_ns(&self) -> u64 {
        duration_to_nanos(self.timeout)
    }

    /// The pure AIMD step: the next limit after `sample`, kept inside `min..=max`.
    ///
    /// ```
    /// use breakwater::adaptive::{AimdConfig, Sample};
    /// let aimd = AimdConfig::default();
    /// let ok = Sample { rtt_ns: 1_000, in_flight: 10, dropped: false };
    /// assert_eq!(aimd.next_limit(20, ok, 1, 200), 21);
    /// let drop = Sample { dropped: true, ..ok };
    /// assert_eq!(aimd.next_limit(20, drop, 1, 200), 18);
    /// let idle = Sample { in_flight: 2, ..ok };
    /// assert_eq!(aimd.next_limit(20, idle, 1, 200), 20);
    /// ```
    #[inline]
    pub fn next_limit(&self, limit: u32, sample: Sample, min: u32, max: u32) -> u32 {
        let next = if sample.dropped || sample.rtt_ns > self.timeout_ns() {
            // `as u32` of a finite non-negative f64 below 2^32 is a floor.
            let backed_off = (f64::from(limit) * self.backoff_ratio) as u32;
            backed_off.min(limit.saturating_sub(1))
        } else if u64::from(sample.in_flight) * 2 >= u64::from(limit) {
            limit.saturating_add(self.increase)
        } else {
            limit
        };
        next.clamp(min, max.max(min))
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn sample(rtt_ns: u64, in_flight: u32, dropped: bool) -> Sample {
        Sample {
            rtt_ns,
            in_flight,
            dropped,
        }
    }

    #[test]
    fn backs_off_on_drop_and_slow_calls_and_stays_in_bounds() {
        let aimd = AimdConfig::default();
        assert_eq!(aimd.next_limit(100, sample(1, 100, true), 1, 200), 90);
        let slow = aimd.timeout_ns() + 1;
        assert_eq!(aimd.next_limit(100, sample(slow, 100, false), 1, 200), 90);
        // Small limits still shrink by one.
        assert_eq!(aimd.next_limit(5, sample(1, 5, true), 1, 200), 4);
        assert_eq!(aimd.next_limit(1, sample(1, 1, true), 1, 200), 1);
        assert_eq!(aimd.next_limit(10, sample(1, 10, true), 10, 200), 10);
        assert_eq!(aimd.next_limit(200, sample(1, 200, false), 1, 200), 200);
    }

    #[test]
    fn grows_only_when_the_limit_is_in_use() {
        let aimd = AimdConfig {
            increase: 3,
            ..AimdConfig::default()
        };
        assert_eq!(aimd.next_limit(20, sample(1, 10, false), 1, 200), 23);
        assert_eq!(aimd.next_limit(20, sample(1, 9, false), 1, 200), 20);
    }

    #[test]
    fn validation_names_fields() {
        let bad = |c: AimdConfig| c.validate().unwrap_err().field;
        let d = AimdConfig::default();
        assert_eq!(bad(AimdConfig { increase: 0, ..d }), "aimd.increase");
        assert_eq!(
            bad(AimdConfig {
                backoff_ratio: 1.0,
                ..d
            }),
            "aimd.backoff_ratio"
        );
        assert_eq!(
            bad(AimdConfig {
                backoff_ratio: 0.4,
                ..d
            }),
            "aimd.backoff_ratio"
        );
        assert_eq!(
            bad(AimdConfig {
                backoff_ratio: f64::NAN,
                ..d
            }),
            "aimd.backoff_ratio"
        );
        assert_eq!(
            bad(AimdConfig {
                timeout: Duration::ZERO,
                ..d
            }),
            "aimd.timeout"
        );
        assert_eq!(
            bad(AimdConfig {
                timeout: Duration::MAX,
                ..d
            }),
            "aimd.timeout"
        );
    }
}
