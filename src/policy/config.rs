//! A policy's configuration: which stages it has and how each is set up.

use std::time::Duration;

use crate::adaptive::{AdaptiveConfig, ThrottleConfig};
use crate::breaker::BreakerConfig;
use crate::bulkhead::BulkheadConfig;
use crate::chaos::ChaosConfig;
use crate::fleet::{FleetConfig, Scope};
use crate::keyed::PerKeyConfig;
use crate::limiter::RateLimiterConfig;
use crate::retry::RetryConfig;
use crate::shm::HostScope;
use crate::{ConfigError, Outcome, RejectReason};

/// Which failures a policy's retry loop retries.
///
/// A set of outcome classes, so the same rule crosses the C ABI as a bit mask
/// (`BW_RETRY_ON_*`): bit 0 failure, bit 1 timeout, then one bit per rejection reason
/// (bit `1 + reason code`). Default: failures and timeouts. Rejections are not retried
/// by default; when they are, their `retry_after` is the minimum delay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RetryOn(u32);

impl Default for RetryOn {
    fn default() -> Self {
        RetryOn::FAILURE.union(RetryOn::TIMEOUT)
    }
}

impl RetryOn {
    /// Nothing is retried.
    pub const NONE: RetryOn = RetryOn(0);
    /// Failed calls.
    pub const FAILURE: RetryOn = RetryOn(1);
    /// Calls that timed out.
    pub const TIMEOUT: RetryOn = RetryOn(2);
    /// All bits defined.
    pub const ALL: RetryOn = RetryOn((1 << 8) - 1);

    /// The policy-file names, in bit order.
    pub const NAMES: &'static [&'static str] = &[
        "failure",
        "timeout",
        "circuit_open",
        "rate_limited",
        "bulkhead_full",
        "load_shed",
        "retry_budget_exhausted",
        "injected",
    ];

    /// The set that retries rejections of `reason`.
    pub const fn rejection(reason: RejectReason) -> RetryOn {
        RetryOn(1 << (1 + reason as u32))
    }

    /// Both sets.
    pub const fn union(self, other: RetryOn) -> RetryOn {
        RetryOn(self.0 | other.0)
    }

    /// The bit mask (C ABI form).
    pub const fn bits(self) -> u32 {
        self.0
    }

    /// From a bit mask; `None` if it has undefined bits.
    pub const fn from_bits(bits: u32) -> Option<RetryOn> {
        if bits & !RetryOn::ALL.0 == 0 {
            Some(RetryOn(bits))
        } else {
            None
        }
    }

    /// From policy-file names (each must be one of [`RetryOn::NAMES`]; unknown names are
    /// ignored here because the file reader has already rejected them).
    pub fn from_names(names: &[&str]) -> RetryOn {
        let mut bits = 0;
        for name in names {
            if let Some(i) = Self::NAMES.iter().position(|n| n == name) {
                bits |= 1 << i;
            }
        }
        RetryOn(bits)
    }

    /// The names of the set's members, in bit order.
    pub fn names(self) -> Vec<&'static str> {
        Self::NAMES
            .iter()
            .enumerate()
            .filter(|(i, _)| self.0 & (1 << i) != 0)
            .map(|(_, n)| *n)
            .collect()
    }

    /// Whether a call that ended with `outcome` is retried.
    #[inline]
    pub fn outcome(self, outcome: Outcome) -> bool {
        match outcome {
            Outcome::Failure => self.0 & Self::FAILURE.0 != 0,
            Outcome::Timeout => self.0 & Self::TIMEOUT.0 != 0,
            Outcome::Success | Outcome::Ignored => false,
        }
    }

    /// Whether a call rejected for `reason` is retried.
    #[inline]
    pub fn rejected(self, reason: RejectReason) -> bool {
        self.0 & Self::rejection(reason).0 != 0
    }
}

/// A policy's retry settings: the schedule and budget, and what is retried.
#[derive(Debug, Clone, PartialEq, Default)]
#[non_exhaustive]
pub struct RetryPolicyConfig {
    /// Attempts, backoff, budget.
    pub retry: RetryConfig,
    /// Which failures are retried.
    pub retry_on: RetryOn,
}

crate::builder::with_setters!(RetryPolicyConfig {
    retry: RetryConfig => with_retry,
    retry_on: RetryOn => with_retry_on,
});

/// A named pipeline's configuration. Every stage is optional; a policy with none is a
/// pass-through that still counts calls.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct PolicyConfig {
    /// The policy's name (letters, digits, `_ - . :`).
    pub name: String,
    /// The attempt deadline: a call that completes later is recorded as `Timeout`.
    pub timeout: Option<Duration>,
    /// Stage 1: the circuit breaker.
    pub circuit_breaker: Option<BreakerConfig>,
    /// Stage 2: the client-side rate limiter.
    pub rate_limiter: Option<RateLimiterConfig>,
    /// Stage 2: SRE client-side throttling.
    pub throttle: Option<ThrottleConfig>,
    /// Stage 3: the bulkhead.
    pub bulkhead: Option<BulkheadConfig>,
    /// Stage 3: the adaptive concurrency limit.
    pub adaptive: Option<AdaptiveConfig>,
    /// Stage 4: fault injection.
    pub chaos: Option<ChaosConfig>,
    /// The retry loop around the pipeline (used by `call`).
    pub retry: Option<RetryPolicyConfig>,
    /// The fleet's Redis, for stages with `scope = "fleet"` (feature `fleet`).
    pub fleet: Option<Box<FleetConfig>>,
    /// Stage 0: per-key limits, asked first by
    /// [`Policy::acquire_keyed`](crate::policy::Policy::acquire_keyed) (calls without
    /// a key skip it).
    pub per_key: Option<Box<PerKeyConfig>>,
    /// `scope = "host"`: the breaker, limiter and bulkhead live in a segment shared by
    /// every process of this machine that loads the same policy (`None`: this process
    /// only).
    pub host: Option<HostScope>,
}

impl PolicyConfig {
    /// A pass-through policy named `name`; add stages with the `with_` methods.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            timeout: None,
            circuit_breaker: None,
            rate_limiter: None,
            throttle: None,
            bulkhead: None,
            adaptive: None,
            chaos: None,
            retry: None,
            fleet: None,
            per_key: None,
            host: None,
        }
    }

    /// Shares the breaker, limiter and bulkhead host-wide through segment `segment`.
    pub fn with_host_scope(mut self, segment: impl Into<String>) -> Self {
        self.host = Some(HostScope::new(segment));
        self
    }

    /// Sets the attempt deadline.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Adds a circuit breaker.
    pub fn with_circuit_breaker(mut self, config: BreakerConfig) -> Self {
        self.circuit_breaker = Some(config);
        self
    }

    /// Adds a rate limiter.
    pub fn with_rate_limiter(mut self, config: RateLimiterConfig) -> Self {
        self.rate_limiter = Some(config);
        self
    }

    /// Adds client-side throttling.
    pub fn with_throttle(mut self, config: ThrottleConfig) -> Self {
        self.throttle = Some(config);
        self
    }

    /// Adds a bulkhead.
    pub fn with_bulkhead(mut self, config: BulkheadConfig) -> Self {
        self.bulkhead = Some(config);
        self
    }

    /// Adds an adaptive concurrency limit.
    pub fn with_adaptive(mut self, config: AdaptiveConfig) -> Self {
        self.adaptive = Some(config);
        self
    }

    /// Sets the fleet's Redis, which stages with `scope = "fleet"` use.
    pub fn with_fleet(mut self, config: FleetConfig) -> Self {
        self.fleet = Some(Box::new(config));
        self
    }

    /// Adds fault injection.
    pub fn with_chaos(mut self, config: ChaosConfig) -> Self {
        self.chaos = Some(config);
        self
    }

    /// Adds per-key limits (used by `acquire_keyed`).
    pub fn with_per_key(mut self, config: PerKeyConfig) -> Self {
        self.per_key = Some(Box::new(config));
        self
    }

    /// Adds a retry loop (used by `call`), retrying failures and timeouts.
    pub fn with_retry(mut self, config: RetryConfig) -> Self {
        self.retry = Some(RetryPolicyConfig {
            retry: config,
            retry_on: RetryOn::default(),
        });
        self
    }

    /// Adds a retry loop that retries `retry_on`.
    pub fn with_retry_on(mut self, config: RetryConfig, retry_on: RetryOn) -> Self {
        self.retry = Some(RetryPolicyConfig {
            retry: config,
            retry_on,
        });
        self
    }

    /// Checks the name and every stage; the error's field is prefixed with the stage's
    /// section name as in the policy file (`circuit_breaker.minimum_calls`).
    pub fn validate(&self) -> Result<(), ConfigError> {
        validate_policy_name(&self.name).map_err(|r| ConfigError::new("name", r))?;
        if self.timeout == Some(Duration::ZERO) {
            return Err(ConfigError::new("timeout", "must be greater than 0"));
        }
        if let Some(c) = &self.circuit_breaker {
            c.validate().map_err(|e| e.within("circuit_breaker"))?;
        }
        if let Some(c) = &self.rate_limiter {
            c.validate().map_err(|e| e.within("rate_limiter"))?;
            if c.scope == Scope::Fleet && self.fleet.is_none() {
                return Err(ConfigError::new(
                    "rate_limiter.scope",
                    "`fleet` needs the policy's `fleet` section (the Redis to share)",
                ));
            }
        }
        if let Some(c) = &self.fleet {
            c.validate().map_err(|e| e.within("fleet"))?;
        }
        if let Some(c) = &self.throttle {
            c.validate().map_err(|e| e.within("throttle"))?;
        }
        if let Some(c) = &self.bulkhead {
            c.validate().map_err(|e| e.within("bulkhead"))?;
        }
        if let Some(c) = &self.adaptive {
            c.validate().map_err(|e| e.within("adaptive"))?;
        }
        if let Some(c) = &self.chaos {
            c.validate().map_err(|e| e.within("chaos"))?;
        }
        if let Some(c) = &self.retry {
            c.retry.validate().map_err(|e| e.within("retry"))?;
        }
        if let Some(c) = &self.per_key {
            c.validate().map_err(|e| e.within("per_key"))?;
        }
        Ok(())
    }
}

/// The longest policy name accepted.
pub const MAX_POLICY_NAME: usize = 128;

/// Checks a policy name: 1 to 128 characters of `A-Z a-z 0-9 _ - . :`, so that it is
/// safe in metric labels, log lines and file names.
pub fn validate_policy_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("a policy name must not be empty".into());
    }
    if name.len() > MAX_POLICY_NAME {
        return Err(format!(
            "a policy name must be at most {MAX_POLICY_NAME} characters"
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':')))
    {
        return Err(format!(
            "invalid character {c:?} in policy name \"{name}\" (allowed: letters, digits, _ - . :)"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_on_bits_and_names_agree() {
        let set = RetryOn::from_names(&["timeout", "rate_limited"]);
        assert_eq!(set.names(), vec!["timeout", "rate_limited"]);
        assert!(set.rejected(RejectReason::RateLimited));
        assert!(!set.rejected(RejectReason::CircuitOpen));
        assert!(set.outcome(Outcome::Timeout));
        assert!(!set.outcome(Outcome::Failure));
        assert_eq!(RetryOn::from_bits(set.bits()), Some(set));
        assert_eq!(RetryOn::from_bits(1 << 9), None);
        assert_eq!(RetryOn::NAMES.len(), 8);
        assert_eq!(RetryOn::rejection(RejectReason::Injected).bits(), 1 << 7);
    }
}
