//! Configuration of the adaptive limit: algorithm, bounds and shedding thresholds.

use super::aimd::AimdConfig;
use super::gradient::Gradient2Config;
use super::priority::Priority;
use crate::error::ConfigError;

/// Which algorithm moves the limit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AdaptiveAlgorithm {
    /// Loss-based additive increase, multiplicative decrease (see [`AimdConfig`]).
    Aimd(AimdConfig),
    /// Latency-gradient Gradient2 (see [`Gradient2Config`]). The default.
    Gradient2(Gradient2Config),
}

impl Default for AdaptiveAlgorithm {
    fn default() -> Self {
        AdaptiveAlgorithm::Gradient2(Gradient2Config::default())
    }
}

impl AdaptiveAlgorithm {
    /// The name used in the policy file (`"aimd"`, `"gradient2"`).
    pub fn as_str(&self) -> &'static str {
        match self {
            AdaptiveAlgorithm::Aimd(_) => "aimd",
            AdaptiveAlgorithm::Gradient2(_) => "gradient2",
        }
    }
}

/// Configuration of an [`AdaptiveLimiter`](super::AdaptiveLimiter).
///
/// ```
/// use breakwater::adaptive::{AdaptiveAlgorithm, AdaptiveConfig, AimdConfig};
/// let config = AdaptiveConfig::default()
///     .with_algorithm(AdaptiveAlgorithm::Aimd(AimdConfig::default()))
///     .with_max_limit(64);
/// assert!(config.validate().is_ok());
/// let bad = config.with_min_limit(0);
/// assert_eq!(bad.validate().unwrap_err().field, "min_limit");
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct AdaptiveConfig {
    /// The algorithm and its knobs. Default: Gradient2 with its defaults.
    pub algorithm: AdaptiveAlgorithm,
    /// The limit before any completion, inside `min_limit..=max_limit`. Default: 20.
    pub initial_limit: u32,
    /// The lowest the limit may go, at least 1 (so a critical call can always run when
    /// nothing else is in flight). Default: 1.
    pub min_limit: u32,
    /// The highest the limit may go, at least `min_limit`. Default: 200.
    pub max_limit: u32,
    /// The pressure (`in_flight / limit`) from which `sheddable` calls are refused, in
    /// `[0, 1]` and at most `default_at`. 0 sheds them always. Default: 0.8.
    pub sheddable_at: f64,
    /// The pressure from which `default` calls are refused, in `(0, 1]`; 1 treats them
    /// like `critical`. Default: 0.9.
    pub default_at: f64,
}

crate::builder::with_setters!(AdaptiveConfig {
    algorithm: AdaptiveAlgorithm => with_algorithm,
    initial_limit: u32 => with_initial_limit,
    min_limit: u32 => with_min_limit,
    max_limit: u32 => with_max_limit,
    sheddable_at: f64 => with_sheddable_at,
    default_at: f64 => with_default_at,
});

impl Default for AdaptiveConfig {
    fn default() -> Self {
        Self {
            algorithm: AdaptiveAlgorithm::default(),
            initial_limit: 20,
            min_limit: 1,
            max_limit: 200,
            sheddable_at: 0.8,
            default_at: 0.9,
        }
    }
}

impl AdaptiveConfig {
    /// Checks every field; errors name them as in the policy file (`initial_limit`,
    /// `min_limit`, `max_limit`, `sheddable_at`, `default_at`, `aimd.*`, `gradient.*`).
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.min_limit == 0 {
            return Err(ConfigError::new("min_limit", "must be at least 1"));
        }
        if self.max_limit < self.min_limit {
            return Err(ConfigError::new(
                "max_limit",
                format!(
                    "must be at least min_limit ({}), got {}",
                    self.min_limit, self.max_limit
                ),
            ));
        }
        if !(self.min_limit..=self.max_limit).contains(&self.initial_limit) {
            return Err(ConfigError::new(
                "initial_limit",
                format!(
                    "must be within min_limit..=max_limit ({}..={}), got {}",
                    self.min_limit, self.max_limit, self.initial_limit
                ),
            ));
        }
        if !(self.default_at > 0.0 && self.default_at <= 1.0) {
            return Err(ConfigError::new(
                "default_at",
                format!("must be in (0, 1], got {}", self.default_at),
            ));
        }
        if !(self.sheddable_at >= 0.0 && self.sheddable_at <= self.default_at) {
            return Err(ConfigError::new(
                "sheddable_at",
                format!(
                    "must be in [0, default_at] = [0, {}], got {}",
                    self.default_at, self.sheddable_at
                ),
            ));
        }
        match &self.algorithm {
            AdaptiveAlgorithm::Aimd(aimd) => aimd.validate(),
            AdaptiveAlgorithm::Gradient2(gradient) => gradient.validate(),
        }
    }

    /// The admission rule: whether a call of `priority` is admitted when `in_flight`
    /// calls are out (before this one) under `limit`. With `pressure = in_flight / limit`:
    ///
    /// | priority | admitted iff |
    /// |---|---|
    /// | `critical` | `in_flight < limit` (shed only at the hard limit) |
    /// | `default` | `in_flight < limit` and `pressure < default_at` |
    /// | `sheddable` | `in_flight < limit` and `pressure < sheddable_at` |
    ///
    /// So as pressure rises, sheddable calls are refused first, then default ones, and
    /// critical ones only when the limit is reached.
    ///
    /// ```
    /// use breakwater::adaptive::{AdaptiveConfig, Priority};
    /// let c = AdaptiveConfig::default(); // sheddable_at 0.8, default_at 0.9
    /// assert!(c.admits(Priority::Sheddable, 7, 10));
    /// assert!(!c.admits(Priority::Sheddable, 8, 10));
    /// assert!(c.admits(Priority::Default, 8, 10));
    /// assert!(!c.admits(Priority::Default, 9, 10));
    /// assert!(c.admits(Priority::Critical, 9, 10));
    /// assert!(!c.admits(Priority::Critical, 10, 10));
    /// ```
    #[inline]
    pub fn admits(&self, priority: Priority, in_flight: u32, limit: u32) -> bool {
        if in_flight >= limit {
            return false;
        }
        let threshold = match priority {
            Priority::Critical => return true,
            Priority::Default => self.default_at,
            Priority::Sheddable => self.sheddable_at,
        };
        // pressure < threshold, without a division: in_flight < threshold · limit.
        f64::from(in_flight) < threshold * f64::from(limit)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn validation_names_fields() {
        let d = AdaptiveConfig::default();
        assert!(d.validate().is_ok());
        let bad = |c: AdaptiveConfig| c.validate().unwrap_err().field;
        assert_eq!(bad(AdaptiveConfig { min_limit: 0, ..d }), "min_limit");
        assert_eq!(bad(AdaptiveConfig { max_limit: 0, ..d }), "max_limit");
        assert_eq!(
            bad(AdaptiveConfig {
                initial_limit: 500,
                ..d
            }),
            "initial_limit"
        );
        assert_eq!(
            bad(AdaptiveConfig {
                default_at: 0.0,
                ..d
            }),
            "default_at"
        );
        assert_eq!(
            bad(AdaptiveConfig {
                default_at: f64::NAN,
                ..d
            }),
            "default_at"
        );
        assert_eq!(
            bad(AdaptiveConfig {
                sheddable_at: 0.95,
                ..d
            }),
            "sheddable_at"
        );
        assert_eq!(
            bad(AdaptiveConfig {
                sheddable_at: -0.1,
                ..d
            }),
            "sheddable_at"
        );
        let aimd = AdaptiveAlgorithm::Aimd(AimdConfig {
            increase: 0,
            ..AimdConfig::default()
        });
        assert_eq!(
            bad(AdaptiveConfig {
                algorithm: aimd,
                ..d
            }),
            "aimd.increase"
        );
        let grad = AdaptiveAlgorithm::Gradient2(Gradient2Config {
            smoothing: 2.0,
            ..Gradient2Config::default()
        });
        assert_eq!(
            bad(AdaptiveConfig {
                algorithm: grad,
                ..d
            }),
            "gradient.smoothing"
        );
    }

    #[test]
    fn lower_classes_are_shed_first() {
        let c = AdaptiveConfig::default();
        for limit in 1..50u32 {
            for in_flight in 0..=limit {
                let s = c.admits(Priority::Sheddable, in_flight, limit);
                let d = c.admits(Priority::Default, in_flight, limit);
                let k = c.admits(Priority::Critical, in_flight, limit);
                assert!(
                    !s || d,
                    "sheddable admitted but default not at {in_flight}/{limit}"
                );
                assert!(!d || k);
                assert_eq!(k, in_flight < limit);
            }
        }
    }
}
