//! The `per_key` section: the quota and concurrency limit each key gets, and the size
//! of the table that holds the keys.

use std::time::Duration;

use crate::error::ConfigError;
use crate::limiter::RateLimiterConfig;

/// The most permits one key may hold at once: the count shares a word with the key's
/// identity (see `table.rs`).
pub const MAX_CONCURRENT_PER_KEY: u32 = (1 << 16) - 1;

/// The largest `max_keys`: the table takes 29 to 59 bytes per key (see
/// [`PerKeyConfig::max_keys`]); at this bound, 2^22 buckets: 512 MiB.
pub const MAX_KEYS: u32 = 1 << 24;

/// The largest `top_keys` (the heavy-hitter sketch is scanned under a lock).
pub const MAX_TOP_KEYS: u32 = 64;

/// Per-key limits: every key gets its own quota of `rate` permits per `period` with a
/// `burst` (GCRA, as the rate limiter) and, optionally, at most `max_concurrent`
/// permits out at once.
///
/// ```
/// use breakwater::keyed::PerKeyConfig;
/// use std::time::Duration;
///
/// let config = PerKeyConfig::new(10, Duration::from_secs(1))
///     .with_burst(20)
///     .with_max_concurrent(4)
///     .with_max_keys(100_000);
/// assert!(config.validate().is_ok());
/// assert_eq!(PerKeyConfig::new(10, Duration::from_secs(1)).with_max_keys(0)
///     .validate().unwrap_err().field, "max_keys");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct PerKeyConfig {
    /// Permits per `period` for each key (at least 1).
    pub rate: u64,
    /// The period of `rate`.
    pub period: Duration,
    /// Permits a key may take at once after an idle spell (default `rate`).
    pub burst: u64,
    /// Permits one key may hold at once (`None`: no per-key concurrency limit). `1..=65535`.
    pub max_concurrent: Option<u32>,
    /// How many keys the table is sized for: keys that are limiting (a quota not yet
    /// refilled, or permits held) at the same time. The table is allocated up front
    /// with at least 1.6 times as many slots (a power of two of 128-byte buckets of
    /// 7 slots: 29 to 59 bytes per key); each key may live in either of two buckets, so
    /// `max_keys` active keys fit without evicting one another. Memory is fixed from
    /// then on. `1..=16777216`.
    pub max_keys: u32,
    /// How many of the most-rejected keys the snapshot and the Prometheus text show
    /// (`0` = none). At most 64.
    pub top_keys: u32,
}

impl PerKeyConfig {
    /// `rate` permits per `period` for each key, `burst = rate`, no concurrency limit,
    /// 10 000 keys, the top 10 rejected keys reported.
    pub fn new(rate: u64, period: Duration) -> Self {
        Self {
            rate,
            period,
            burst: rate,
            max_concurrent: None,
            max_keys: 10_000,
            top_keys: 10,
        }
    }

    /// The same with another `burst`.
    pub fn with_burst(self, burst: u64) -> Self {
        Self { burst, ..self }
    }

    /// The same with at most `max_concurrent` permits held per key.
    pub fn with_max_concurrent(self, max_concurrent: u32) -> Self {
        Self {
            max_concurrent: Some(max_concurrent),
            ..self
        }
    }

    /// The same with the table sized for `max_keys` keys.
    pub fn with_max_keys(self, max_keys: u32) -> Self {
        Self { max_keys, ..self }
    }

    /// The same reporting the `top_keys` most-rejected keys.
    pub fn with_top_keys(self, top_keys: u32) -> Self {
        Self { top_keys, ..self }
    }

    /// The quota as a rate limiter configuration.
    pub fn quota(&self) -> RateLimiterConfig {
        RateLimiterConfig::new(self.rate, self.period).with_burst(self.burst)
    }

    /// Checks every field; the error names it as spelled in the policy file.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.quota().validate()?;
        if let Some(m) = self.max_concurrent {
            if m == 0 || m > MAX_CONCURRENT_PER_KEY {
                return Err(ConfigError::new(
                    "max_concurrent",
                    format!("must be in 1..={MAX_CONCURRENT_PER_KEY}"),
                ));
            }
        }
        if self.max_keys == 0 || self.max_keys > MAX_KEYS {
            return Err(ConfigError::new(
                "max_keys",
                format!("must be in 1..={MAX_KEYS}"),
            ));
        }
        if self.top_keys > MAX_TOP_KEYS {
            return Err(ConfigError::new(
                "top_keys",
                format!("must be at most {MAX_TOP_KEYS}"),
            ));
        }
        Ok(())
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn every_bad_field_is_named() {
        let ok = PerKeyConfig::new(5, Duration::from_secs(1));
        assert!(ok.validate().is_ok());
        assert_eq!(ok.with_burst(0).validate().unwrap_err().field, "burst");
        assert_eq!(
            PerKeyConfig::new(0, Duration::from_secs(1))
                .validate()
                .unwrap_err()
                .field,
            "rate"
        );
        for m in [0, MAX_CONCURRENT_PER_KEY + 1] {
            assert_eq!(
                ok.with_max_concurrent(m).validate().unwrap_err().field,
                "max_concurrent"
            );
        }
        assert!(ok
            .with_max_concurrent(MAX_CONCURRENT_PER_KEY)
            .validate()
            .is_ok());
        for k in [0, MAX_KEYS + 1] {
            assert_eq!(
                ok.with_max_keys(k).validate().unwrap_err().field,
                "max_keys"
            );
        }
        assert_eq!(
            ok.with_top_keys(MAX_TOP_KEYS + 1)
                .validate()
                .unwrap_err()
                .field,
            "top_keys"
        );
    }
}
